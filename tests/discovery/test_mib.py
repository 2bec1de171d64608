"""MIB's evaluator: a circuit written as MIB JSON, read back and evaluated, against an independent computation
of MIB's formulas (EAP-IG's ``Graph.apply_topn`` with signed scores, ``Graph.prune``, and
``evaluate_area_under_curve``'s sizes, normalisation and trapezoids), written here on MIB's own matrix layout."""

from __future__ import annotations

import json

import numpy as np
import pytest

from circuitry.errors import InputError

MIB_FRACTIONS = (.001, .002, .005, .01, .02, .05, .1, .2, .5, 1)


def _mib_layout(n_layers, n_heads):
    """Forward (sender) and backward (receiver) node names and forward -> backward ownership, MIB's way
    (attention-only: no MLP nodes)."""
    fwd = ["input"] + [f"a{l}.h{h}" for l in range(n_layers) for h in range(n_heads)]
    bwd = [f"a{l}.h{h}<{k}>" for l in range(n_layers) for k in "qkv" for h in range(n_heads)] + ["logits"]
    f2b = np.array([[b.split("<")[0] == f for b in bwd] for f in fwd])
    return fwd, bwd, f2b


def _mib_topn_prune(scores, real, f2b, n):
    """apply_topn(n, absolute=False, prune=True) on matrices ``scores``/``real [forward, backward]``."""
    s = np.where(real, scores, -np.inf).ravel()
    order = np.argsort(-s, kind="stable")
    g = np.zeros(s.size, bool)
    g[order[:n]] = True
    g = g.reshape(scores.shape)
    nodes = np.zeros(len(f2b), bool)
    while True:
        out_ = g.any(1)
        in_ = (f2b.astype(float) @ g.any(0).astype(float)) > 0
        in_[0] = True
        new_nodes = out_ & in_
        bw = (new_nodes.astype(float) @ f2b.astype(float)) > 0
        bw[-1] = True
        new_g = g & new_nodes[:, None] & bw[None, :]
        if (new_nodes == nodes).all() and (new_g == g).all():
            return g
        nodes, g = new_nodes, new_g


def test_mib_json_round_trip_and_evaluation_match_mib_formulas(zoo, induction, prepared, scored, tmp_path):
    from circuitry.discovery import faithfulness_curves
    from circuitry.discovery.results import EdgeScores
    from circuitry.discovery.runs import evaluate_circuits

    s = scored["eap"]
    path = tmp_path / "circuit.json"
    path.write_text(json.dumps(s.to_mib_json()))
    back = EdgeScores.from_mib_json(path, zoo)
    assert back.method == "external" and back.params["missing_edges"] == 0
    np.testing.assert_allclose(back.score, s.importance)  # MIB's sign: -score for the logit difference
    assert back.in_circuit == s.in_circuit
    assert (back.ranking(absolute=False) == s.ranking(absolute=False)).all()

    fa = faithfulness_curves(zoo, induction, [back], evaluator="mib", n_random=0, n_resamples=100, progress=False,
                             prepared=prepared)
    c = fa.curves[0]
    assert fa.evaluator == "mib" and fa.top_k == "signed"

    # independently, from the JSON file alone, on MIB's matrices
    data = json.loads(path.read_text())
    fwd, bwd, f2b = _mib_layout(2, 8)
    scores = np.zeros((len(fwd), len(bwd)))
    real = np.zeros_like(scores, bool)
    for name, e in data["edges"].items():
        u, v = name.split("->")
        scores[fwd.index(u), bwd.index(v if "<" in v else v)] = e["score"]
        real[fwd.index(u), bwd.index(v)] = True
    E = int(real.sum())
    masks, pruned_any = [], False
    for p in MIB_FRACTIONS:
        n = int(p * E)
        g = _mib_topn_prune(scores, real, f2b, n)
        pruned_any |= int(g.sum()) < n
        kept = {f"{fwd[i]}->{bwd[j]}" for i, j in zip(*np.nonzero(g))}
        masks.append([name in kept for name in back.mib_edges])
    assert pruned_any  # the pruning changed at least one circuit
    masks = np.array([np.zeros(E, bool)] + masks)
    vals = evaluate_circuits(zoo, prepared.edges, prepared.ids, prepared.clean, prepared.corr, masks, prepared.metric,
                             prepared.targets).double().numpy()
    baseline = prepared.metric_of(prepared.clean).double().numpy().mean()
    corrupted = vals[0].mean()
    f = [(v.mean() - corrupted) / (baseline - corrupted) for v in vals[1:]]
    area_under = area_from_1 = 0.0
    for i in range(len(f) - 1):
        dx = MIB_FRACTIONS[i + 1] - MIB_FRACTIONS[i]
        area_under += dx * (f[i] + f[i + 1]) / 2
        area_from_1 += dx * (abs(1 - f[i]) + abs(1 - f[i + 1])) / 2
    np.testing.assert_allclose(c.faithfulness, f, atol=1e-6)
    assert c.cpr == pytest.approx(area_under, abs=1e-6) and c.cmd == pytest.approx(area_from_1, abs=1e-6)
    for i, pct in enumerate(fa.percents):  # edges left after pruning, per size
        t = c.test_at(pct)
        assert c.n_kept[c.tests.index(t)] == int(masks[1 + i].sum()) and t.n_edges == int(MIB_FRACTIONS[i] * E)


def test_signed_and_absolute_top_k_differ_where_scores_have_both_signs(scored):
    s = scored["exact"]
    imp = s.importance
    assert (imp > 0).any() and (imp < 0).any()
    k = int((imp > 0).sum())
    assert set(np.nonzero(s.top(k, absolute=False))[0]) == set(np.nonzero(imp > 0)[0])
    assert (s.top(20) == (np.argsort(-np.abs(s.score), kind="stable")[:20, None] == np.arange(len(s.score))).any(0)).all()


def test_reading_a_graph_of_another_model_is_a_clear_error(zoo, tmp_path):
    from circuitry.discovery.mib import read_mib_json

    bad = {"cfg": {"n_layers": 2, "n_heads": 8}, "edges": {"a5.h0->logits": {"score": 1.0, "in_graph": True}}}
    with pytest.raises(InputError, match="not an edge of this model.*Fix"):
        read_mib_json(bad, zoo)
    with pytest.raises(InputError, match="n_layers=12.*another model"):
        read_mib_json({"cfg": {"n_layers": 12, "n_heads": 12}, "edges": {}}, zoo)
    (tmp_path / "x.json").write_text("[1, 2]")
    with pytest.raises(InputError, match="not an MIB"):
        read_mib_json(tmp_path / "x.json", zoo)


def test_prune_keeps_exactly_the_edges_on_input_to_logits_paths(prepared):
    from circuitry.discovery.mib import prune_to_paths

    es = prepared.edges
    keep = es.mask(["L0H3->L1H0<k>", "L1H0->logits", "L0H1->L1H2<q>", "embed->L0H5<v>"])
    out = prune_to_paths(es, keep)
    # L0H3 has no input edge, L1H2 no output edge, L0H5 no output edge: nothing is on a complete path
    assert not out.any()
    keep |= es.mask(["embed->L0H3<q>"])
    assert set(np.nonzero(prune_to_paths(es, keep))[0]) == set(es.lookup(["embed->L0H3<q>", "L0H3->L1H0<k>",
                                                                            "L1H0->logits"]))
