"""The in-context-learning score on held-out prose (Olsson et al. 2022, "In-context Learning and Induction Heads").

Olsson et al. define the *in-context learning score* as the loss of the 500th token of a context minus the
loss of the 50th, averaged over many contexts: negative when the model predicts later tokens better
because it has more context to use. Here the contexts are windows of held-out King James prose (Joshua and
Acts, never trained on; :mod:`circuitry.zoo.text_corpus`), each ``[BOS]`` + 511 tokens, taken every
``stride`` tokens. Token ``t`` is the token at index ``t`` of the window (BOS is index 0), predicted from
the ``t`` tokens before it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from circuitry.errors import bad_value
from circuitry.provenance import Frozen

#: Default stride between the held-out windows of the reported score (222 windows of 512 tokens).
ICL_STRIDE = 256


class ICLScore(Frozen):
    """Loss at two context positions on held-out prose and their difference (Olsson et al.'s ICL score).

    ``icl_score = loss_late - loss_early``; ``sem`` is its standard error over the ``n_windows`` windows
    (windows overlap when ``stride < seq_len``, so it is a lower bound). ``mean_loss`` is the mean loss over
    all predicted positions.
    """

    early: int
    late: int
    loss_early: float
    loss_late: float
    icl_score: float
    sem: float
    mean_loss: float
    n_windows: int


def heldout_tokens(root: str | Path | None = None) -> np.ndarray:
    """The shipped held-out prose (``heldout.txt`` beside the tokenizer), tokenized: int64 ``[n_tokens]``."""
    from circuitry.zoo.text_corpus import encode_stream, load_tokenizer, tokenizer_dir

    folder = tokenizer_dir(root)
    text = (folder / "heldout.txt").read_text(encoding="utf-8")
    return encode_stream(load_tokenizer(folder), text)


def heldout_sequences(n: int, *, seq_len: int = 512, stride: int = ICL_STRIDE) -> tuple[object, dict]:
    """Up to ``n`` held-out prose windows (``[BOS]`` + ``seq_len - 1`` tokens, every ``stride`` tokens) as a
    torch tensor, and a description of them (for :func:`circuitry.dynamics.measure.heldout_tokens`)."""
    import torch

    from circuitry.zoo.text_corpus import HELDOUT_BOOKS, heldout_windows

    win = heldout_windows(heldout_tokens(), seq_len=seq_len, stride=stride, n_max=n)
    return torch.from_numpy(win), {"kind": "held-out prose (King James Bible: " + ", ".join(HELDOUT_BOOKS) + ")",
                                   "stride": stride, "seq_len": seq_len, "n": len(win)}


def token_losses(model, windows: np.ndarray, *, batch_size: int = 16):
    """Next-token loss ``[n, seq_len - 1]`` (float64; entry ``i`` is the loss of token ``i + 1``), no gradients,
    in eval mode."""
    import torch
    import torch.nn.functional as F

    was_training = model.training
    model.eval()
    rows = []
    with torch.no_grad():
        for i in range(0, len(windows), batch_size):
            tokens = torch.from_numpy(windows[i:i + batch_size])
            out = model(tokens)
            logits = getattr(out, "logits", out)
            rows.append(F.cross_entropy(logits[:, :-1].transpose(1, 2), tokens[:, 1:], reduction="none"))
    model.train(was_training)
    return torch.cat(rows).double()


def icl_from_losses(loss, *, early: int = 50, late: int = 500) -> ICLScore:
    """The :class:`ICLScore` of per-token losses ``[n, seq_len - 1]`` (:func:`token_losses`).

    Raises
    ------
    InputError
        If ``late`` is not below the windows' length or ``early`` is not in ``1..late - 1``.
    """
    n, seq_len = loss.shape[0], loss.shape[1] + 1
    if not 1 <= late < seq_len:
        raise bad_value("late", late, f"a token index in 1..{seq_len - 1} (the windows hold {seq_len} tokens)",
                        "use a smaller late position or longer windows")
    if not 1 <= early < late:
        raise bad_value("early", early, f"an index in 1..{late - 1}", "pick an early position before late")
    diff = loss[:, late - 1] - loss[:, early - 1]
    return ICLScore(early=early, late=late, loss_early=float(loss[:, early - 1].mean()),
                    loss_late=float(loss[:, late - 1].mean()), icl_score=float(diff.mean()),
                    sem=float(diff.std() / n ** 0.5) if n > 1 else 0.0, mean_loss=float(loss.mean()), n_windows=n)


def icl_score(model, windows: np.ndarray, *, early: int = 50, late: int = 500) -> ICLScore:
    """Olsson et al.'s ICL score of ``model`` (a zoo or Hugging Face module) on ``windows`` (int64 ``[n, seq_len]``,
    BOS first). :func:`circuitry.scores.icl_score` computes the same number through the model adapter."""
    return icl_from_losses(token_losses(model, windows), early=early, late=late)


def heldout_icl_score(model, *, stride: int = ICL_STRIDE, seq_len: int = 512, root: str | Path | None = None,
                      early: int = 50, late: int = 500) -> ICLScore:
    """The ICL score of ``model`` on the shipped held-out prose, windows every ``stride`` tokens (the docs' number)."""
    from circuitry.zoo.text_corpus import heldout_windows

    if isinstance(stride, bool) or not isinstance(stride, int) or stride < 1:
        raise bad_value("stride", stride, "a positive number of tokens", f"use the default {ICL_STRIDE}")
    return icl_score(model, heldout_windows(heldout_tokens(root), seq_len=seq_len, stride=stride),
                     early=early, late=late)


def curve_table(manifest) -> str:
    """The training curve of a text manifest, one line per evaluation: training loss, the ICL score on 28 held-out
    windows, the best previous-token and prefix-matching scores (repeated random tokens, Olsson et al.'s probes)."""
    lines = [f"{manifest.name}: {manifest.steps} steps, batch {manifest.recipe.batch_size} x {manifest.n_ctx} tokens"]
    for c in manifest.curve:
        lines.append(f"  step {c.step:5d}: train loss {c.train_loss:.3f}, ICL {c.icl.icl_score:+.3f} nats, held-out loss "
                     f"{c.icl.mean_loss:.3f}, best prev-token {c.probes.prev_token_best:.2f}, best prefix-matching "
                     f"{c.probes.induction_best:.2f}")
    f = manifest.final_icl
    lines.append(f"  final: ICL {f.icl_score:+.3f} nats (sem {f.sem:.3f}; loss at token {f.early} {f.loss_early:.3f}, at "
                 f"token {f.late} {f.loss_late:.3f}) on {f.n_windows} held-out windows; {manifest.train_seconds:.0f} s "
                 "on one thread")
    return "\n".join(lines)


def plot_curve(manifest, path: str | Path) -> Path:
    """A PNG of the text manifest's curve on one time axis (Olsson et al.'s phase-change figure): training and
    held-out loss, the ICL score on held-out prose, the best previous-token and prefix-matching scores."""
    import io

    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from circuitry.io import atomic_write_bytes

    c = manifest.curve
    steps = [p.step for p in c]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    axes[0].plot(steps, [p.train_loss for p in c], color="k", label="training")
    axes[0].plot(steps, [p.icl.mean_loss for p in c], color="tab:blue", label="held-out prose")
    axes[0].set(title="loss", xlabel="step", ylabel="nats")
    axes[0].legend(fontsize=8)
    axes[1].plot(steps, [p.icl.icl_score for p in c], color="tab:red")
    axes[1].axhline(0, color="grey", lw=0.6)
    axes[1].set(title="ICL score (token 500 minus token 50)", xlabel="step", ylabel="nats")
    axes[2].plot(steps, [p.probes.prev_token_best for p in c], label="best previous-token")
    axes[2].plot(steps, [p.probes.induction_best for p in c], label="best prefix-matching")
    axes[2].set(title="head scores (repeated random tokens)", xlabel="step", ylim=(0, 1.05))
    axes[2].legend(fontsize=8)
    short = getattr(manifest.recipe, "short_steps", 0)
    for ax in axes:
        if short:
            ax.axvline(short, color="grey", lw=0.6, ls=":")
    fig.suptitle(f"{manifest.name}: {manifest.steps} steps"
                 + (f" ({short} on {manifest.recipe.short_seq_len}-token sequences, then {manifest.n_ctx})" if short
                    else ""))
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())


def main(argv: list[str] | None = None) -> int:
    """``python -m circuitry.zoo.text_eval NAME [--step N] [--stride S]``: the ICL score on held-out prose."""
    import argparse

    from circuitry.zoo.registry import load_zoo
    from circuitry.zoo.text_corpus import HELDOUT_BOOKS, heldout_windows

    p = argparse.ArgumentParser(prog="python -m circuitry.zoo.text_eval",
                                description="Olsson et al.'s ICL score of a KJV zoo model on held-out prose.")
    p.add_argument("name", help="a text zoo model, e.g. kjv-attn-only-2l (or zoo:kjv-attn-only-2l); with --curve also "
                               "the NAME.json manifest a training run wrote")
    p.add_argument("--step", type=int, default=None, help="an intermediate checkpoint (default: final weights)")
    p.add_argument("--root", default=None, help="the folder a training run wrote (default: the shipped zoo)")
    p.add_argument("--stride", type=int, default=ICL_STRIDE, help=f"tokens between windows (default {ICL_STRIDE})")
    p.add_argument("--curve", action="store_true",
                   help="print the training curve stored in the manifest instead (no model is run)")
    p.add_argument("--plot", default=None, metavar="PNG", help="with --curve: also draw it to this file")
    args = p.parse_args(argv)
    if args.curve:
        from circuitry.zoo.registry import zoo_manifest
        from circuitry.zoo.text_train import TextZooManifest

        if args.name.endswith(".json"):  # a manifest written by `text_train model` (shipped or not)
            try:
                man = TextZooManifest.model_validate_json(Path(args.name).read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise bad_value("name", args.name, f"a readable text-model manifest ({str(exc)[:120]})") from None
        else:
            man = zoo_manifest(args.name.removeprefix("zoo:"))
        if getattr(man, "kind", None) != "text":
            raise bad_value("name", args.name, "a zoo model trained on text (`circuitry zoo list`: kjv-*)")
        print(curve_table(man))
        if args.plot:
            print(f"wrote {plot_curve(man, args.plot)}")
        return 0
    import torch

    torch.set_num_threads(1)
    model, man = load_zoo(args.name.removeprefix("zoo:"), step=args.step, root=args.root)
    if getattr(man, "kind", None) != "text":
        raise bad_value("name", args.name, "a zoo model trained on text (`circuitry zoo list`: kjv-*)")
    if args.stride < 1:
        raise bad_value("--stride", args.stride, "a positive number of tokens", f"use {ICL_STRIDE}")
    loss = token_losses(model, heldout_windows(heldout_tokens(), seq_len=512, stride=args.stride))
    s = icl_from_losses(loss)
    at = (1, 10, 50, 100, 200, 300, 400, 500)
    print(f"{args.name} (step {args.step or man.steps}) on held-out prose ({', '.join(HELDOUT_BOOKS)}): "
          f"{s.n_windows} windows of 512 tokens, one every {args.stride}")
    print("loss at token " + ", ".join(f"{t}: {float(loss[:, t - 1].mean()):.3f}" for t in at))
    print(f"ICL score (loss at token {s.late} minus token {s.early}): {s.icl_score:.3f} nats (sem {s.sem:.3f}); "
          f"mean loss {s.mean_loss:.3f}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
