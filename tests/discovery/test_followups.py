"""``discover --backup`` and ``--sensitivity`` land in the report (discovery.json, summary, report.html data),
on the hand-built model whose answers are known by construction (tests/discovery/test_backup.py): L0H0
copies the value and writes a flag; L1H0 copies the value only when the flag is off."""

from __future__ import annotations

import json

import pytest
import torch

from tests.discovery.test_backup import _backup_model, _pairs


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    from circuitry.discovery.report import run_discovery

    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("followups")
    rep = run_discovery(_backup_model(), _pairs(), out, methods=["exact"], ablation="zero", n_random=19,
                        n_resamples=200, stability_splits=2, progress=False, sensitivity=True, backup=["L0H0"])
    return rep, out


def test_backup_finds_the_backup_and_auto_takes_the_kept_circuits_heads(report):
    from circuitry.discovery.followups import circuit_heads, run_backup

    rep, out = report
    assert rep.backup is not None and rep.backup.main == ["L0H0"]
    assert rep.backup.backups == ["L1H0"]  # takes over once L0H0 is ablated: known by construction
    # under zero ablation the kept exact circuit holds L0H0 -> logits and the flag edge L0H0 -> L1H0<q>
    exact = rep.scores[0]
    assert circuit_heads(exact.edges, exact.in_circuit) == ["L0H0", "L1H0"]
    auto, why = run_backup(_backup_model(), _pairs(), rep.scores, "auto", ablation="zero", metric="logit_diff",
                           alpha=0.01, min_share=0.05, seed=0)
    assert why is None and auto.main == ["L0H0", "L1H0"] and auto.backups == []
    sa = rep.backup.with_backups
    assert sa is not None and sa.ci_low > 0  # joint damage of L0H0 + L1H0 far above their summed singles
    saved = json.loads((out / "discovery.json").read_text())
    assert saved["backup"]["main"] == ["L0H0"] and (out / "backup.json").is_file()
    assert "backup heads: main heads L0H0" in rep.summary() and "L1H0" in rep.summary()


def test_sensitivity_flips_the_flag_edge_under_zero_ablation(report):
    """Counterfactual patching leaves L0H0's flag unchanged (every prompt has a value), so the flag edge into
    L1H0's query is out; zero ablation removes the flag, L1H0 copies the value, and the edge is in."""
    rep, out = report
    sens = {e.edge: e for e in rep.sensitivity.edges}
    flag = sens["L0H0->L1H0<q>"]
    assert flag.conclusion == "fragile" and not flag.kept[0]
    assert "zero/logit_diff" in flag.flips
    assert sens["L0H0->logits"].conclusion == "robust in"
    assert json.loads((out / "discovery.json").read_text())["sensitivity"]["baseline"] == "counterfactual/logit_diff"
    assert (out / "sensitivity.json").is_file()


def test_backup_option_checked(zoo):
    from circuitry.discovery.followups import circuit_heads, parse_backup
    from circuitry.errors import InputError

    assert parse_backup("L1H0, L0H3", zoo) == ["L1H0", "L0H3"] and parse_backup("auto", zoo) == "auto"
    for bad in ("L9H0", "L1H0,L1H0", "heads"):
        with pytest.raises(InputError, match="--backup"):
            parse_backup(bad, zoo)
    assert circuit_heads(["L0H3->L1H0<k>", "L1H0->logits", "embed->L1G0<v>", "L0H1->L1H2<q>"],
                         [True, True, True, False]) == ["L0H3", "L1H0"]
