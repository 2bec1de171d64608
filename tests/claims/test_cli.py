"""`circuitry validate` exit codes, through a subprocess on a claim file naming a saved random GPT-2
(2 layers x 4 heads: 28 head pairs, floor 1/28)."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys

import pytest

N, SEED = 8, 0


def _run(path, out, *extra, env=None):
    cmd = [sys.executable, "-m", "circuitry.cli", "validate", str(path), "--out", str(out), *extra]
    return subprocess.run(cmd, capture_output=True, text=True, env=env)


def _yaml(gpt2_dir, heads, **kw):
    extra = "".join(f"    {k}: {v}\n" for k, v in kw.items())
    return (f"model: {gpt2_dir}\nn_prompts: {N}\nseed: {SEED}\nalpha: 0.05\nn_resamples: 200\nclaims:\n"
            f"  - id: pair\n    type: ablation_vs_random\n    statement: these heads matter\n"
            f"    heads: [{', '.join(heads)}]\n{extra}")


@pytest.fixture(scope="module")
def ranked(gpt2_dir):
    """Head pairs of the GPT-2 ranked by their loss damage (computed in-process, independently)."""
    from circuitry.interventions import head_set_effect_fn
    from circuitry.labels import all_heads
    from circuitry.metrics import Targets
    from circuitry.models import load_model
    from circuitry.prompts import make_task

    from circuitry.stats import spawn_seeds

    prompts, ablation = spawn_seeds(SEED, 4)[:2]  # the claim's independent streams
    model = load_model(str(gpt2_dir))
    data = make_task("induction", model, n_prompts=N, seed=prompts)
    fn = head_set_effect_fn(model, data.clean_ids(), Targets(*data.targets()), method="mean", metric="loss",
                            seed=ablation)
    pairs = list(itertools.combinations(all_heads(2, 4), 2))
    eff = dict(zip(pairs, fn(pairs)))
    return sorted(pairs, key=eff.get)


def test_exit_codes(gpt2_dir, ranked, tmp_path):
    good, bad, invalid = tmp_path / "good.yaml", tmp_path / "bad.yaml", tmp_path / "invalid.yaml"
    good.write_text(_yaml(gpt2_dir, ranked[-1]))
    bad.write_text(_yaml(gpt2_dir, ranked[0]))
    invalid.write_text(_yaml(gpt2_dir, ["L0H0", "L3H1"]))

    res = _run(good, tmp_path / "g")
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.startswith("SUPPORTED") and "pair:" in res.stdout
    v = json.loads((tmp_path / "g" / "verdicts.json").read_text())
    assert v["results"][0]["verdict"]["pvalue"] == pytest.approx(1 / 28) and v["exit_code"] == 0

    res = _run(bad, tmp_path / "b")
    assert res.returncode == 1 and res.stdout.startswith("REFUTED")

    res = _run(invalid, tmp_path / "i")
    assert res.returncode == 2
    assert "claim 'pair': field `heads` names L3H1" in res.stderr and "2 layers x 4 heads" in res.stderr
    assert not (tmp_path / "i").exists()  # nothing run, nothing written


@pytest.mark.slow
def test_random_heads_in_worker_processes_give_the_same_evidence(gpt2_dir, ranked, tmp_path):
    f = tmp_path / "good.yaml"
    f.write_text(_yaml(gpt2_dir, ranked[-2]))
    evidence = []
    one_thread = dict(os.environ, OMP_NUM_THREADS="1")  # the parent as the workers: bit-equal arithmetic
    for out, extra in (("s", ()), ("p", ("--executor", "processes", "--workers", "2"))):
        res = _run(f, tmp_path / out, *extra, env=one_thread)
        assert res.returncode in (0, 1), res.stderr[-2000:]
        v = json.loads((tmp_path / out / "verdicts.json").read_text())
        assert v["provenance"]["extra"]["executor"] == ("processes" if extra else "serial")
        evidence.append(v["results"][0]["evidence"])
    assert evidence[0] == evidence[1] and evidence[0][0]["null_std"] > 0
    res = _run(f, tmp_path / "x", "--executor", "threads")
    assert res.returncode == 2 and "threads" in res.stderr and not (tmp_path / "x").exists()


def test_schema_error_exit_2_without_loading_model(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("model: /nonexistent/dir\nclaims:\n  - id: x\n    type: ablation_vs_random\n    statement: s\n"
                 "    heads: [L0H0]\n    alpha: 2\n")
    res = _run(f, tmp_path / "o")
    assert res.returncode == 2 and "claim 'x' (claims[0]): field `alpha`=2" in res.stderr


def test_cli_module_imports_nothing_heavy():
    code = "import sys, circuitry.claims.cli; print('torch' in sys.modules, 'pydantic' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert out.split() == ["False", "False"]


def test_handler_in_process(random_2l, tmp_path, monkeypatch):
    import argparse

    from circuitry.claims import check
    from circuitry.claims.cli import add_parser

    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command"))
    f = tmp_path / "c.yaml"
    f.write_text("n_prompts: 8\nn_resamples: 200\nclaims:\n  - id: x\n    type: ablation_vs_random\n"
                 "    statement: s\n    heads: [L0H0]\n    alpha: 0.001\n")
    real = check.check_claims
    monkeypatch.setattr(check, "check_claims", lambda cf, **kw: real(cf, **{**kw, "model": random_2l}))
    args = parser.parse_args(["validate", str(f), "--out", str(tmp_path / "o")])
    assert args.handler(args) == 1  # alpha 0.001 < floor 1/16: inconclusive
    assert "INCONCLUSIVE" in (tmp_path / "o" / "verdicts.md").read_text().upper()


def test_several_files_in_process(random_2l, tmp_path, monkeypatch, capsys):
    import argparse

    from circuitry.claims import check
    from circuitry.claims.cli import add_parser

    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command"))
    body = "n_prompts: 8\nn_resamples: 200\nclaims:\n  - id: x\n    type: ablation_vs_random\n    statement: s\n"
    a, b, bad = tmp_path / "a.yaml", tmp_path / "b.yaml", tmp_path / "bad.yaml"
    a.write_text(body + "    heads: [L0H0]\n    alpha: 0.001\n")      # inconclusive: floor 1/16
    b.write_text(body + "    heads: [L1H2]\n    alpha: 0.001\n")
    bad.write_text(body + "    heads: [L1H2]\n    match: layer\n    exclude_candidates: true\n")
    real = check._load
    monkeypatch.setattr(check, "_load", lambda cf, model, base, device: real(cf, random_2l, base, device))
    args = parser.parse_args(["validate", str(a), str(b), "--out", str(tmp_path / "o")])
    assert args.handler(args) == 1  # the worst verdict of all files
    assert (tmp_path / "o" / "a" / "verdicts.json").exists() and (tmp_path / "o" / "b" / "verdicts.md").exists()
    assert "a.yaml: 0 supported, 0 refuted, 1 inconclusive" in capsys.readouterr().out
    args = parser.parse_args(["validate", str(a), str(bad), "--out", str(tmp_path / "n")])
    assert args.handler(args) == 2  # an invalid file stops every file before any claim runs
    err = capsys.readouterr().err
    assert "bad.yaml" in err and "claim 'x': exclude_candidates: true cannot be combined with match: layer" in err
    assert not (tmp_path / "n").exists()
