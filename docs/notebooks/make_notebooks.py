"""Write the notebooks of docs/notebooks/, one per tutorial of docs/tutorials/, from the cells below.

The notebooks are committed without outputs; ``tests/docs/test_notebooks.py`` runs each one and checks what it
prints against the tutorial and the library, and fails when a committed notebook differs from this script.
After editing a cell here, run ``python docs/notebooks/make_notebooks.py``. Settings are small (a few
seconds per notebook on a laptop CPU); where a number differs from the tutorial's, the notebook says why.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

SETUP = """from IPython.display import Image, Markdown

from circuitry.models import load_model

model = load_model("zoo:attn-only-2l")   # the shipped 2-layer attention-only model (checksum-verified)"""



def figure(call: str, png: str) -> tuple[str, str]:
    """A code cell that writes the figure ``png`` with ``call`` and shows it."""
    return "code", f'{call}\nImage("{png}")'


NOTEBOOKS: dict[str, list[tuple[str, str]]] = {
    "activation-patching": [
        ("md", "# Activation patching\n\nThe notebook of [the tutorial](../tutorials/activation-patching.md): patch "
               "every head of the zoo model on the induction task, in both directions, and read the share of the "
               "clean-corrupted gap each head carries. A result shows itself as a table of its largest sites with "
               "their interval and Holm-adjusted p-value."),
        ("code", SETUP + """
from circuitry.prompts import make_task

data = make_task("induction", model, n_prompts=16, seed=0)"""),
        ("code", """from circuitry.interventions import activation_patch

noise = activation_patch(model, data, site="z", direction="noising", progress=False)      # clean run, corrupted head in
denoise = activation_patch(model, data, site="z", direction="denoising", progress=False)  # corrupted run, clean head in
noise"""),
        ("code", """print(noise.summary())
print(denoise.summary())"""),
        ("md", "`noise.share.numpy()` is the `[layer, head]` array; `noise.to_records()` one dict per head. The "
               "heatmap's colour scale is the share's natural range, -1 to 1, with 0 white."),
        figure('noise.heatmap("noising.png")', "noising.png"),
        ("md", "## Ablations\nThe loss on the prompts with heads mean-ablated, per head set and prompt."),
        ("code", """from circuitry.interventions import ablate_heads
from circuitry.metrics import Targets

pos, ans, foil = data.targets()
losses = ablate_heads(model, data.clean_ids(), [[], ["L1H3"], ["L0H3", "L1H5"]], Targets(pos, ans, foil),
                      method="mean", metric="loss")
for heads, loss in zip(["none", "L1H3", "L0H3+L1H5"], losses.mean(dim=-1).tolist()):
    print(f"mean loss with {heads} ablated: {loss:.3f}")"""),
    ],
    "bring-your-own-task": [
        ("md", "# Bring your own task\n\nThe notebook of [the tutorial](../tutorials/bring-your-own-task.md): a "
               "task from a file of prompt pairs (`examples/bigram_recall.jsonl`), checked against the model, "
               "patched, then analysed end to end. The analysis uses fewer score samples, baseline draws and "
               "random head sets than `circuitry analyze` (the findings on the heads and paths are the same)."),
        ("code", SETUP + """
from circuitry.prompts import make_task

TASK = "../../examples/bigram_recall.jsonl"   # relative to docs/notebooks
data = make_task(TASK, model)                 # checked against the model's tokenizer and context"""),
        ("code", """from circuitry.interventions import activation_patch

res = activation_patch(model, data, site="z", direction="noising", progress=False)
print(res.summary())
res"""),
        ("code", """from circuitry.analysis import AnalysisConfig, run_analysis

cfg = AnalysisConfig(model="zoo:attn-only-2l", task=TASK, seed=0, n_score_samples=4, n_baseline=100,
                     n_resamples=200, n_draws=200)
report = run_analysis(model, cfg, "bigram-analysis", quiet=True)   # writes report.json, report.md, figures
for f in report.findings:
    print(f"[{'holds' if f.holds else 'DOES NOT HOLD'}] {f.claim}")"""),
        ("code", "report"),
    ],
    "decodability": [
        ("md", "# Concept decodability\n\nThe notebook of [the tutorial](../tutorials/decodability.md): is the "
               "latent topic readable from the residual stream at the query, and does the model solve the task? "
               "Three example counts instead of six, so the accuracies differ slightly from the tutorial's table "
               "(the prompts are drawn per setting)."),
        ("code", SETUP + """
from circuitry.decodability import TOPIC_TASKS, decodability

r = decodability(model, TOPIC_TASKS, n_examples=(0, 1, 4), seed=0, progress=False)
print(r.to_markdown())"""),
        figure('r.plot("decodability.png")', "decodability.png"),
    ],
    "discover-a-circuit": [
        ("md", "# Discover a circuit automatically\n\nThe notebook of [the tutorial](../tutorials/discover-a-circuit.md):"
               " score every edge of the zoo model with EAP, keep the edges that carry a significant share of the "
               "gap, compare the ranking with the known induction circuit (ROC AUC) and measure how faithful the "
               "top edges are. Fewer random rankings than `circuitry discover` (19, so the smallest p-value is "
               "0.05)."),
        ("code", SETUP + """
from circuitry.prompts import make_task

data = make_task("induction", model, n_prompts=16, seed=0)"""),
        ("code", """from circuitry.discovery import induction_reference, roc_auc, score_edges

eap = score_edges(model, data, method="eap", progress=False)
ref = eap.edge_set().mask(induction_reference("L0H3", ["L1H0", "L1H2", "L1H5", "L1H7"]))
print(f"eap: {sum(eap.in_circuit)} edges kept; " + eap.summary(3).split("; ", 1)[1])
print(f"eap: ROC AUC {roc_auc(eap, ref):.3f}")
eap"""),
        ("code", """from circuitry.discovery import faithfulness_curves
from circuitry.discovery.figures import plot_faithfulness

fa = faithfulness_curves(model, data, [eap], n_random=19, n_resamples=200, rng=0, progress=False)
print(fa.summary().splitlines()[0])
plot_faithfulness(fa, "faithfulness.png")
Image("faithfulness.png")"""),
    ],
    "find-induction-heads": [
        ("md", "# Find the induction heads of a model\n\nThe notebook of [the tutorial](../tutorials/find-induction-"
               "heads.md) (the same settings, so the same numbers): attention-pattern scores (Olsson et al. 2022), "
               "composition scores (Elhage et al. 2021), OV copying and the in-context-learning score."),
        ("code", SETUP + """
from circuitry.labels import parse_head
from circuitry.scores import score_heads

heads = score_heads(model, ["previous_token", "induction", "duplicate_token", "copying"], n_samples=10, seed=0)
prev, ind = heads["previous_token"], heads["induction"]
print("previous-token:", ", ".join(f"{h}={v:.2f}" for h, v in prev.top(3)))
print("induction:     ", ", ".join(f"{h}={v:.2f}" for h, v in ind.top(3)))
layer, head = parse_head(ind.best())
print(f"{ind.best()} induction score {ind.numpy()[layer, head]:.3f} "
      f"[{ind.ci_low.numpy()[layer, head]:.3f}, {ind.ci_high.numpy()[layer, head]:.3f}] (95% bootstrap CI)")
ind"""),
        ("code", """heads["duplicate_token"].heatmap("duplicate_token.png")   # on [0, 1]: 0.06 is dark, not the top colour
Image("duplicate_token.png")"""),
        ("code", """from circuitry.scores import all_composition_scores

comp = all_composition_scores(model, n_baseline=1000, seed=0)   # {"Q": ..., "K": ..., "V": ...}
k = comp["K"]
print(f"K-composition L0H3->L1H5: {k.score('L0H3', 'L1H5'):.3f} (random baseline {k.baseline_mean:.3f} +- "
      f"{k.baseline_std:.3f})")
k   # the strongest pairs, their excess over the baseline, and that excess in baseline standard deviations"""),
        ("code", """from circuitry.scores import icl_score, ov_eigenvalue_positivity

print(f"OV eigenvalue positivity of L1H5: {ov_eigenvalue_positivity(model).numpy()[1, 5]:.2f}")
icl = icl_score(model, n_samples=32, seed=0)
print(f"ICL score: {icl.statistic:.2f} nats [{icl.ci_low:.2f}, {icl.ci_high:.2f}]")"""),
    ],
    "head-catalogue": [
        ("md", "# A catalogue of head types\n\nThe notebook of [the tutorial](../tutorials/head-catalogue.md): every "
               "detector, each head labelled only where its test against the detector's null is significant "
               "after Holm's correction (the tutorial's settings: 10 sequences, seed 0)."),
        ("code", SETUP + """
from circuitry.scores import available_detectors, head_catalogue, score_heads

scores = score_heads(model, available_detectors(), n_samples=10, seed=0)
for name, s in sorted(scores.items()):
    print(f"{name:<20} {', '.join(s.significant_heads()) or 'none significant'}")"""),
        ("code", """head_catalogue(scores)   # {head: [detectors it is significant for]}"""),
        ("code", "scores[\"induction\"]"),
        ("code", """from circuitry.scores import plot_catalogue

plot_catalogue(scores, "catalogue.png")   # excess over the null on a fixed -1..1 scale
Image("catalogue.png")"""),
        ("md", "## Your own head type"),
        ("code", """import torch

from circuitry.scores import pattern_detector, register_detector

def two_back(tokens):                      # attention from i to i-2
    n, p = tokens.shape
    return torch.diag_embed(torch.ones(n, p - 2), offset=-2)

register_detector(pattern_detector("two_back", two_back, description="attention from i to i-2"), overwrite=True)
print("two_back", ", ".join(score_heads(model, "two_back", seed=0)["two_back"].significant_heads()))"""),
    ],
    "phase-change": [
        ("md", "# The induction-head phase change over training\n\nThe notebook of [the tutorial](../tutorials/phase-"
               "change.md): the zoo's shipped checkpoints of `attn-only-2l`, scored at every step, and the window "
               "in which the induction heads and in-context learning appear."),
        ("code", """from IPython.display import Image, Markdown

from circuitry.dynamics import phase_change, zoo_checkpoints

r = phase_change(zoo_checkpoints("attn-only-2l"), series="zoo:attn-only-2l", progress=False)
print(r.phase_change.describe())
print(r.to_markdown())"""),
        figure('r.plot("phase_change.png")', "phase_change.png"),
    ],
    "text-model": [
        ("md", "# A zoo model trained on English text\n\nThe notebook of [the tutorial](../tutorials/text-model.md): "
               "the King James tokenizer, a text task in words, and the measured training curves of the two text "
               "runs (no induction head formed within the budget, so no text model is shipped)."),
        ("code", """from IPython.display import Image

from circuitry.zoo.text_corpus import load_tokenizer, tokenizer_dir

tok = load_tokenizer(tokenizer_dir())   # the shipped byte-level BPE, standard Hugging Face files
print(tok.tokenize(" And Moses said unto Aaron, Take thy rod"))"""),
        ("code", """from circuitry.prompts.text_tasks import build_text_task

for line in build_text_task("kjv-ioi", n=4)[1:3]:
    print(line["clean"], "->", line["answer"], "vs", line["foil"])"""),
        ("code", """from pathlib import Path

from circuitry.zoo.text_eval import curve_table, plot_curve
from circuitry.zoo.text_train import TextZooManifest

run = TextZooManifest.model_validate_json(Path("../../examples/text/runs/kjv-attn-only-2l.json").read_text())
print(curve_table(run))"""),
        figure('plot_curve(run, "curve.png")', "curve.png"),
    ],
    "trace-the-induction-circuit": [
        ("md", "# Trace the induction circuit\n\nThe notebook of [the tutorial](../tutorials/trace-the-induction-"
               "circuit.md). `circuitry analyze --out circuitry-results` runs the whole analysis from the command "
               "line; here the same analysis runs from Python on the same 32 prompt pairs, with fewer score "
               "samples, baseline draws and random head sets (so it takes seconds). The head, path and score "
               "findings are the tutorial's; the circuit test draws 200 random head sets instead of 1000, and "
               "with them the claim that the circuit heads beat random heads at p <= 0.01 (which holds with "
               "1000 sets) does not hold: a coarser null, not a different model."),
        ("code", SETUP + """
from circuitry.analysis import AnalysisConfig, run_analysis

cfg = AnalysisConfig(model="zoo:attn-only-2l", task="induction", seed=0, n_score_samples=4, n_baseline=100,
                     n_resamples=200, n_draws=200)
report = run_analysis(model, cfg, "circuitry-results", quiet=True)
for f in report.findings:
    print(f"[{'holds' if f.holds else 'DOES NOT HOLD'}] {f.claim}")"""),
        ("code", "report"),
        ("code", """Image("circuitry-results/figures/circuit.png")"""),
        ("code", """Image("circuitry-results/figures/patching_noising_z.png")"""),
        ("code", """Markdown(open("circuitry-results/report.md").read())"""),
    ],
    "validate-a-claim": [
        ("md", "# Validate a paper's claim\n\nThe notebook of [the tutorial](../tutorials/validate-a-claim.md): a "
               "claim file checked against the model with a test against random heads. The false claim of "
               "`examples/claims/false_claim.yaml` (two bystander heads matter more than random pairs) is "
               "refuted."),
        ("code", """print(open("../../examples/claims/false_claim.yaml").read())"""),
        ("code", SETUP + """
from circuitry.claims import check_claims, load_claim_file, one_line, write_report

report = check_claims(load_claim_file("../../examples/claims/false_claim.yaml"), model=model,
                      claim_file_name="false_claim.yaml")
write_report(report, "verdicts/false_claim")   # verdicts.json and verdicts.md
for r in report.results:
    print(one_line(r))
report"""),
        ("code", "report.results[0]"),
        ("md", "The command line does the same, with every claim file at once: `circuitry validate "
               "examples/claims/*.yaml --out verdicts/` (exit code 1 when a claim is refuted)."),
    ],
}


def build(name: str):
    """The notebook ``name`` (a tutorial's file stem) as an ``nbformat`` node, without outputs."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    for i, (kind, src) in enumerate(NOTEBOOKS[name]):
        cell = nbformat.v4.new_markdown_cell(src) if kind == "md" else nbformat.v4.new_code_cell(src)
        cell["id"] = f"{name}-{i}"
        nb.cells.append(cell)
    return nb


def main(folder: Path = HERE) -> list[Path]:
    import nbformat

    written = []
    for name in NOTEBOOKS:
        path = folder / f"{name}.ipynb"
        nbformat.write(build(name), path)
        written.append(path)
    return written


if __name__ == "__main__":
    for p in main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE):
        print(p)
