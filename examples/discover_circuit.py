"""Automated circuit search on the shipped attn-only-2l: exact edge patching, EAP, EAP-IG and ACDC, compared
by faithfulness (MIB's curves, bootstrap bands, random-edge baseline) and by ROC AUC against the known
induction circuit. Writes everything `circuitry discover` writes to the folder given as argv[1]."""

import sys

import torch

from circuitry.discovery import induction_reference, roc_auc
from circuitry.discovery.report import run_discovery
from circuitry.models import load_model
from circuitry.prompts import make_task

torch.set_num_threads(1)
out = sys.argv[1] if len(sys.argv) > 1 else "discover-out"
model = load_model("zoo:attn-only-2l")
data = make_task("induction", model, n_prompts=16, seed=0)
# faithfulness against the default 199 random rankings (with 19 the per-size Holm floor, up to 5/20, exceeds
# alpha and every size is inconclusive by construction); 100 split-half splits for the ranking stability,
# no ACDC reruns (acdc_splits=0)
report = run_discovery(model, data, out, methods=["exact", "eap", "eap-ig", "acdc"], n_resamples=500,
                       stability_splits=100, acdc_splits=0, seed=0, progress=False)

# the reference circuit: previous-token head L0H3 -> K of the induction heads, embed -> their Q and V,
# induction heads -> logits, embed -> logits
ref = report.scores[0].edge_set().mask(induction_reference("L0H3", ["L1H0", "L1H2", "L1H5", "L1H7"]))
for s, curve in zip(report.scores, report.faithfulness.curves):
    print(f"{s.method:>6}: ROC AUC {roc_auc(s, ref):.3f}, {sum(s.in_circuit):3d} edges kept, "
          f"CPR {curve.cpr:.3f} [{curve.cpr_ci.low:.3f}, {curve.cpr_ci.high:.3f}], "
          f"CMD {curve.cmd:.3f} [{curve.cmd_ci.low:.3f}, {curve.cmd_ci.high:.3f}]")
i10 = report.faithfulness.percents.index(10.0)
fa = report.faithfulness
print(f"at 10% of edges ({fa.n_edges[i10]}): random sets f = {fa.random_mean[i10]:.3f} (mean of {fa.n_random}); "
      + ", ".join(f"{c.method} f = {c.faithfulness[i10]:.2f} (p = {c.pvalue[i10]:.3f})" for c in fa.curves))
for st in report.stability:
    print(st.summary())
