"""Find the induction heads of a model: head scores, composition scores, ICL score.

Run: ``python examples/scores_induction_heads.py [OUT_DIR]`` (model ``zoo:attn-only-2l``; default output:
a new temporary directory). About 10 seconds on a laptop CPU for the zoo model. Used by
``docs/tutorials/find-induction-heads.md``.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from circuitry.labels import parse_head
from circuitry.models import load_model
from circuitry.scores import all_composition_scores, icl_score, ov_eigenvalue_positivity, score_heads


def main(model_name: str = "zoo:attn-only-2l", out: str | None = None) -> dict:
    out_dir = Path(out or tempfile.mkdtemp(prefix="circuitry-scores-"))
    model = load_model(model_name)

    # 1. Olsson et al.'s evaluators on 10 sequences of 25 random tokens repeated 4 times, BOS first.
    heads = score_heads(model, ["previous_token", "induction", "duplicate_token", "copying"], n_samples=10, seed=0)
    prev, ind = heads["previous_token"], heads["induction"]
    prev_head, ind_head = prev.best(layer=0), ind.best(layer=model.info.n_layers - 1)
    print("previous-token:", ", ".join(f"{h}={v:.2f}" for h, v in prev.top(3)))
    print("induction:     ", ", ".join(f"{h}={v:.2f}" for h, v in ind.top(3)))
    lay, h = parse_head(ind_head)
    print(f"{ind_head} induction score {ind.numpy()[lay, h]:.3f} "
          f"[{ind.ci_low.numpy()[lay, h]:.3f}, {ind.ci_high.numpy()[lay, h]:.3f}] (95% bootstrap CI)")

    # 2. Which layer-0 head feeds the induction heads, and through which input? (Elhage et al. 2021)
    comp = all_composition_scores(model, n_baseline=1000, seed=0)
    for kind in "QKV":
        c = comp[kind]
        print(f"{kind}-composition {prev_head}->{ind_head}: {c.score(prev_head, ind_head):.3f} "
              f"(random baseline {c.baseline_mean:.3f} +- {c.baseline_std:.3f})")
    src, dst, raw, above = comp["K"].pairs(1)[0]
    print(f"strongest K-composition: {src}->{dst} {raw:.3f} ({above:+.3f} above baseline)")

    # 3. Copying and in-context learning.
    ov = ov_eigenvalue_positivity(model)
    print(f"OV eigenvalue positivity of {ind_head}: {ov.numpy()[lay, h]:.2f}")
    icl = icl_score(model, n_samples=32, seed=0)
    print(f"ICL score: {icl.statistic:.2f} nats [{icl.ci_low:.2f}, {icl.ci_high:.2f}]")

    # 4. Figures and JSON.
    for name, s in heads.items():
        s.heatmap(out_dir / f"{name}.png")
    comp["K"].heatmap(out_dir / "composition_K.png")
    (out_dir / "induction.json").write_text(ind.model_dump_json(indent=2))
    print(f"figures and JSON in {out_dir}")
    return {"previous_token_head": prev_head, "induction_head": ind_head, "k_top": (src, dst, raw)}


if __name__ == "__main__":
    main(out=sys.argv[1] if len(sys.argv) > 1 else None)  # argv[1]: output folder (the tests pass one)
