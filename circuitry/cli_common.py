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
    model = load_model_from_args(args)
    data = None
    if hasattr(args, "task"):
        data = load_task_from_args(args, model, metric=metric)
    return model, data


def load_task_from_args(args: argparse.Namespace, model, *, metric: str | None = None):
    """The dataset of ``--task``/``--n-prompts``/``--seed`` for ``model``, refused up front when its cached runs
    would not fit in memory (:func:`check_prompt_memory`)."""
    from circuitry.prompts import make_task

    from circuitry.prompts.tasks import MAX_PROMPTS

    if args.task in BUILTIN_TASKS and isinstance(args.n_prompts, int) and 2 < args.n_prompts <= MAX_PROMPTS:
        probe = make_task(args.task, model, n_prompts=2, seed=args.seed, metric=metric)  # its prompt length
        check_prompt_memory(model, args.n_prompts, probe.seq_len)
    data = make_task(args.task, model, n_prompts=args.n_prompts, seed=args.seed, metric=metric)
    check_prompt_memory(model, len(data), data.seq_len, "--task" if data.source else "--n-prompts")
    return data


# --- limits: every count is bounded before any work, by memory or by time (docs/errors/LimitError.md) -------

#: a run of the command may use at most this share of the memory the OS reports available
MEMORY_SHARE = 0.5


def memory_budget() -> int:
    """Bytes a command may plan to hold: :data:`MEMORY_SHARE` of ``MemAvailable`` (Linux), else of 8 GiB."""
    try:
        for line in open("/proc/meminfo", encoding="ascii"):
            if line.startswith("MemAvailable:"):
                return int(int(line.split()[1]) * 1024 * MEMORY_SHARE)
    except (OSError, ValueError):
        pass
    return int(8 * 2**30 * MEMORY_SHARE)


def check_range(param: str, value, low, high, why: str, fix: str | None = None) -> None:
    """Refuse ``value`` outside ``[low, high]`` before any work: below ``low`` is an
    :class:`~circuitry.errors.InputError`, above ``high`` a :class:`~circuitry.errors.LimitError` saying ``why``
    (what the bound is derived from: memory or time)."""
    from circuitry.errors import bad_value, too_large

    if value is None:
        return
    if value < low:
        raise bad_value(param, value, f"a number >= {low}", fix)
    if value > high:
        raise too_large(param, value, high, why, fix or f"use {param} {high} or less")


def prompt_bytes(info, seq_len: int) -> int:
    """Memory one prompt pair takes in the cached clean + corrupted runs that patching keeps for all prompts
    (float32): every layer's attention pattern and four residual-width activations (the residual stream, the
    heads' outputs, the attention and MLP outputs). Logits are not cached (the metrics slice the positions they
    read), and forward passes are chunked to a fixed budget (:mod:`circuitry.interventions.batching`), so this
    is what grows with the number of prompts."""
    per_run = info.n_layers * (info.n_heads * seq_len * seq_len + 4 * seq_len * info.d_model)
    return 4 * 2 * per_run


def check_prompt_memory(model, n: int, seq_len: int, param: str = "--n-prompts") -> None:
    """Refuse ``n`` prompt pairs of ``seq_len`` tokens when their cached runs would not fit in
    :func:`memory_budget` (a :class:`~circuitry.errors.LimitError` naming the largest count that fits)."""
    from circuitry.errors import too_large

    each, budget = prompt_bytes(model.info, seq_len), memory_budget()
    if n * each > budget:
        most = max(budget // each, 0)
        raise too_large(param, n, most, f"memory: a pair of {seq_len} tokens holds ~{each / 2**20:.2f} MiB of "
                        f"activations on {model.model_id}, and {MEMORY_SHARE:.0%} of the available memory is "
                        f"{budget / 2**30:.1f} GiB", f"use {param} {min(most, 32) if most >= 2 else 2} (or a machine "
                        "with more memory)")


def options_of(args: argparse.Namespace) -> dict:
    """The options of a parsed command (what its output depends on), for the output lock."""
    skip = {"handler", "quiet", "threads", "workers", "executor"}
    return {k: v for k, v in sorted(vars(args).items()) if k not in skip and not callable(v)}


def staged_output(args: argparse.Namespace, *, resume: bool = False, carry: tuple[str, ...] = ()):
    """The command's ``--out`` as a :class:`~circuitry.io.StagedOutput`: locked, written into a staging
    sibling, its entries swapped in (replacing the previous run's of the same command) when it completes."""
    import sys

    from circuitry.io import StagedOutput

    command = "circuitry " + " ".join(sys.argv[1:]) if sys.argv and sys.argv[0].endswith(("circuitry", "cli.py")) \
        else f"circuitry {getattr(args, 'command', '')} --out {args.out}"
    name = getattr(args, "command", None) or "circuitry"
    return StagedOutput(args.out, command=command, options={"command": name, **options_of(args)}, resume=resume,
                        carry=carry, name=name)


def early_checks(args: argparse.Namespace) -> None:
    """What can be refused before torch loads (a bad input answers in well under a second): a ``zoo:`` model
    that the zoo does not have, a ``--task`` file that does not exist. Everything else is checked where it is
    used, also before any work."""
    from pathlib import Path

    model = getattr(args, "model", None)
    if isinstance(model, str) and model.startswith("zoo:"):
        from circuitry.zoo.registry import zoo_manifest_path

        zoo_manifest_path(model[len("zoo:"):])
    task = getattr(args, "task", None)
    if isinstance(task, str) and (task.endswith((".jsonl", ".json")) or "/" in task) and not Path(task).is_file():
        from circuitry.errors import missing_task_file

        raise missing_task_file(task)
