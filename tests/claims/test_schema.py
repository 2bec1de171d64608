"""Claim-file schema: JSON Schema in sync, examples parse, every error names the claim, field and fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from circuitry.claims.schema import SCHEMA_PATH, ClaimFileError, json_schema, load_claim_file, parse_claim_file

EXAMPLES = sorted((Path(__file__).parents[2] / "examples" / "claims").glob("*.yaml"))


def _claim(**kw):
    base = {"id": "c1", "type": "ablation_vs_random", "statement": "heads matter", "heads": ["L1H3"]}
    return {"claims": [{**base, **kw}]}


def test_published_json_schema_is_in_sync():
    assert json.loads(SCHEMA_PATH.read_text()) == json_schema(), (
        "claim-file.schema.json is stale: run python -c 'from circuitry.claims.schema import write_json_schema; "
        "write_json_schema()'")


def test_json_schema_lists_every_claim_type():
    text = json.dumps(json_schema())
    for t in ("ablation_vs_random", "ablation_table", "path_share", "sufficiency", "partial_necessity", "minimality"):
        assert f'"{t}"' in text


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_claim_files_parse(path):
    cf = load_claim_file(path)
    assert cf.claims and all(c.statement for c in cf.claims)


def test_defaults_fill_in():
    cf = parse_claim_file(_claim())
    c = cf.claims[0]
    assert (cf.model, cf.alpha, cf.draws, c.ablation, c.metric, c.direction, c.match) == (
        "zoo:attn-only-2l", 0.01, 1000, "mean", "loss", "more", "all")


@pytest.mark.parametrize("kw, needles", [
    ({"colour": "red"}, ["claim 'c1'", "unknown field `colour`", "Fix: remove it"]),
    ({"heads": ["L1-H3"]}, ["claim 'c1'", "`heads`", "'L1-H3'", "Fix: write heads as labels"]),
    ({"alpha": 1.5}, ["claim 'c1'", "`alpha`=1.5", "less than 1", "Fix: use a level strictly between 0 and 1"]),
    ({"alpha": 0}, ["`alpha`=0", "greater than 0"]),
    ({"type": "vibes"}, ["claim 'c1'", "`type`='vibes' is not a claim type", "ablation_vs_random"]),
    ({"ablation": "noise"}, ["`ablation`='noise'", "Fix: use 'zero', 'mean' or 'resample'"]),
    ({"statement": None}, ["`statement`"]),
    ({"match": "layer", "exclude_candidates": True},
     ["claim 'c1'", "exclude_candidates: true cannot be combined with match: layer", "Fix: drop exclude_candidates"]),
    ({"given": ["L0H3"], "exclude_candidates": True}, ["claim 'c1'", "cannot be combined with given"]),
    ({"given": ["L1H3"]}, ["claim 'c1'", "every head of `heads` is in `given`"]),
    ({"type": "ablation_table", "match": "layer", "exclude_candidates": True}, ["claim 'c1'", "match: layer"]),
])
def test_schema_errors_name_claim_field_and_fix(kw, needles):
    with pytest.raises(ClaimFileError) as exc:
        parse_claim_file(_claim(**kw))
    msg = str(exc.value)
    assert "no claim was run" in msg
    for n in needles:
        assert n in msg, msg


def test_missing_field_and_duplicate_ids():
    with pytest.raises(ClaimFileError, match=r"claim 'c1' \(claims\[0\]\): field `sender` is required"):
        parse_claim_file({"claims": [{"id": "c1", "type": "path_share", "statement": "s", "receiver": "L1H0",
                                      "kind": "k"}]})
    two = _claim()["claims"] * 2
    with pytest.raises(ClaimFileError, match="claim id 'c1' is used twice"):
        parse_claim_file({"claims": two})


def test_top_level_errors(tmp_path):
    with pytest.raises(ClaimFileError, match="file: field `n_prompts`=1"):
        parse_claim_file({**_claim(), "n_prompts": 1})
    bad = tmp_path / "bad.yaml"
    bad.write_text("claims: [\n  - id: x\n")
    with pytest.raises(ClaimFileError, match="is not valid YAML"):
        load_claim_file(bad)
    with pytest.raises(ClaimFileError, match="does not exist"):
        load_claim_file(tmp_path / "nope.yaml")
    j = tmp_path / "c.json"
    j.write_text(json.dumps(_claim(alpha=0.05)))
    assert load_claim_file(j).claims[0].alpha == 0.05
