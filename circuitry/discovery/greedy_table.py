"""The numbers of ``docs/per-edge-scores.md``: greedy pruning against exact patching and EAP-IG on the zoo
induction task, at equal circuit size, in-sample and on held-out prompts; backup heads of the induction
heads; and how many edges keep their verdict across ablations and metrics.

``python -m circuitry.discovery.greedy_table`` (one torch thread; about 4 minutes on a busy 2-core machine,
most of it the greedy search's 3,992 patched circuits).
"""

from __future__ import annotations

import time


def main() -> None:
    import torch

    from circuitry.discovery.backup import backup_heads
    from circuitry.discovery.compare import compare_faithfulness
    from circuitry.discovery.greedy import greedy_scores
    from circuitry.discovery.search import prepare, score_edges
    from circuitry.discovery.sensitivity import sensitivity_sweep
    from circuitry.models import load_model
    from circuitry.prompts import make_task

    torch.set_num_threads(1)
    m = load_model("zoo:attn-only-2l")
    d = make_task("induction", m, n_prompts=16, seed=0)
    held = make_task("induction", m, n_prompts=32, seed=1)
    pr = prepare(m, d)
    t = time.perf_counter()
    ex = score_edges(m, d, method="exact", prepared=pr, progress=False)
    t_ex = time.perf_counter() - t
    t = time.perf_counter()
    ig = score_edges(m, d, method="eap-ig", prepared=pr, progress=False)
    t_ig = time.perf_counter() - t
    g = greedy_scores(m, d, prepared=pr, warm=ig, progress=False)
    print(f"ranked on 16 prompts (seed 0): exact {t_ex:.1f} s, EAP-IG {t_ig:.1f} s, greedy pruning "
          f"{g.params['seconds_search']:.0f} s for {g.params['circuits_evaluated']} circuits (M = "
          f"{g.params['candidates']}) after EAP-IG; kept {sum(g.in_circuit)} edges, f {g.params['kept_f']:.3f}")
    for name, data, p in (("in-sample", d, pr), ("held-out, 32 prompts (seed 1)", held, prepare(m, held))):
        for a, b in ((g, ex), (g, ig), (ex, ig)):
            print(f"== {name}")
            print(compare_faithfulness(m, data, a, b, prepared=p, n_resamples=2000).summary())
    b = make_task("induction", m, n_prompts=32, seed=0)
    for ablation in ("mean", "zero", "resample"):
        rep = backup_heads(m, b, ["L1H0", "L1H2", "L1H5", "L1H7"], ablation=ablation)
        sa = rep.main_additivity
        print(f"== backups of the induction heads ({ablation} ablation, 32 prompts): {len(rep.backups)} backup heads; "
              f"joint {sa.joint:.3f} vs summed {sa.summed:.3f}, difference {sa.difference:+.3f} "
              f"[{sa.ci_low:.3f}, {sa.ci_high:.3f}], p {sa.pvalue:.3g}")
    for method in ("exact", "eap-ig"):
        s = sensitivity_sweep(m, d, method=method)
        print(f"== sensitivity ({method}, 5 ablations x 3 metrics, 16 prompts): {s.count('robust in')} robustly in, "
              f"{s.count('fragile')} fragile, {s.count('robust out')} robustly out; kept "
              f"{min(s.n_kept)}-{max(s.n_kept)} edges; robustly in: "
              + ", ".join(e.edge for e in s.edges if e.conclusion == "robust in"))


if __name__ == "__main__":
    main()
