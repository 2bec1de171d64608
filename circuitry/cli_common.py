"""Options shared by the subcommands (light: no heavy imports)."""

from __future__ import annotations

import argparse

DEFAULT_MODEL = "zoo:attn-only-2l"


def add_model_args(p: argparse.ArgumentParser, *, task: bool = True) -> None:
    """``--model``, ``--device``, ``--dtype`` and (with ``task``) ``--task``, ``--n-prompts``, ``--seed``."""
    p.add_argument("--model", default=DEFAULT_MODEL,
                   help=f"'zoo:NAME', a local Hugging Face directory, or a cached hub id (default {DEFAULT_MODEL})")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--dtype", default=None, help="float32, float64, bfloat16 or float16 (default: as saved)")
    if task:
        p.add_argument("--task", default="induction",
                       help="'induction' or a .jsonl file of prompt pairs (default induction)")
        p.add_argument("--n-prompts", type=int, default=32, help="number of prompt pairs (default 32)")
        p.add_argument("--seed", type=int, default=0, help="seed of the prompts and of every resampling (default 0)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def load_from_args(args: argparse.Namespace):
    """The model and (if the command has ``--task``) the dataset named by the arguments."""
    from circuitry.models import load_model
    from circuitry.prompts import make_task

    model = load_model(args.model, device=args.device, dtype=args.dtype)
    data = make_task(args.task, model, n_prompts=args.n_prompts, seed=args.seed) if hasattr(args, "task") else None
    return model, data
