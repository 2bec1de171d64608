"""The benchmark workloads P1-P5: models, prompts, and each implementation as a zero-argument callable.

Every workload returns a list of :class:`Impl` (name, callable, how to turn its output into numbers to
compare) built over the same weights and the same prompts; ``benchmarks/run.py`` times them side by side.
"""

from __future__ import annotations

import copy
import importlib.util
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from benchmarks import reference as ref


@dataclass
class Impl:
    """One way of computing a workload's answer; ``answer(output)`` gives the numbers compared at 1e-4."""

    name: str
    fn: Callable[[], Any]
    answer: Callable[[Any], np.ndarray] = lambda out: np.asarray(out)  # noqa: E731
    repeats: int | None = None  # None: the run's --repeats


@dataclass
class Workload:
    key: str
    title: str
    impls: list[Impl]
    note: str = ""
    baseline: str = "reference"  # the implementation the ratios are relative to
    check: str | None = None  # the implementation whose answers the others must match (default: baseline)


def gpt2(n_layer: int, n_head: int, d: int, vocab: int, seed: int = 0, n_positions: int = 1024):
    """A randomly initialised GPT-2 (Hugging Face's own init, from a config)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    return GPT2LMHeadModel(GPT2Config(n_layer=n_layer, n_head=n_head, n_embd=d, vocab_size=vocab,
                                      n_positions=n_positions, bos_token_id=0, eos_token_id=0)).eval()


def _targets(data):
    pos, ans, foil = data.targets()
    return pos, ans, foil


# ---------------------------------------------------------------------------------------------- P1
def p1(quick: bool) -> Workload:
    from circuitry.interventions import activation_patch
    from circuitry.metrics import logit_diff
    from circuitry.models import load_model
    from circuitry.prompts import induction_pairs

    shape = (2, 4, 64, 1000) if quick else (12, 12, 768, 50257)
    module = gpt2(*shape)
    model = load_model(copy.deepcopy(module), bos="none")
    data = induction_pairs(8, block_len=16, vocab_size=shape[3], bos=None, seed=0)  # 8 prompts x 32 tokens
    clean, corr = data.clean_ids(), data.corrupted_ids()
    pos, ans, foil = _targets(data)

    def full_logit_diff(logits, t):  # a user metric: circuitry computes every logit (the code before issue 11)
        return logit_diff(logits, t)

    per = lambda r: r.per_prompt.numpy()  # noqa: E731  [layer, head, prompt]
    impls = [
        Impl("circuitry", lambda: activation_patch(model, data, site="z", direction="noising", progress=False), per),
        Impl("circuitry, all logits (before)", lambda: activation_patch(
            model, data, site="z", direction="noising", metric=full_logit_diff, progress=False), per),
        Impl("reference", lambda: ref.head_patching(ref.RefModel(module), clean, corr, pos, ans, foil), np.asarray),
    ]
    tl = _transformer_lens_p1(module, clean, corr, pos, ans, foil)
    if tl is not None:
        impls.append(tl)
    name = "GPT-2-small shape (12 x 12, d 768, vocab 50257)" if not quick else "GPT-2 2 x 4, d 64, vocab 1000"
    return Workload("P1", f"per-head z noising, all positions, {name}, 8 prompts x 32 tokens, logit diff", impls)


def _word_tokenizer(vocab: int, tmp: str):
    """An offline word-level tokenizer over ``t0 .. t{vocab-1}`` (the bridge wants one to boot)."""
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel({f"t{i}": i for i in range(vocab)},
                                                                              unk_token="t1")),
                                  bos_token="t0", eos_token="t0", unk_token="t1", pad_token="t0")
    tok.save_pretrained(tmp)
    return PreTrainedTokenizerFast.from_pretrained(tmp)


def _transformer_lens_p1(module, clean, corr, pos, ans, foil) -> Impl | None:
    """TransformerLens 4.3: ``get_act_patch_attn_head_out_all_pos`` on a TransformerBridge over the same weights."""
    if importlib.util.find_spec("transformer_lens") is None:
        return None
    import tempfile

    from transformer_lens.model_bridge import TransformerBridge
    from transformer_lens.patching import get_act_patch_attn_head_out_all_pos

    with tempfile.TemporaryDirectory(prefix="circuitry-bench-tok-") as tmp:
        bridge = TransformerBridge.boot_transformers("gpt2", hf_model=copy.deepcopy(module), device="cpu",
                                                     tokenizer=_word_tokenizer(module.config.vocab_size, tmp))
    rows = torch.arange(pos.shape[0])[:, None]

    def metric(logits):
        return (logits[rows, pos, ans] - logits[rows, pos, foil]).mean(-1)

    def run():
        with torch.no_grad():
            _, corr_cache = bridge.run_with_cache(corr)
            return get_act_patch_attn_head_out_all_pos(bridge, clean, corr_cache, metric, reduce="none")

    def answer(out):
        return np.asarray(getattr(out, "values", out))

    return Impl("TransformerLens 4.3", run, answer)


# ---------------------------------------------------------------------------------------------- P2
def p2(quick: bool) -> list[Workload]:
    from circuitry.interventions import path_patch
    from circuitry.labels import head_label
    from circuitry.models import load_model
    from circuitry.prompts import induction_pairs
    from circuitry.zoo import load_zoo

    out = []
    zoo, _ = load_zoo("attn-only-2l")
    setups = [("attn-only-2l", zoo, 50)]
    setups.append(("GPT-2 4 x 8, d 256, vocab 1000 (MLPs)", gpt2(2, 4, 64, 1000) if quick else gpt2(4, 8, 256, 1000),
                   1000))
    for name, module, vocab in setups:
        model = load_model(copy.deepcopy(module), bos="none")
        data = induction_pairs(8 if quick else 16, block_len=8, vocab_size=min(vocab, model.info.d_vocab), bos=0,
                               seed=1)
        L, H = model.info.n_layers, model.info.n_heads
        senders = [head_label(l, h) for l in range(L - 1) for h in range(H)]
        pos, ans, foil = _targets(data)

        def ours(model=model, data=data, senders=senders):
            return path_patch(model, data, senders=senders, include_logits=False, direction="noising",
                              progress=False)

        def ours_answer(r):
            return np.stack([np.asarray(v) for v in r.per_prompt.numpy()])

        def reference(module=module, data=data, pos=pos, ans=ans, foil=foil, senders=senders):
            return ref.path_patching(ref.RefModel(module), data.clean_ids(), data.corrupted_ids(), pos, ans, foil)

        order: list = []

        def ours_keyed(r, order=order):
            order[:] = [tuple(p) for p in r.paths]
            return ours_answer(r)

        def ref_answer(d, order=order):
            return np.stack([d[p].numpy() for p in order])

        n_paths = sum(H * (L - 1 - l) * H * 3 for l in range(L - 1))
        out.append(Workload("P2" if name == "attn-only-2l" else "P2b",
                            f"path patching, every head -> every later head's q/k/v ({n_paths} paths), {name}, "
                            f"{len(data)} prompts x {data.seq_len} tokens",
                            [Impl("circuitry", ours, ours_keyed), Impl("reference", reference, ref_answer)],
                            note="TransformerLens 4.3 has no path patching"))
    return out


# ---------------------------------------------------------------------------------------------- P3
def p3(quick: bool) -> Workload:
    from circuitry.interventions import head_set_effect_fn
    from circuitry.labels import all_heads, parse_head
    from circuitry.metrics import Targets
    from circuitry.models import load_model
    from circuitry.prompts import induction_pairs
    from circuitry.stats import random_head_test
    from circuitry.zoo import load_zoo

    zoo, _ = load_zoo("attn-only-2l")
    model = load_model(copy.deepcopy(zoo))
    data = induction_pairs(16, block_len=10, vocab_size=50, bos=0, seed=2)
    n_draws = 100 if quick else 1000
    cand = ["L0H1", "L1H6"]
    heads = all_heads(2, 8)
    captured: dict = {}

    def ours():
        fn = head_set_effect_fn(model, data.clean_ids(), Targets.of(data), method="mean", metric="loss")

        def recording(sets):
            vals = fn(sets)
            captured.setdefault("sets", []).extend(sets)
            captured.setdefault("vals", []).extend(vals)
            return vals
        captured.clear()
        return random_head_test(recording, cand, heads, n_draws=n_draws, exact="never", rng=0)

    def reference():
        # the same head sets circuitry drew (the draw itself is not what is timed: 1,000 small numpy draws)
        sets = captured["sets"]
        pos, ans, _ = data.targets()
        return ref.mean_ablation_effects(ref.RefModel(zoo), data.clean_ids(), pos, ans,
                                         [[parse_head(h) for h in s] for s in sets])

    return Workload("P3", f"random-head null, {n_draws} draws of 2-head sets (mean ablation, loss), attn-only-2l, "
                    f"{len(data)} prompts x {data.seq_len} tokens",
                    [Impl("circuitry", ours, lambda r: np.asarray(captured["vals"])),
                     Impl("reference", reference, np.asarray)],
                    note="TransformerLens 4.3 has no random-head null")


# ---------------------------------------------------------------------------------------------- P5
def p5_available() -> bool:
    return importlib.util.find_spec("circuitry.discovery") is not None


def p5(quick: bool) -> Workload:
    """Exact edge scores over every edge of attn-only-2l against a plain hooks loop (one forward per edge);
    EAP on the GPT-2-small shape against its pass-count floor is in ``benchmarks/bench_discovery.py``."""
    from benchmarks.bench_discovery import _plain_exact
    from circuitry.discovery import edge_set, score_edges
    from circuitry.metrics import Targets
    from circuitry.models import load_model
    from circuitry.prompts import make_task
    from circuitry.zoo import load_zoo

    zoo, _ = load_zoo("attn-only-2l")
    model = load_model(copy.deepcopy(zoo))
    data = make_task("induction", model, n_prompts=4 if quick else 16, seed=0)
    es = edge_set(model)
    ids, cids, t = data.clean_ids(), data.corrupted_ids(), Targets(*data.targets())
    return Workload("P5", f"exact edge scores, every one of the {len(es)} edges of attn-only-2l, {len(data)} prompts "
                    f"x {data.seq_len} tokens (m(edge from corrupted) - m(clean), logit diff)",
                    [Impl("circuitry", lambda: score_edges(model, data, method="exact", progress=False),
                          lambda r: np.asarray(r.score)),
                     Impl("reference", lambda: _plain_exact(zoo, ids, cids, t, es), np.asarray)],
                    note="TransformerLens 4.3 has no edge-level patching; EAP timings: benchmarks/bench_discovery.py")


# ---------------------------------------------------------------------------------------------- P6
def _gpt2_small_edges(quick: bool):
    """P6's and P7's model and prompts: ``(module, adapter, data, edge names, title, (pairs, tokens, steps))``
    for the GPT-2-small shape (random init), 64 induction pairs x 32 tokens (quick: 2 x 4, d 64; 4 x 16)."""
    from benchmarks.bench_discovery import _pairs
    from circuitry.discovery import edge_set
    from circuitry.models import load_model

    shape = (2, 4, 64, 1000) if quick else (12, 12, 768, 50257)
    sizes = (4, 16, 5) if quick else (64, 32, 5)
    module = gpt2(*shape)
    model = load_model(copy.deepcopy(module), bos="none")
    data = _pairs(sizes[0], sizes[1], shape[3], 0)
    name = "GPT-2 2 x 4, d 64, vocab 1000" if quick else "GPT-2-small shape (12 x 12, d 768, vocab 50257)"
    return module, model, data, edge_set(model).names, name, sizes


def p6(quick: bool) -> Workload:
    """EAP-IG (5 steps) over every edge of the GPT-2-small shape, 64 prompt pairs x 32 tokens, beside its
    pass-count floor (the passes the method must make, in plain torch, computing no scores) and a
    plain-torch EAP-IG whose scores circuitry's are checked against."""
    from circuitry.discovery import prepare, score_edges
    from circuitry.discovery.attribution import attribution_per_prompt

    module, model, data, names, name, (n, seq, steps) = _gpt2_small_edges(quick)
    clean, corr = data.clean_ids(), data.corrupted_ids()
    pos, ans, foil = _targets(data)
    return Workload("P6", f"EAP-IG ({steps} steps) over every one of the {len(names)} edges, {name}, {n} prompt "
                    f"pairs x {seq} tokens, logit diff (scores per edge and prompt)", [
                        Impl("circuitry", lambda: score_edges(model, data, method="eap-ig", steps=steps,
                                                              progress=False),
                             lambda r: r.per_prompt.numpy()),
                        Impl("circuitry, passes and scores only", lambda: _eap_ig_scores(model, data, steps, prepare,
                                                                                         attribution_per_prompt),
                             lambda pp: pp.numpy()),
                        Impl("reference", lambda: ref.eap_ig(ref.RefModel(module), clean, corr, pos, ans, foil,
                                                             steps=steps),
                             lambda d: np.stack([d[k].numpy() for k in names])),
                        Impl("floor", lambda: ref.eap_ig_floor(module, clean, corr, pos, ans, foil, steps=steps),
                             lambda out: None)],
                    note="floor: 2 forward passes + 5 x (forward + backward to the input), only the metric's "
                         "logits, no scores", baseline="floor", check="reference")


def _eap_ig_scores(model, data, steps, prepare, attribution_per_prompt):
    """EAP-IG's passes and scores without ``score_edges``' decision statistics and result object: the two
    cached runs (``prepare``) and ``attribution_per_prompt``."""
    pr = prepare(model, data)
    return attribution_per_prompt(model, pr.edges, pr.ids, pr.clean, pr.corr, pr.metric, pr.targets, steps=steps,
                                  progress=False)


# ---------------------------------------------------------------------------------------------- P7
P7_MAX_SIZE, P7_CANDIDATES, P7_CHECKED = 8, 16, 4


def p7(quick: bool) -> Workload:
    """Greedy pruning (the interaction-aware search, :func:`circuitry.discovery.greedy.greedy_scores`) on P6's
    model and prompts, beside P6's EAP-IG (its warm start, timed alone); and ``P7_CHECKED`` patched circuits
    (random 64-edge circuits, every other edge fed from the corrupted run) beside the plain-torch
    :func:`benchmarks.reference.patched_circuit`, whose answers they must match."""
    from circuitry.discovery import prepare, score_edges
    from circuitry.discovery.greedy import greedy_scores, search_circuits
    from circuitry.discovery.runs import evaluate_circuits

    module, model, data, names, name, (n, seq, steps) = _gpt2_small_edges(quick)
    max_size = 4 if quick else P7_MAX_SIZE
    clean, corr = data.clean_ids(), data.corrupted_ids()
    pos, ans, foil = _targets(data)
    rng = np.random.default_rng(0)
    keep = np.zeros((P7_CHECKED, len(names)), dtype=bool)
    for c in range(P7_CHECKED):
        keep[c, rng.choice(len(names), min(64, len(names) // 2), replace=False)] = True
    circuits = search_circuits("prune", max_size, P7_CANDIDATES, 0)

    def circuitry_circuits():
        pr = prepare(model, data)
        return evaluate_circuits(model, pr.edges, pr.ids, pr.clean, pr.corr, keep, pr.metric, pr.targets)

    def reference_circuits():
        r = ref.RefModel(module)
        return torch.stack([ref.patched_circuit(r, clean, corr, {nm: not k for nm, k in zip(names, row)}, pos, ans,
                                                foil) for row in keep])

    return Workload("P7", f"greedy pruning (max_size {max_size}, {P7_CANDIDATES} candidates: {circuits} patched "
                    f"circuits after its EAP-IG warm start), {name}, {n} pairs x {seq} tokens; and "
                    f"{P7_CHECKED} patched circuits of 64 edges checked against plain torch", [
                        Impl("P6: EAP-IG (5 steps)", lambda: score_edges(model, data, method="eap-ig", steps=steps,
                                                                         progress=False), lambda r: None),
                        Impl("circuitry greedy (warm start included)",
                             lambda: greedy_scores(model, data, max_size=max_size, candidates=P7_CANDIDATES,
                                                   steps=steps, progress=False), lambda r: None),
                        Impl(f"circuitry: {P7_CHECKED} patched circuits", circuitry_circuits,
                             lambda t: t.numpy()),
                        Impl(f"reference: {P7_CHECKED} patched circuits", reference_circuits, lambda t: t.numpy())],
                    note="the target: greedy <= 20 x P6's EAP-IG", baseline="P6: EAP-IG (5 steps)",
                    check=f"reference: {P7_CHECKED} patched circuits")
