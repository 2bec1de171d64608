"""``circuitry dynamics``: the induction-head phase change over a model's checkpoints.

Writes ``OUT/dynamics.json`` (a :class:`~circuitry.dynamics.series.DynamicsResult`), ``OUT/dynamics.md``
and ``OUT/phase_change.png``. Nothing heavy is imported until the command runs.
"""

from __future__ import annotations

import argparse

from circuitry.limits import MAX_SAMPLES


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``dynamics`` subcommand and set ``args.handler``."""
    p = subparsers.add_parser(
        "dynamics", help="the induction-head phase change over training checkpoints (Olsson et al. 2022)",
        description="Measure the ICL score, held-out loss, every head's previous-token and prefix-matching "
                    "scores and the previous-token -> induction K-composition at each checkpoint; locate the "
                    "window where the ICL score and the prefix-matching score jump together.")
    p.add_argument("--model", default=None,
                   help="a zoo model, 'zoo:NAME': its shipped checkpoints and final weights (default zoo:attn-only-2l)")
    p.add_argument("--checkpoints", nargs="+", default=None, metavar="DIR",
                   help="instead of --model: saved Hugging Face checkpoint directories (step from each name, "
                        "e.g. checkpoint-1000, or --steps)")
    p.add_argument("--steps", default=None, help="comma-separated steps of --checkpoints, in order")
    p.add_argument("--heldout", default=None,
                   help=".npy file of held-out token ids [n, pos] (default: the zoo corpus for zoo models, "
                        "random repeated blocks otherwise)")
    p.add_argument("--out", required=True, help="output directory (created if missing)")
    p.add_argument("--n-samples", type=int, default=10, help="sequences per head score (default 10)")
    p.add_argument("--n-heldout", type=int, default=256, help="held-out sequences when generated (default 256)")
    p.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    p.add_argument("--bos", default="model",
                   help="token prepended to the scored sequences: 'model' (each checkpoint's bos_token_id, default), "
                        "'none', or a token id")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Handler of ``circuitry dynamics``."""
    from pathlib import Path

    import torch

    from circuitry.dynamics.series import checkpoint_dirs, phase_change, zoo_checkpoints
    from circuitry.errors import bad_value
    from circuitry.io import atomic_write_json, atomic_write_text

    if args.model and args.checkpoints:
        raise bad_value("--model", args.model, "either --model or --checkpoints, not both")
    from circuitry.cli_common import check_range

    check_range("--n-samples", args.n_samples, 2, MAX_SAMPLES, "time: a forward pass per sequence, score and "
                "checkpoint", "use --n-samples 10")
    check_range("--n-heldout", args.n_heldout, 1, MAX_HELDOUT, "time: one forward pass per sequence and checkpoint",
                "use --n-heldout 256")
    if args.checkpoints:
        steps = None
        if args.steps:
            try:
                steps = [int(s) for s in args.steps.split(",")]
            except ValueError:
                raise bad_value("--steps", args.steps, "comma-separated integers, e.g. 100,200,300") from None
        series, name = checkpoint_dirs(args.checkpoints, steps), None
    else:
        model = args.model or "zoo:attn-only-2l"
        if not model.startswith("zoo:") or "@" in model:
            raise bad_value("--model", model, "'zoo:NAME' (its shipped checkpoints)",
                            "for your own model pass its checkpoint directories with --checkpoints")
        series, name = zoo_checkpoints(model[4:]), model
    heldout = None
    if args.heldout:
        heldout = torch.from_numpy(read_heldout(args.heldout)).long()
    if args.bos != "model":  # load each checkpoint with the BOS asked for (checked here, before any work)
        from circuitry.models import load_model

        series = [(step, m if not isinstance(m, (str, Path)) else load_model(str(m), bos=args.bos))
                  for step, m in series]
    from circuitry.cli_common import staged_output

    with staged_output(args) as out:
        r = phase_change(series, series=name, heldout=heldout, n_heldout=args.n_heldout, n_samples=args.n_samples,
                         seed=args.seed, progress=not args.quiet)
        atomic_write_json(out / "dynamics.json", r)
        atomic_write_text(out / "dynamics.md", r.to_markdown())
        r.plot(out / "phase_change.png")
    out = Path(args.out)
    print(r.phase_change.describe())
    if r.log_phase_change is not None:
        print(r.log_phase_change.describe())
    print(f"wrote {out / 'dynamics.json'}, dynamics.md and phase_change.png")
    return 0


#: time: a forward pass per sequence, head score and checkpoint (Olsson et al. use 10)
#: time: a forward pass per held-out sequence and checkpoint
MAX_HELDOUT = 100_000
#: memory: a held-out file is loaded whole
MAX_HELDOUT_BYTES = 512 * 2**20


def read_heldout(path: str):
    """The ``--heldout`` file: a ``.npy`` array of integer token ids ``[n, pos]``, no pickles, at most
    :data:`MAX_HELDOUT_BYTES`; anything else is an :class:`~circuitry.errors.InputError` naming it."""
    from pathlib import Path

    import numpy as np

    from circuitry.errors import InputError, bad_value, too_large

    p = Path(path)
    if p.suffix != ".npy" or not p.is_file():
        raise bad_value("--heldout", path, "an existing .npy file of token ids [n, pos]")
    if p.stat().st_size > MAX_HELDOUT_BYTES:
        raise too_large("--heldout", path, f"{MAX_HELDOUT_BYTES} bytes", f"memory: the file has {p.stat().st_size} "
                        "bytes and is loaded whole", "use fewer held-out sequences")
    try:
        arr = np.load(p, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise InputError(f"--heldout={path!r} is not a readable .npy array ({str(exc)[:100]}). Fix: np.save an "
                         "integer array [n, pos]") from None
    if arr.ndim != 2 or arr.dtype.kind not in "iu" or arr.size == 0:
        raise InputError(f"--heldout={path!r} holds a {arr.dtype} array of shape {arr.shape}; expected integer token "
                         "ids of shape [n, pos]. Fix: np.save(path, ids.astype(np.int64))")
    if arr.min() < 0:
        raise InputError(f"--heldout={path!r} holds negative token ids ({int(arr.min())}); token ids are >= 0")
    return arr
