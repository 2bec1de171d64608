"""ROC AUC of every method under every ablation against known circuits (docs/discovery.md, "Ablations").

``python -m circuitry.discovery.ablation_table [--prompts 16] [--tracr NAME ...]`` prints two markdown tables:

- the zoo's ``attn-only-2l`` on the induction task against :func:`~circuitry.discovery.edges.induction_reference`
  (previous-token head L0H3, induction heads L1H0, L1H2, L1H5, L1H7), for the task's default corruption
  (``[BOS] B C``, every input differs) and for ``corrupt="second"`` (``[BOS] A B``: the first half is the same
  in both runs); exact, EAP and EAP-IG by ``|score|`` with a 95 % bootstrap interval over prompts
  (:func:`~circuitry.discovery.reference.compare_to_reference`), ACDC by Conmy et al.'s ROC over a sweep of
  ``tau`` (:func:`~circuitry.discovery.search.acdc_tau_sweep`, KL);
- the tracr models (:mod:`circuitry.zoo.tracr_models`) against both ground truths, ``counterfactual`` (what
  differs between two inputs of the task's length) and ``reads`` (the compiled circuit, constants included),
  exact, EAP and EAP-IG.

Everything is seeded (``--seed``); one CPU thread.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

ABLATION_ORDER = ("counterfactual", "zero", "mean", "mean-positional", "resample")
TAUS = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3)
HEADS = ("L0H3", ["L1H0", "L1H2", "L1H5", "L1H7"])


def induction_rows(n_prompts: int = 16, seed: int = 0, corruptions: Sequence[str] = ("both", "second"),
                   ablations: Sequence[str] = ABLATION_ORDER, n_resamples: int = 1000) -> list[dict]:
    """One row per (corruption, ablation): AUC (and interval) per method on attn-only-2l's induction task."""
    import torch

    from circuitry.discovery import acdc_tau_sweep, edge_set, induction_reference, prepare, score_edges
    from circuitry.discovery.reference import compare_to_reference
    from circuitry.models import load_model
    from circuitry.prompts.induction import induction_pairs

    torch.set_num_threads(1)
    model = load_model("zoo:attn-only-2l")
    info = model.info
    ref = edge_set(model).mask(induction_reference(*HEADS))
    rows = []
    for corrupt in corruptions:
        data = induction_pairs(n_prompts, block_len=min(16, (info.n_ctx - 1) // 2), vocab_size=info.d_vocab,
                               bos=info.bos_token_id, seed=seed, corrupt=corrupt)
        for ab in ablations:
            pr = prepare(model, data, ablation=ab, seed=seed)
            row = {"corrupt": corrupt, "ablation": ab}
            for method in ("exact", "eap", "eap-ig"):
                s = score_edges(model, data, method=method, prepared=pr, progress=False, seed=seed)
                row[method] = compare_to_reference(s, ref, n_resamples=n_resamples, rng=seed)
            kl = prepare(model, data, metric="kl", ablation=ab, seed=seed)
            row["acdc"] = acdc_tau_sweep(model, data, ref, taus=TAUS, prepared=kl, progress=False)
            rows.append(row)
    return rows


def tracr_rows(names: Sequence[str], n_pairs: int = 32, seed: int = 0,
               ablations: Sequence[str] = ABLATION_ORDER) -> list[dict]:
    """One row per (tracr model, ablation): AUC per method against both ground truths."""
    import torch

    from circuitry.discovery import prepare, score_edges
    from circuitry.discovery.reference import auc_of, tracr_problem

    torch.set_num_threads(1)
    rows = []
    for name in names:
        model, data, metric, es, labs = tracr_problem(name, n_pairs=n_pairs, seed=seed)
        for ab in ablations:
            pr = prepare(model, data, metric=metric, ablation=ab, seed=seed)
            row = {"model": name, "ablation": ab,
                   "truth": " / ".join(f"{int(v.sum())}" for v in labs.values()) + f" of {len(es)}"}
            for method in ("exact", "eap", "eap-ig"):
                s = score_edges(model, data, method=method, metric=metric, prepared=pr, progress=False, seed=seed)
                row[method] = [None if lab.all() or not lab.any() else float(auc_of(abs(s.importance), lab))
                               for lab in labs.values()]
            rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m circuitry.discovery.ablation_table", description=__doc__.split("\n")[0])
    p.add_argument("--prompts", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tracr", nargs="*", default=["tracr-reverse", "tracr-frac-prevs", "tracr-sort",
                                                  "tracr-sort-unique", "tracr-hist", "tracr-pair-balance"])
    p.add_argument("--skip-induction", action="store_true")
    args = p.parse_args(argv)
    if not args.skip_induction:
        print("| corruption | ablation | exact | EAP | EAP-IG | ACDC (tau sweep) |")
        print("|---|---|---|---|---|---|")
        for r in induction_rows(args.prompts, args.seed):
            cells = [f"{r[m].auc:.3f} [{r[m].auc_ci.low:.3f}, {r[m].auc_ci.high:.3f}]"
                     for m in ("exact", "eap", "eap-ig")]
            print(f"| {r['corrupt']} | {r['ablation']} | " + " | ".join(cells) + f" | {r['acdc'].auc:.3f} |",
                  flush=True)
    if args.tracr:
        print("\n| model | ablation | edges (counterfactual / reads of all) | exact | EAP | EAP-IG |")
        print("|---|---|---|---|---|---|")
        for r in tracr_rows(args.tracr, seed=args.seed):
            cells = [" / ".join("-" if x is None else f"{x:.3f}" for x in r[m]) for m in ("exact", "eap", "eap-ig")]
            print(f"| {r['model']} | {r['ablation']} | {r['truth']} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
