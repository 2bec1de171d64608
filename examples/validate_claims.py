"""Validate a paper's claims on the zoo model: the seed study (the previous-token bottleneck, the ablation table
of the induction heads under a layer-matched null, the induction heads beyond the bottleneck under a
conditional null, a key path) and a false claim that circuitry refutes (docs/tutorials/validate-a-claim.md).

Usage: python examples/validate_claims.py [OUT_DIR]
"""

import sys
from pathlib import Path

from circuitry.claims import check_claims, load_claim_file, one_line, write_report
from circuitry.models import load_model
from circuitry.scores import score_heads

here = Path(__file__).resolve().parent / "claims"
out = Path(sys.argv[1] if len(sys.argv) > 1 else "verdicts")
model = load_model("zoo:attn-only-2l")  # loaded once, shared by both claim files

# 1. The claim file names the heads; check that they are still the ones the model's scores pick.
scores = score_heads(model, ["previous_token", "induction"], n_samples=8, n_resamples=200)
prev_token = scores["previous_token"].best(layer=0)
induction = {h for h, v in scores["induction"].top(16) if v >= 0.5}
study = load_claim_file(here / "induction_seed_study.yaml")
claimed = {c.id: set(getattr(c, "heads", [])) | set(getattr(c, "given", [])) for c in study.claims}
print(f"scores: previous-token head {prev_token}, induction heads {sorted(induction)}")
if (claimed["previous-token-bottleneck"] != {prev_token} or claimed["induction-heads-table"] != induction
        or claimed["induction-heads-beyond-bottleneck"] != induction | {prev_token}):
    sys.exit(f"the seed study's heads {claimed} are not the heads the scores pick; update the YAML")

# 2. Check every claim of both files and write verdicts.json / verdicts.md per file.
outcomes = {}
for name in ("induction_seed_study", "false_claim"):
    report = check_claims(load_claim_file(here / f"{name}.yaml"), model=model, claim_file_name=f"{name}.yaml")
    write_report(report, out / name)
    for r in report.results:
        print(one_line(r))
        if r.verdict.null:
            print(f"    null: {r.verdict.null}")
        for row in r.table:
            band = f"sd {row.spread:.3f}" if row.spread is not None else f"CI [{row.ci_low:.3f}, {row.ci_high:.3f}]"
            print(f"    {row.metric:<10} {row.condition:<24} {row.mean:8.3f}  {band}")
        outcomes[r.id] = r.verdict.outcome

expected = {"previous-token-bottleneck": "supported", "induction-heads-table": "supported",
            "induction-heads-beyond-bottleneck": "supported", "previous-token-head-keys": "supported",
            "bystander-heads-matter": "refuted"}
wrong = {k: v for k, v in outcomes.items() if expected[k] != v}
print(f"wrote {out}/*/verdicts.json and verdicts.md")
sys.exit(f"unexpected verdicts: {wrong}" if wrong else 0)
