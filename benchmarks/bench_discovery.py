"""Timings of circuit search (one run, ratios reported; not a timed test).

    python benchmarks/bench_discovery.py [--threads 1] [--repeats 3]

1. EAP over every edge of a GPT-2-small-shaped model (12 layers x 12 heads, d_model 768, MLPs, vocabulary
   50257; transformers GPT2Config, random init, nothing downloaded) on 8 prompt pairs x 32 tokens:
     circuitry   score_edges(method="eap") (corrupted and clean cache runs, one forward + backward with
                 gradient leaves on every Q/K/V, layer-norm VJPs per receiver, the score contraction)
     torch floor the least any EAP implementation does on the plain Hugging Face module: two forward
                 passes (clean, corrupted) and one forward + backward pass
2. Exact edge patching over every edge of the shipped attn-only-2l (257 edges) on 16 prompt pairs:
     circuitry   score_edges(method="exact") (patches stacked along the batch, layers before the patch
                 skipped)
     torch hooks a plain-torch loop: one forward pass per edge on the zoo module, the receiver's input
                 replaced with forward hooks (what tests/discovery/test_scores.py checks numerically)
Numbers are medians of --repeats runs; ratios are circuitry / plain torch.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent))  # tests.discovery.plain_zoo: the plain-torch reference
from bench_patching import _median_time  # noqa: E402  (the same warm-up + median timer)


def _pairs(n: int, seq: int, vocab: int, seed: int):
    """Induction pairs of exactly ``seq`` tokens: clean = a random block repeated, corrupted = random tokens."""
    from circuitry.prompts import PairDataset, PromptPair

    g = torch.Generator().manual_seed(seed)
    half = seq // 2
    pairs = []
    for _ in range(n):
        block = torch.randint(1, vocab, (half,), generator=g).tolist()
        clean = block + block
        corr = torch.randint(1, vocab, (seq,), generator=g).tolist()
        pos = tuple(range(half, seq - 1))
        pairs.append(PromptPair(clean=tuple(clean), corrupted=tuple(corr), positions=pos,
                                answers=tuple(clean[p + 1] for p in pos), foils=tuple(corr[p + 1] for p in pos)))
    return PairDataset(task="induction-bench", pairs=tuple(pairs), seed=seed)


def bench_eap(repeats: int) -> None:
    from transformers import GPT2Config, GPT2LMHeadModel

    from circuitry.discovery import edge_set, score_edges
    from circuitry.metrics import Targets, logit_diff
    from circuitry.models import load_model

    torch.manual_seed(0)
    hf = GPT2LMHeadModel(GPT2Config(bos_token_id=0, eos_token_id=0)).eval()
    model = load_model(hf)
    data = _pairs(8, 32, hf.config.vocab_size, 0)
    ids, cids = data.clean_ids(), data.corrupted_ids()
    t = Targets(*data.targets())
    n_edges = len(edge_set(model))

    def ours():
        score_edges(model, data, method="eap", progress=False)

    def floor():
        with torch.no_grad():
            hf(cids)
            hf(ids)
        hf.zero_grad(set_to_none=True)
        logit_diff(hf(ids).logits, t).sum().backward()

    a, b = _median_time(ours, repeats), _median_time(floor, repeats)
    print(f"EAP, GPT-2-small shape (12x12 heads, d 768), 8 prompts x 32 tokens, {n_edges} edges:")
    print(f"  circuitry   {a:8.2f} s")
    print(f"  torch floor {b:8.2f} s   (2 forward + 1 forward/backward)   ratio {a / b:5.1f}x")


def _plain_exact(module, ids, cids, t, es):
    """One forward pass per edge with plain hooks on the zoo module (tests/discovery/plain_zoo.py, the
    reference the tests check EAP against); returns m(patched) - m(clean) per edge."""
    from circuitry.metrics import logit_diff
    from tests.discovery.plain_zoo import receiver_hooks, sender_outputs

    ac, ar = sender_outputs(module, ids), sender_outputs(module, cids)
    with torch.no_grad():
        base = logit_diff(module(ids), t).mean()
        out = []
        for src, dst, kind in es.triples:
            hooks = receiver_hooks(module, dst, kind, ar[src] - ac[src])
            out.append(float(logit_diff(module(ids), t).mean() - base))
            for hk in hooks:
                hk.remove()
    return out


def bench_exact(repeats: int) -> None:
    import numpy as np

    from circuitry.discovery import edge_set, score_edges
    from circuitry.metrics import Targets
    from circuitry.models import load_model
    from circuitry.prompts import make_task

    model = load_model("zoo:attn-only-2l")
    data = make_task("induction", model, n_prompts=16, seed=0)
    es = edge_set(model)
    ids, cids, t = data.clean_ids(), data.corrupted_ids(), Targets(*data.targets())
    got = score_edges(model, data, method="exact", progress=False).score
    ref = _plain_exact(model.module, ids, cids, t, es)
    err = float(np.max(np.abs(np.array(got) - np.array(ref))))
    a = _median_time(lambda: score_edges(model, data, method="exact", progress=False), repeats)
    b = _median_time(lambda: _plain_exact(model.module, ids, cids, t, es), repeats)
    print(f"exact edge patching, attn-only-2l, 16 prompts x {ids.shape[1]} tokens, {len(es)} edges "
          f"(max |difference| to the hooks loop {err:.1e}):")
    print(f"  circuitry   {a:8.2f} s")
    print(f"  torch hooks {b:8.2f} s   (one forward per edge)              ratio {a / b:5.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), median of {args.repeats}")
    bench_exact(args.repeats)
    bench_eap(args.repeats)


if __name__ == "__main__":
    main()
