"""Greedy pruning against the best per-edge ranking on the tracr ground-truth suite: CMD at equal circuit
size on held-out inputs, and ROC AUC of each ranking against the compiled circuit (the numbers of
``docs/per-edge-scores.md``, "On the tracr programs").

``python -m circuitry.discovery.greedy_tracr`` (one torch thread; a few minutes on a busy 2-core machine).

Each program, under counterfactual patching and under zero ablation: ranked on 32 input pairs (seed 0),
evaluated on 64 other pairs (seed 1), the program's own readout metric; greedy pruned from every edge
(``M = 16`` candidates per step, warm-started from EAP-IG). The best per-edge ranking is the one of exact
patching and EAP-IG with the lower held-out CMD. ROC AUC against the ground truth that ablation can see:
the ``counterfactual`` edges for counterfactual patching, every edge that ``reads`` a written subspace for
zero ablation (:func:`circuitry.zoo.tracr_models.ground_truth`).
"""

from __future__ import annotations

import time

import numpy as np

PROGRAMS = ("tracr-reverse", "tracr-frac-prevs", "tracr-sort", "tracr-sort-unique", "tracr-hist",
            "tracr-pair-balance", "tracr-shuffle-dyck")
#: the ground truth each ablation can see
TRUTH = {"counterfactual": "counterfactual", "zero": "reads"}


def compare_on(name: str, ablation: str, *, n_resamples: int = 2000) -> str:
    """The lines printed for one program under one ablation (``n_resamples``: the paired bootstrap's)."""
    from circuitry.discovery.compare import compare_faithfulness
    from circuitry.discovery.greedy import greedy_scores
    from circuitry.discovery.reference import auc_of, tracr_problem
    from circuitry.discovery.search import prepare, score_edges
    from circuitry.zoo.tracr_models import task_pairs

    model, data, metric, es, truth = tracr_problem(name, n_pairs=32, seed=0, kinds=(TRUTH[ablation],))
    held = task_pairs(model.manifest, n=64, seed=1)
    pr = prepare(model, data, metric=metric, ablation=ablation)
    ex = score_edges(model, data, method="exact", prepared=pr, progress=False)
    ig = score_edges(model, data, method="eap-ig", prepared=pr, progress=False)
    t = time.perf_counter()
    g = greedy_scores(model, data, prepared=pr, warm=ig, progress=False)
    secs = time.perf_counter() - t
    hp = prepare(model, held, metric=metric, ablation=ablation)
    cmp = {s.method: compare_faithfulness(model, held, g, s, prepared=hp, n_resamples=n_resamples) for s in (ex, ig)}
    best = min(cmp, key=lambda k: cmp[k].cmd_b)
    c, mask = cmp[best], truth[TRUTH[ablation]]
    auc = {s.method: float(auc_of(np.abs(np.asarray(s.score)), mask)) for s in (g, ex, ig)}
    return "\n".join([
        f"== {name}, {ablation}: {len(es)} edges, {int(mask.sum())} in the {TRUTH[ablation]} ground truth; greedy "
        f"{secs:.1f} s for {g.params['circuits_evaluated']} circuits",
        f"  held-out CMD: greedy {c.cmd_a:.4f}, exact {cmp['exact'].cmd_b:.4f}, eap-ig {cmp['eap-ig'].cmd_b:.4f}; "
        f"greedy - {best} {c.cmd_difference:+.4f} [{c.cmd_ci[0]:+.4f}, {c.cmd_ci[1]:+.4f}]",
        f"  per size (greedy - {best}): " + "; ".join(
            f"{s.n_edges}: f {s.f_a:.3f} vs {s.f_b:.3f}, {s.difference:+.3f} [{s.ci_low:+.3f}, {s.ci_high:+.3f}]"
            for s in c.sizes),
        f"  ROC AUC vs the {TRUTH[ablation]} ground truth: " + ", ".join(f"{k} {v:.3f}" for k, v in auc.items())])


def main(programs=PROGRAMS, ablations=tuple(TRUTH)) -> None:
    import torch

    torch.set_num_threads(1)
    for name in programs:
        for ablation in ablations:
            print(compare_on(name, ablation), flush=True)


if __name__ == "__main__":
    main()
