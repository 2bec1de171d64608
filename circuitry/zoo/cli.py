"""``circuitry zoo``: list, describe and re-train the shipped zoo models.

Imports nothing heavy at import time (torch is imported inside the handlers), so ``circuitry --help``
stays instant.
"""

from __future__ import annotations

import argparse
import json


def add_parser(subparsers: "argparse._SubParsersAction") -> argparse.ArgumentParser:
    """Add ``zoo`` with subcommands ``list``, ``info NAME`` and ``train NAME --out DIR [--steps N]``."""
    parser = subparsers.add_parser("zoo", help="circuitry's own small trained models (offline)",
                                   description="List, describe and re-train the shipped zoo models.")
    sub = parser.add_subparsers(dest="zoo_command", metavar="SUBCOMMAND")
    parser.set_defaults(handler=lambda args: (parser.print_help(), 2)[1])

    p_list = sub.add_parser("list", help="list the shipped models")
    p_list.set_defaults(handler=_list)

    p_info = sub.add_parser("info", help="show a model's manifest summary")
    p_info.add_argument("name", help="zoo model name, e.g. attn-only-2l")
    p_info.add_argument("--json", action="store_true", help="print the full manifest as JSON")
    p_info.set_defaults(handler=_info)

    p_train = sub.add_parser(
        "train", help="re-train a model from its shipped recipe and compare with the shipped weights",
        description="Re-train NAME from the recipe in its shipped manifest (one thread) into DIR, then "
                    "compare: sha256 equality (expected on one thread with the same torch version) and "
                    "the probe scores.")
    p_train.add_argument("name", help="zoo model name, e.g. attn-only-2l")
    p_train.add_argument("--out", required=True, help="output folder for NAME.safetensors and NAME.json")
    p_train.add_argument("--steps", type=int, default=None,
                         help="stop after N steps of the recipe's schedule (compares with the shipped "
                              "intermediate checkpoint of that step if there is one)")
    p_train.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p_train.set_defaults(handler=_train)
    return parser


def _list(args: argparse.Namespace) -> int:
    from circuitry.zoo.registry import list_zoo, zoo_manifest

    for name in list_zoo():
        m = zoo_manifest(name)
        c = m.config
        heads = f"{c['n_layers']}L x {c['n_heads']}H"
        print(f"{name:16s} {m.family:6s} {heads:9s} steps={m.steps:<5d} {m.description}")
        if getattr(m, "kind", None) == "text":
            print(f"{'':16s} corpus: {m.recipe.corpus.describe()}")
    return 0


def _info(args: argparse.Namespace) -> int:
    from circuitry.zoo.registry import summary, zoo_manifest

    m = zoo_manifest(args.name)
    if args.json:
        print(m.model_dump_json(indent=2))
    else:
        print(json.dumps(summary(m), indent=2))
    return 0


def _train(args: argparse.Namespace) -> int:
    from pathlib import Path

    from circuitry.errors import bad_value
    from circuitry.io import check_out_dir
    from circuitry.zoo.registry import list_zoo, zoo_manifest, zoo_recipes

    recipes = zoo_recipes()
    if args.name not in recipes:
        zoo_manifest(args.name)  # the clear "not a zoo model" error, with the available names
    recipe = zoo_manifest(args.name).recipe if args.name in list_zoo() else recipes[args.name]
    if args.steps is not None and not 1 <= args.steps <= recipe.steps:
        raise bad_value("--steps", args.steps, f"an integer in 1..{recipe.steps}", "omit it to train fully")
    check_out_dir(args.out)
    # --out may hold other models, so it is not replaced whole: NAME.safetensors and NAME.json are each written
    # atomically, under a lock on the folder (a second train into it refuses) and a full disk is a clean error
    from circuitry.io import OutputLock, as_output_error

    try:
        with OutputLock(args.out, command=f"circuitry zoo train {args.name} --out {args.out}",
                        options={"name": args.name, "steps": args.steps}):
            return _train_locked(args)
    except OSError as exc:
        raise (as_output_error(exc, Path(args.out)) or exc) from None


def _train_locked(args: argparse.Namespace) -> int:
    import torch

    from circuitry.zoo.registry import list_zoo, zoo_manifest, zoo_recipes
    from circuitry.zoo.train import train

    recipes = zoo_recipes()
    if args.name not in list_zoo() and args.name in recipes:
        # Not shipped (yet): build it from the recipe in circuitry.zoo.registry.zoo_recipes().
        new = train(recipes[args.name], args.out, stop_step=args.steps, progress=not args.no_progress)
        print(f"trained {new.name} for {new.steps} steps in {new.train_seconds:.1f} s -> {args.out}")
        _compare(new.final_probes, None)
        return 0
    shipped = zoo_manifest(args.name)
    if getattr(shipped, "kind", None) == "text":
        from circuitry.zoo.text_train import train_text as train
    new = train(shipped.recipe, args.out, stop_step=args.steps, progress=not args.no_progress)
    if new.steps == shipped.steps:
        ref_sha, what = shipped.weights_sha256, "final weights"
    else:
        match = [c.sha256 for c in shipped.checkpoints if c.step == new.steps]
        ref_sha, what = (match[0], f"intermediate checkpoint at step {new.steps}") if match else (None, None)
    print(f"trained {new.name} for {new.steps} steps in {new.train_seconds:.1f} s "
          f"(shipped: {shipped.train_seconds:.1f} s for {shipped.steps} steps) -> {args.out}")
    if ref_sha is None:
        print("no shipped checkpoint at this step: hash not compared")
    elif new.weights_sha256 == ref_sha:
        print(f"sha256 identical to the shipped {what}: {ref_sha}")
    else:
        same = torch.__version__ == shipped.torch_version
        why = ("same torch version, so the difference is unexpected (different CPU kernels?)" if same else
               f"expected: torch {torch.__version__} here vs {shipped.torch_version} for the shipped model")
        print(f"sha256 differs from the shipped {what} ({why})")
    ref_probes = shipped.final_probes if new.steps == shipped.steps else _probes_at(shipped, new.steps)
    _compare(new.final_probes, ref_probes)
    return 0


def _probes_at(manifest, step: int):
    match = [c.probes for c in manifest.curve if c.step == step]
    return match[0] if match else None


def _compare(new, ref) -> None:
    def fmt(rows):
        return " | ".join(" ".join(f"{x:.2f}" for x in row) for row in rows)

    print("prev-token score per head (layer | layer):")
    print(f"  new:     {fmt(new.prev_token)}")
    if ref is not None:
        print(f"  shipped: {fmt(ref.prev_token)}")
    print("prefix-matching (induction) score per head:")
    print(f"  new:     {fmt(new.induction)}")
    if ref is not None:
        print(f"  shipped: {fmt(ref.induction)}")
    print("loss per repeat of held-out repeated random tokens:")
    print(f"  new:     {' '.join(f'{x:.3f}' for x in new.loss_per_repeat)}")
    if ref is not None:
        print(f"  shipped: {' '.join(f'{x:.3f}' for x in ref.loss_per_repeat)}")
