"""Every ablation with every method, recorded everywhere; reference circuits from the command line; bad input
refused before any work."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from circuitry.errors import InputError

ABLATIONS = ("counterfactual", "zero", "mean", "mean-positional", "resample")


@pytest.fixture(scope="module")
def small():
    from circuitry.models import load_model
    from circuitry.prompts import make_task

    torch.set_num_threads(1)
    m = load_model("zoo:attn-only-1l")
    return m, make_task("induction", m, n_prompts=6, seed=1)


@pytest.mark.parametrize("ablation", ABLATIONS)
def test_every_method_runs_with_every_ablation_and_records_it(small, ablation):
    from circuitry.discovery import prepare, score_edges
    from circuitry.discovery.runs import evaluate_circuits

    model, data = small
    pr = prepare(model, data, ablation=ablation, seed=3)
    kl = prepare(model, data, metric="kl", ablation=ablation, seed=3)
    E = len(pr.edges)
    # the run with every edge patched is the ablated run whose metric the scores and curves use as m(empty)
    every = evaluate_circuits(model, pr.edges, pr.ids, pr.clean, pr.corr, np.zeros((1, E), bool), pr.metric,
                              pr.targets)[0]
    torch.testing.assert_close(every, pr.metric_of(pr.corr), rtol=0, atol=1e-4)
    for method in ("exact", "eap", "eap-ig", "acdc"):
        use = kl if method == "acdc" else pr
        s = score_edges(model, data, method=method, prepared=use, progress=False, seed=3, steps=2)
        assert s.params["ablation"] == ablation and s.provenance.extra["ablation"] == ablation
        assert s.to_graph().graph["ablation"] == ablation and np.isfinite(s.score).all()
        if ablation == "counterfactual":
            np.testing.assert_allclose(s.corrupted, use.metric_of(use.corr).tolist())
    if ablation == "zero":
        assert not pr.corr.acts.any()
    if ablation == "mean":
        torch.testing.assert_close(pr.corr.acts[:, 0, 0], pr.clean.acts.mean(dim=(1, 2)))
    if ablation == "mean-positional":
        torch.testing.assert_close(pr.corr.acts[:, 2, 3], pr.clean.acts[:, :, 3].mean(1))


def test_exact_scores_follow_the_ablation(small):
    """Under "zero", exact patching of embed -> logits feeds the logits the stream without the embedding."""
    from circuitry.discovery import prepare, score_edges
    from circuitry.models import Edit

    model, data = small
    pr = prepare(model, data, ablation="zero")
    s = score_edges(model, data, method="exact", prepared=pr, progress=False)
    ids = pr.ids
    out = model.run(ids, edits=[Edit("resid_post", 0, -pr.clean.acts[0], op="add")])
    want = (pr.metric(out.logits, pr.targets).float().cpu() - pr.metric_of(pr.clean)).mean()
    assert s.score[s.edges.index("embed->logits")] == pytest.approx(float(want), abs=1e-4)


def test_resample_draws_another_prompt_from_its_own_stream():
    from circuitry.discovery.ablations import resample_sources

    a, b = resample_sources(16, 0), resample_sources(16, 0)
    assert (a == b).all() and (a != np.arange(16)).all() and sorted(a) == list(range(16))
    assert (resample_sources(16, 1) != a).any()


def test_unknown_ablation_is_refused_before_work(small):
    from circuitry.discovery import score_edges

    model, data = small
    with pytest.raises(InputError, match="ablation='patching'.*counterfactual"):
        score_edges(model, data, method="eap", ablation="patching")


def test_cli_ablation_and_reference(tmp_path, capsys):
    from circuitry.cli import main
    from circuitry.discovery import induction_reference
    from circuitry.discovery.report import DiscoveryReport

    ref = {"edges": {}}
    names = {"embed": "input", "logits": "logits"}

    def mib(node):
        return names.get(node) or f"a{node[1]}.h{node[3]}"

    for u, v, k in induction_reference("L0H3", ["L1H0", "L1H2", "L1H5", "L1H7"]):
        ref["edges"][f"{mib(u)}->{mib(v)}" + (f"<{k}>" if k != "out" else "")] = {"score": 1.0, "in_graph": True}
    (tmp_path / "ref.json").write_text(json.dumps(ref))
    out = tmp_path / "out"
    rc = main(["discover", "--method", "exact,eap", "--ablation", "mean", "--evaluator", "mib", "--reference",
               str(tmp_path / "ref.json"), "--n-prompts", "8", "--n-random", "3", "--n-resamples", "100",
               "--stability-splits", "10", "--quiet", "--out", str(out)])
    assert rc == 0
    rep = DiscoveryReport.model_validate_json((out / "discovery.json").read_text())
    assert rep.ablation == "mean" and rep.faithfulness.ablation == "mean" and rep.faithfulness.top_k == "signed"
    assert all(s.params["ablation"] == "mean" for s in rep.scores)
    assert len(rep.reference.edges) == 17 and [c.method for c in rep.reference_comparisons] == ["exact", "eap"]
    for c in rep.reference_comparisons:
        assert c.auc > 0.9 and c.auc_ci.low <= c.auc <= c.auc_ci.high and c.n_resamples == 100
    assert "against the reference" in capsys.readouterr().out

    # a reference of another model: refused after the model loads, before any search, naming the fix
    ref["edges"]["a3.h0->logits"] = {"score": 1.0, "in_graph": True}
    (tmp_path / "bad.json").write_text(json.dumps(ref))
    assert main(["discover", "--method", "exact", "--reference", str(tmp_path / "bad.json"), "--quiet",
                 "--out", str(tmp_path / "o2")]) == 2
    err = capsys.readouterr().err
    assert "'a3.h0->logits' is not an edge of this model" in err and "Fix:" in err
    assert not (tmp_path / "o2" / "discovery.json").exists()
    with pytest.raises(SystemExit):
        main(["discover", "--ablation", "bogus", "--out", str(tmp_path / "o3")])


def test_reference_from_circuitry_graph_files(small, tmp_path):
    from circuitry.discovery import score_edges
    from circuitry.discovery.reference import compare_to_reference, load_reference
    from circuitry.graph import build_graph, write_gexf, write_graphml, write_node_link_json
    from circuitry.graph.schema import EdgeMeasurement

    model, data = small
    s = score_edges(model, data, method="exact", progress=False, threshold=0.0, alpha=0.5)
    es = s.edge_set()
    kept = [n for n, k in zip(s.edges, s.in_circuit) if k]
    assert 0 < len(kept) < len(es)
    for write, name in ((write_graphml, "g.graphml"), (write_gexf, "g.gexf"), (write_node_link_json, "g.json")):
        ref = load_reference(write(s.to_graph(), tmp_path / name), es)  # in_circuit marks the reference
        assert ref.edges == kept
    # a hand-made graph without marks: every edge of it is a reference edge
    G = build_graph(n_layers=1, n_heads=8, edges=[EdgeMeasurement(source="L0H1", target="logits", kind="out",
                                                                  effect=1.0)])
    ref = load_reference(write_graphml(G, tmp_path / "hand.graphml"), es)
    assert ref.edges == ["L0H1->logits"]
    c = compare_to_reference(s, ref.mask(es), n_resamples=100)
    assert c.n_reference == 1 and 0 <= c.auc <= 1


def test_reference_from_a_tracr_models_ground_truth(small):
    from circuitry.discovery import edge_set
    from circuitry.discovery.reference import load_reference
    from circuitry.models import load_model
    from circuitry.zoo.tracr_models import ground_truth

    es = edge_set(load_model("zoo:tracr-reverse"))
    ref = load_reference("zoo:tracr-reverse", es)
    assert ref.edges == ground_truth("tracr-reverse") and ref.source == "zoo:tracr-reverse:counterfactual"
    reads = load_reference("zoo:tracr-reverse", es, ablation="mean")  # the truth a mean ablation can see
    assert set(reads.edges) == set(ground_truth("tracr-reverse", kind="reads")) and reads.source.endswith(":reads")
    with pytest.raises(InputError, match="only the tracr models.*Fix"):
        load_reference("zoo:attn-only-2l", es)
    with pytest.raises(InputError, match="not an edge of this model.*Fix"):  # another model's truth
        load_reference("zoo:tracr-reverse", edge_set(small[0]))
