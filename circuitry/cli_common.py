"""Options shared by the subcommands (light: no heavy imports)."""

from __future__ import annotations

import argparse

DEFAULT_MODEL = "zoo:attn-only-2l"
BUILTIN_TASKS = ("induction", "ioi", "successor")  # circuitry.prompts.TASKS, without importing torch
METRICS = ("logit_diff", "answer_prob", "loss", "kl")


def add_model_args(p: argparse.ArgumentParser, *, task: bool = True) -> None:
    """``--model``, ``--device``, ``--dtype``, ``--bos``, ``--download`` and (with ``task``) ``--task``,
    ``--n-prompts``, ``--seed``."""
    p.add_argument("--model", default=DEFAULT_MODEL,
                   help=f"'zoo:NAME', a local Hugging Face directory, or a cached hub id (default {DEFAULT_MODEL})")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--dtype", default=None, help="float32, float64, bfloat16 or float16 (default: as saved)")
    p.add_argument("--bos", default="model",
                   help="token prepended to generated and text prompts: 'model' (the config's bos_token_id, "
                        "default), 'none', or a token id")
    p.add_argument("--download", action="store_true",
                   help="allow fetching a hub id that is not in the Hugging Face cache (default: offline)")
    if task:
        p.add_argument("--task", default="induction",
                       help=f"a built-in task ({', '.join(BUILTIN_TASKS)}) or a .jsonl task file of token-id or "
                            "text pairs (docs/tasks.md; default induction)")
        p.add_argument("--n-prompts", type=int, default=None,
                       help="prompt pairs to generate for a built-in task (default 32; a task file sets its own)")
        p.add_argument("--seed", type=int, default=0,
                       help="seed of the generated prompts and of every resampling (default 0)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default: torch's choice); results are identical across thread counts "
                        "up to float rounding (docs/reproducibility.md)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def add_executor_args(p: argparse.ArgumentParser, what: str) -> None:
    """``--executor`` and ``--workers``: who evaluates ``what`` (:mod:`circuitry.executors`)."""
    p.add_argument("--executor", default="serial", choices=("serial", "processes", "ray"),
                   help=f"who evaluates {what}: this process (default), a local process pool, or Ray (pip install "
                        "'circuitry-lab[scale]'); the draws are the same for all three")
    p.add_argument("--workers", type=int, default=None,
                   help="processes (or Ray CPUs) for --executor processes/ray (default: every CPU this process may use)")


def load_model_from_args(args: argparse.Namespace):
    """The model named by ``--model``, ``--device``, ``--dtype``, ``--bos``, ``--download``."""
    from circuitry.models import load_model

    threads = getattr(args, "threads", None)
    if threads is not None:
        import os

        if not 1 <= threads <= (os.cpu_count() or 1) * 4:
            from circuitry.errors import bad_value

            raise bad_value("--threads", threads, f"an integer in [1, {(os.cpu_count() or 1) * 4}]", "omit it")
        import torch

        torch.set_num_threads(threads)
    return load_model(args.model, device=args.device, dtype=args.dtype, bos=args.bos, download=args.download)


def load_from_args(args: argparse.Namespace, *, metric: str | None = None):
    """The model and (if the command has ``--task``) the dataset named by the arguments, checked for ``metric``."""
    from circuitry.prompts import make_task

    model = load_model_from_args(args)
    data = None
    if hasattr(args, "task"):
        data = make_task(args.task, model, n_prompts=args.n_prompts, seed=args.seed, metric=metric)
    return model, data
