"""Sensitivity sweeps: the kept circuit's verdict per edge across ablations and metrics (zoo induction)."""

from __future__ import annotations

import json

import pytest


@pytest.fixture(scope="module")
def sweeps(zoo, induction):
    from circuitry.discovery.sensitivity import sensitivity_sweep

    opts = {"ablations": ["counterfactual", "zero"], "metrics": ["logit_diff", "kl"]}
    return {m: sensitivity_sweep(zoo, induction, method=m, **opts) for m in ("exact", "eap-ig")}


def test_conclusions_follow_the_kept_circuits(sweeps):
    rep = sweeps["exact"]
    assert rep.settings == ["counterfactual/logit_diff", "counterfactual/kl", "zero/logit_diff", "zero/kl"]
    assert rep.baseline == "counterfactual/logit_diff" and not rep.skipped
    assert rep.count("robust in") + rep.count("robust out") + rep.count("fragile") == 257
    for e in rep.edges:
        assert e.conclusion == ("robust in" if all(e.kept) else "robust out" if not any(e.kept) else "fragile")
        assert e.flips == [s for s, k in zip(rep.settings[1:], e.kept[1:]) if k != e.kept[0]]
    assert rep.n_kept == [sum(e.kept[i] for e in rep.edges) for i in range(4)]


def test_known_robust_and_fragile_edges(sweeps):
    """Exact patching keeps the K-composition edge into the strongest induction head under both ablations and
    metrics; the one into L1H2 drops out when scored by KL (16 prompts, seed 0). EAP-IG loses the former under
    zero ablation: its integrated gradients are a worse approximation there than the patch itself."""
    ex = {e.edge: e for e in sweeps["exact"].edges}
    assert ex["L0H3->L1H0<k>"].conclusion == "robust in"
    assert ex["L1H0->logits"].conclusion == "robust in"
    assert ex["L0H3->L1H2<k>"].conclusion == "fragile" and ex["L0H3->L1H2<k>"].flips[0] == "counterfactual/kl"
    ig = {e.edge: e for e in sweeps["eap-ig"].edges}
    assert ig["L0H3->L1H0<k>"].conclusion == "fragile" and "zero/logit_diff" in ig["L0H3->L1H0<k>"].flips
    assert "fragile" in sweeps["eap-ig"].summary()


def test_bad_options_refused(zoo, induction):
    from circuitry.discovery.sensitivity import sensitivity_sweep
    from circuitry.errors import InputError

    with pytest.raises(InputError, match="method"):
        sensitivity_sweep(zoo, induction, method="acdc")
    with pytest.raises(InputError, match="ablation"):
        sensitivity_sweep(zoo, induction, ablations=["patching"])


def test_cli_discover_sensitivity(tmp_path):
    from circuitry.cli import main
    from circuitry.discovery.sensitivity import SensitivityReport

    out = tmp_path / "out"
    rc = main(["discover", "--method", "eap-ig", "--n-prompts", "8", "--n-random", "0", "--n-resamples", "100",
               "--stability-splits", "2", "--sensitivity", "--quiet", "--out", str(out)])
    assert rc == 0
    rep = SensitivityReport.model_validate_json((out / "sensitivity.json").read_text())
    assert rep.method == "eap-ig" and len(rep.settings) + len(rep.skipped) == 15 and len(rep.edges) == 257
    assert json.loads((out / "sensitivity.json").read_text())["baseline"] == "counterfactual/logit_diff"
