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
    """Handler of ``circuitry decodability``: every option and every task set checked, then each set decoded
    into the staging folder, which replaces ``--out`` when all are done."""
    from circuitry.cli_common import load_model_from_args, staged_output
    from circuitry.decodability.run import decodability
    from circuitry.io import atomic_write_json, atomic_write_text

    ks = check_options(args)
    model = load_model_from_args(args)
    sets = task_sets(args, model, ks)
    results = []
    with staged_output(args) as out:
        for label, tasks in sets:
            r = decodability(model, tasks, n_examples=ks, n_prompts=args.n_prompts, query=args.query,
                             classifier=args.classifier, n_permutations=args.n_permutations, seed=args.seed,
                             progress=not args.quiet)
            atomic_write_json(out / f"decodability_{label}.json", r)
            atomic_write_text(out / f"decodability_{label}.md", r.to_markdown())
            r.plot(out / f"decodability_{label}.png")
            results.append((label, r))
    for label, r in results:
        acc, adj = r.accuracy.numpy(), r.adjusted_pvalue.numpy()
        print(f"[{label}] tasks {', '.join(r.tasks)} (chance {r.chance:.2f})")
        for i, k in enumerate(r.n_examples):
            j = int(acc[i].argmax())
            print(f"  k={k:2d}: best {r.layers[j]} accuracy {acc[i, j]:.2f} (adjusted p {adj[i, j]:.3g}); task accuracy "
                  + ", ".join(f"{t} {a:.2f}" for t, a in zip(r.tasks, r.task_accuracy.numpy()[i])))
        unsolved = [t for t in r.tasks if not r.solved[t]]
        print(f"  not solved by the model: {', '.join(unsolved) or 'none'}")
    print(f"wrote {args.out}")
    return 0


#: time: every prompt is a forward pass per k, and the probe refits on all of them per permutation
MAX_PROMPTS = 10_000
#: time: a refit of the probe at every layer and k per permutation; 100,000 resolve p-values to 1e-5
MAX_PERMUTATIONS = 100_000
#: memory and time: k examples make a prompt of 2k + 2 tokens (it must also fit the model's context)
MAX_EXAMPLES = 1024
#: time: each k is a separate decoding at every layer
MAX_KS = 32


def check_options(args: argparse.Namespace) -> list[int]:
    """The numbers of examples, and every count in range, before the model loads."""
    from circuitry.cli_common import check_range
    from circuitry.errors import bad_value, too_large

    try:
        ks = [int(k) for k in args.n_examples.split(",")]
    except ValueError:
        raise bad_value("--n-examples", args.n_examples, "comma-separated integers, e.g. 0,1,2,4,8") from None
    if len(ks) > MAX_KS:
        raise too_large("--n-examples", args.n_examples, f"{MAX_KS} values", "time: each is a decoding at every layer")
    for k in ks:
        check_range("--n-examples", k, 0, MAX_EXAMPLES, "memory and time: a prompt of 2k + 2 tokens",
                    "use --n-examples 0,1,2,4,8,16")
    check_range("--n-prompts", args.n_prompts, 5, MAX_PROMPTS, "time: a forward pass per prompt and k, and every "
                "probe refit holds them all", "use --n-prompts 64")
    check_range("--n-permutations", args.n_permutations, 0, MAX_PERMUTATIONS, "time: a probe refit per layer and k "
                "for each permutation", "use --n-permutations 1000")
    return ks


def task_sets(args: argparse.Namespace, model, ks: list[int]) -> list[tuple[str, object]]:
    """``[(label, tasks)]`` of ``--tasks``, each checked against ``model`` before any set is decoded: a file is
    read and validated whole, names must be known (at least two distinct per set)."""
    from pathlib import Path

    from circuitry.decodability.tasks import SYNTHETIC_TASKS, TOPIC_TASKS, read_task_file, synthetic_prompts
    from circuitry.errors import bad_value

    sets, labels = [], set()
    for spec in args.tasks:
        if spec.endswith(".jsonl"):
            if not Path(spec).is_file():
                raise bad_value("--tasks", spec, "an existing .jsonl file of prompts")
            read_task_file(spec, model, max_examples=max(ks))
            label, tasks = Path(spec).stem, spec
        else:
            names = [n.strip() for n in FAMILIES.get(spec, spec).split(",")]
            unknown = [n for n in names if n not in SYNTHETIC_TASKS + TOPIC_TASKS]
            if unknown:
                raise bad_value("--tasks", spec, "'mapping', 'topics', a comma-separated list of "
                                f"{', '.join(SYNTHETIC_TASKS + TOPIC_TASKS)}, or a .jsonl file",
                                f"{unknown[0]!r} is none of them")
            if len(set(names)) < 2:
                raise bad_value("--tasks", spec, "at least 2 distinct tasks in a set (the probe tells tasks apart)")
            synthetic_prompts(model, tasks=names, n_per_task=5, max_examples=max(ks), query=args.query, seed=args.seed)
            label, tasks = (spec if spec in FAMILIES else "_".join(names)), names
        if label in labels:
            raise bad_value("--tasks", spec, "task sets with distinct names (each writes decodability_NAME.*)")
        labels.add(label)
        sets.append((label, tasks))
    return sets
