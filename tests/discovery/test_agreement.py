"""The same question gets the same answer: a path in ``analyze`` and the same edge in ``discover`` are
decided by one rule (:mod:`circuitry.stats.decide`), and a gap carried by a single edge is found by both."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from circuitry.analysis.pipeline import share_effects
from circuitry.discovery import score_edges
from circuitry.interventions import path_patch


def _edge_name(s: str, r: str, k: str) -> str:
    return f"{s}->{r}<{k}>" if k in ("q", "k", "v") else f"{s}->{r}"


def _verdicts(model, data, alpha=0.01, min_share=0.05):
    paths = path_patch(model, data, direction="noising", metric="logit_diff", progress=False)
    labels = [_edge_name(*p) for p in paths.paths]
    eff = share_effects(paths.per_prompt.numpy(), paths.clean, paths.corrupted, labels, direction="noising",
                        level="path", alpha=alpha, min_share=min_share)
    edges = score_edges(model, data, method="exact", metric="logit_diff", alpha=alpha, threshold=min_share,
                        progress=False)
    return {e.site: e for e in eff}, edges


def test_analyze_and_discover_decide_every_edge_alike(zoo, induction):
    by_path, edges = _verdicts(zoo, induction)
    assert sorted(by_path) == sorted(edges.edges)  # attention-only: the same 257 sites in both families
    for name, keep, p, padj, lo in zip(edges.edges, edges.in_circuit, edges.pvalue, edges.pvalue_adjusted,
                                       edges.ci_low):
        e = by_path[name]
        assert bool(e.significant and e.matters) == keep, name
        # the two engines' per-prompt numbers agree to ~1e-6 (float32 sums in another order)
        assert e.pvalue == pytest.approx(p, rel=5e-3, abs=1e-12)
        assert e.pvalue_adjusted == pytest.approx(padj, rel=5e-3, abs=1e-12)
    assert 3 <= sum(edges.in_circuit) < len(edges.edges)  # a real circuit, not everything and not nothing


@pytest.fixture(scope="module")
def one_edge_model():
    """attn-only-2l with every head's output scaled by 1e-3: the gap runs through embed -> logits alone."""
    from circuitry.models import load_model

    m = load_model("zoo:attn-only-2l")
    with torch.no_grad():
        for name, p in m.module.named_parameters():
            if "o_proj" in name:
                p.mul_(1e-3)
    return m


@pytest.fixture(scope="module")
def last_token_task(one_edge_model):
    """Clean and corrupted prompts differ in their last token; the answer is what the clean last token
    predicts, the foil what the corrupted one predicts."""
    from circuitry.prompts import PairDataset, PromptPair

    g = np.random.default_rng(0)
    vocab = one_edge_model.info.d_vocab
    pairs = []
    for _ in range(24):
        body = g.integers(1, vocab, size=11).tolist()
        a, b = (int(x) for x in g.choice(np.arange(1, vocab), size=2, replace=False))
        clean, corr = body + [a], body + [b]
        with torch.no_grad():
            la = one_edge_model.module(torch.tensor([clean]))[0, -1]
            lb = one_edge_model.module(torch.tensor([corr]))[0, -1]
        ans, foil = int(la.argmax()), int(lb.argmax())
        if ans == foil:
            continue
        pairs.append(PromptPair(clean=tuple(clean), corrupted=tuple(corr), positions=(11,), answers=(ans,),
                                foils=(foil,)))
    return PairDataset(task="last-token", pairs=tuple(pairs[:16]), metric="logit_diff")


def test_a_gap_through_one_edge_is_found_by_analyze_and_discover(one_edge_model, last_token_task):
    by_path, edges = _verdicts(one_edge_model, last_token_task)
    e = by_path["embed->logits"]
    assert e.share == pytest.approx(1.0, abs=0.02) and e.ci_low > 0.9 and e.significant and e.matters
    # with 257 paths the old sign-flip test's floor (2/10000) times BH's factor could never reach 0.01
    assert 257 * 2 / 10000 > 0.01 and e.pvalue_adjusted <= 0.01
    members = {n for n, d in by_path.items() if d.significant and d.matters}
    kept = {n for n, k in zip(edges.edges, edges.in_circuit) if k}
    assert members == kept == {"embed->logits"}
