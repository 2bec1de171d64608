"""``circuitry decodability``: decode the latent task of in-context examples from every layer.

For each task set, writes ``OUT/decodability_<set>.json`` (a
:class:`~circuitry.decodability.run.DecodabilityResult`), ``.md`` and ``.png``. Nothing heavy is imported
until the command runs.
"""

from __future__ import annotations

import argparse

from circuitry.cli_common import add_model_args

FAMILIES = {"mapping": "copy,successor,reverse,permutation", "topics": "topic_a,topic_b,topic_c,topic_d"}


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``decodability`` subcommand and set ``args.handler``."""
    p = subparsers.add_parser(
        "decodability", help="decode the latent task of in-context examples from each layer (task vectors)",
        description="Build prompts with k in-context examples of several latent tasks, decode the task from the "
                    "residual stream at the query with a cross-validated probe on held-out prompts (against "
                    "shuffled labels, with p-values) at every layer and k, and measure the model's task accuracy.")
    add_model_args(p, task=False)
    p.add_argument("--out", required=True, help="output directory (created if missing)")
    p.add_argument("--tasks", nargs="+", default=["mapping", "topics"],
                   help="task sets, each decoded separately: 'mapping' (copy, successor, reverse, permutation), "
                        "'topics' (four latent symbol sets), a comma-separated list of those task names, or a "
                        ".jsonl file of your prompts (docs/tutorials/decodability.md); default: mapping topics")
    p.add_argument("--n-examples", default="0,1,2,4,8,16", help="numbers of in-context examples (default 0,1,2,4,8,16)")
    p.add_argument("--n-prompts", type=int, default=64, help="synthetic prompts per task (default 64)")
    p.add_argument("--query", choices=("novel", "seen"), default="novel",
                   help="novel: the query is not among the examples' inputs (default); seen: it is")
    p.add_argument("--classifier", choices=("ridge", "knn"), default="ridge", help="the probe (default ridge)")
    p.add_argument("--n-permutations", type=int, default=1000, help="shuffled-label refits (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="seed of prompts, folds and shuffles (default 0)")
    p.set_defaults(handler=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Handler of ``circuitry decodability``."""
    from pathlib import Path

    from circuitry.cli_common import load_model_from_args
    from circuitry.decodability.run import decodability
    from circuitry.errors import bad_value
    from circuitry.io import atomic_write_json, atomic_write_text

    try:
        ks = [int(k) for k in args.n_examples.split(",")]
    except ValueError:
        raise bad_value("--n-examples", args.n_examples, "comma-separated integers, e.g. 0,1,2,4,8") from None
    sets = []
    for spec in args.tasks:
        if spec.endswith(".jsonl"):
            if not Path(spec).is_file():
                raise bad_value("--tasks", spec, "an existing .jsonl file of prompts")
            sets.append((Path(spec).stem, spec))
        else:
            names = FAMILIES.get(spec, spec).split(",")
            sets.append((spec if spec in FAMILIES else "_".join(names), names))
    from circuitry.io import check_out_dir

    model = load_model_from_args(args)
    out = check_out_dir(args.out)
    for label, tasks in sets:
        r = decodability(model, tasks, n_examples=ks, n_prompts=args.n_prompts, query=args.query,
                         classifier=args.classifier, n_permutations=args.n_permutations, seed=args.seed,
                         progress=not args.quiet)
        atomic_write_json(out / f"decodability_{label}.json", r)
        atomic_write_text(out / f"decodability_{label}.md", r.to_markdown())
        r.plot(out / f"decodability_{label}.png")
        acc, adj = r.accuracy.numpy(), r.adjusted_pvalue.numpy()
        print(f"[{label}] tasks {', '.join(r.tasks)} (chance {r.chance:.2f})")
        for i, k in enumerate(r.n_examples):
            j = int(acc[i].argmax())
            print(f"  k={k:2d}: best {r.layers[j]} accuracy {acc[i, j]:.2f} (adjusted p {adj[i, j]:.3g}); task accuracy "
                  + ", ".join(f"{t} {a:.2f}" for t, a in zip(r.tasks, r.task_accuracy.numpy()[i])))
        unsolved = [t for t in r.tasks if not r.solved[t]]
        print(f"  not solved by the model: {', '.join(unsolved) or 'none'}")
    print(f"wrote {out}")
    return 0
