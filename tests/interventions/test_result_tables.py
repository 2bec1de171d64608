"""One convention for the share of the gap across the API, tables, the CLI and the figures."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from circuitry.cli import main
from circuitry.interventions import activation_patch, path_patch
from circuitry.metrics import share_label, share_of_gap
from circuitry.models import load_model
from circuitry.prompts import make_task


@pytest.fixture(scope="module")
def zoo_run():
    model = load_model("zoo:attn-only-2l")
    data = make_task("induction", model, n_prompts=8, seed=0)
    return model, data, activation_patch(model, data, site="z", direction="noising", progress=False)


def test_share_is_one_minus_normalized_effect_when_noising(zoo_run):
    _, _, res = zoo_run
    np.testing.assert_allclose(res.share.numpy(), 1 - res.effect.numpy())
    assert share_of_gap(0.25, "denoising") == 0.25
    # the previous-token head L0H3 is the bottleneck: it carries most of the gap
    assert res.share.numpy()[0, 3] > 0.8 and res.share.numpy()[0, 3] == res.share.numpy().max()


def test_records_and_summary(zoo_run):
    _, _, res = zoo_run
    rows = res.to_records()
    assert len(rows) == 16 and {"layer", "head", "share", "normalized_effect", "metric_mean"} <= set(rows[0])
    top = max(rows, key=lambda r: r["share"])
    assert (top["layer"], top["head"]) == (0, 3)
    df = res.to_frame()
    assert df.shape[0] == 16 and df.loc[df["share"].idxmax(), ["layer", "head"]].tolist() == [0, 3]
    s = res.summary(k=3)
    assert "L0H3" in s and len(s.splitlines()) == 2 and "largest share of the gap" in s


def test_path_patch_records_use_the_same_share(zoo_run):
    model, data, _ = zoo_run
    pp = path_patch(model, data, senders=["L0H3"], kinds=("k",), progress=False)
    recs = pp.to_records()
    assert all(r["share"] == pytest.approx(1 - r["normalized_effect"]) for r in recs)
    assert "L0H3->L1H0:k" in pp.summary(k=8)


def test_patch_cli_prints_and_writes_the_share(tmp_path, capsys):
    assert main(["patch", "--n-prompts", "8", "--out", str(tmp_path), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "largest share of the logit_diff gap carried" in out and "L0H3 0.9" in out
    with open(tmp_path / "patching.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 16 and float(next(r for r in rows if r["layer"] == "0" and r["head"] == "3")["share"]) > 0.8
    assert share_label("logit_diff", "noising").startswith("share of the logit_diff gap")
