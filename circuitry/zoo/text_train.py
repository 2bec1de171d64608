"""Training the zoo's natural-text models: the KJV corpus in, safetensors checkpoints and a manifest out.

The loop is :func:`circuitry.zoo.train.train`'s (AdamW, linear warm-up then cosine, gradient clipping, one
torch thread, bit-reproducible) on batches of King James prose (:mod:`circuitry.zoo.text_corpus`) instead of
the synthetic corpus. Every ``eval_every`` steps it records, on one time axis, the training loss, Olsson et
al.'s probes on repeated random tokens (previous-token and prefix-matching score of every head) and the
in-context-learning score on held-out prose (loss at token 500 minus token 50,
:mod:`circuitry.zoo.text_eval`) -- the three curves of their phase-change figure.

Commands (the tokenizer and held-out prose first, then each model; both need ``apt-get install bible-kjv``)::

    python -m circuitry.zoo.text_train tokenizer --out DIR
    python -m circuitry.zoo.text_train model kjv-attn-only-2l --out DIR
"""

from __future__ import annotations

import sys
import time
from importlib.metadata import version as _version
from pathlib import Path
from typing import Literal

from circuitry.errors import CircuitryError, InputError, bad_value
from circuitry.io import atomic_write_bytes, atomic_write_json
from circuitry.zoo.text_corpus import TextCorpusSpec
from circuitry.zoo.text_eval import ICLScore
from circuitry.zoo.train import CurvePoint, ProbeSpec, TrainRecipe, ZooManifest

#: Windows of held-out prose scored at every evaluation during training (one every 2048 tokens: 28 windows).
TRAIN_EVAL_STRIDE = 2048


class TextTrainRecipe(TrainRecipe):
    """A :class:`~circuitry.zoo.train.TrainRecipe` whose corpus is the KJV prose (:class:`TextCorpusSpec`)."""

    corpus: TextCorpusSpec
    probe: ProbeSpec = ProbeSpec(block_len=25, n_repeats=4, n_samples=16, seed=999)
    #: dtype of the written weights (training is float32): float16 halves the shipped files
    weights_dtype: Literal["float32", "float16"] = "float32"
    #: ``"sinusoidal"``: the learned positional embeddings start as Vaswani et al.'s (2017) sinusoids, scaled to
    #: std ``pos_init_std`` (default 0.02), instead of random vectors (see :func:`sinusoidal_positions`)
    pos_init: Literal["random", "sinusoidal"] = "random"
    #: staged training (Press et al. 2021): the first ``short_steps`` steps on ``short_seq_len``-token sequences
    #: (as many tokens per step), the rest on ``corpus.seq_len``
    short_steps: int = 0
    short_seq_len: int = 64


class TextCurvePoint(CurvePoint):
    """A curve point with the held-out ICL score (:class:`~circuitry.zoo.text_eval.ICLScore`) beside the probes."""

    icl: ICLScore


class TextZooManifest(ZooManifest):
    """A :class:`~circuitry.zoo.train.ZooManifest` of a text model: ``kind="text"``, the tokenizer it reads."""

    kind: Literal["text"] = "text"
    recipe: TextTrainRecipe
    curve: list[TextCurvePoint]
    tokenizer: str
    final_icl: ICLScore


def sinusoidal_positions(n_ctx: int, d_model: int, std: float):
    """``[n_ctx, d_model]`` sinusoids (Vaswani et al. 2017: ``sin(p / 10000^(2i/d))``, ``cos(...)``) scaled to std ``std``.

    Why: a previous-token head must single out position ``i - 1`` among 512. From random or near-zero
    positional embeddings that takes many tokens to learn (none of the KJV models had a previous-token head
    after 400 steps of 2,048 tokens with them, measured); with sinusoids, ``p(i - 1)`` is a fixed rotation of
    ``p(i)``, so a query-key matrix can attend one position back from the first steps.
    """
    import torch

    pos = torch.arange(n_ctx, dtype=torch.float64)[:, None]
    freq = 10000.0 ** (-torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)
    table = torch.zeros(n_ctx, d_model, dtype=torch.float64)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq[: d_model // 2])
    return (table * (std * 2 ** 0.5)).to(torch.float32)


def _positional_embedding(model):
    """The learned positional embedding module (zoo: ``pos_embed``; GPT-2: ``transformer.wpe``), or ``None``."""
    if hasattr(model, "pos_embed"):
        return model.pos_embed
    return getattr(getattr(model, "transformer", None), "wpe", None)


def text_recipes() -> dict[str, TextTrainRecipe]:
    """The recipes of the two shipped text models (same corpus, tokenizer, batches and schedule shape)."""
    from circuitry.zoo.arch import ZooConfig
    from circuitry.zoo.train import GPT2Spec

    corpus = TextCorpusSpec(tokenizer_sha256=shipped_tokenizer_sha256())
    common = dict(corpus=corpus, lr=3e-3, betas=(0.9, 0.99), weight_decay=0.05, warmup=50, batch_size=4,
                  seed=0, eval_every=50, pos_init="sinusoidal", short_steps=600, short_seq_len=64)
    return {
        "kjv-attn-only-2l": TextTrainRecipe(
            name="kjv-attn-only-2l",
            description="natural text: 2 attention-only layers x 8 heads, shortformer, BPE-4096, King James Bible",
            model=ZooConfig(n_layers=2, n_heads=8, d_model=128, d_head=16, d_vocab=corpus.d_vocab,
                            n_ctx=corpus.seq_len, positional="shortformer"),
            steps=1000, checkpoint_steps=(100, 200, 300, 400, 500, 600, 700, 800, 900), pos_init_std=1.0, **common),
        "kjv-gpt2-2l": TextTrainRecipe(
            name="kjv-gpt2-2l", family="gpt2",
            description="natural text: HF GPT-2, 2 layers x 4 heads with MLPs, d 128, BPE-4096, King James Bible",
            model=GPT2Spec(n_layers=2, n_heads=4, d_model=128, d_vocab=corpus.d_vocab, n_ctx=corpus.seq_len),
            steps=1000, checkpoint_steps=(100, 200, 300, 400, 500, 600, 700, 800, 900), pos_init_std=0.02, **common),
    }


def shipped_tokenizer_sha256(root: str | Path | None = None) -> str:
    """sha256 of the shipped ``tokenizer.json`` bytes (pins the tokenizer in each text recipe)."""
    from circuitry.zoo.text_corpus import tokenizer_dir
    from circuitry.zoo.train import sha256_bytes

    path = tokenizer_dir(root) / "tokenizer.json"
    return sha256_bytes(path.read_bytes()) if path.is_file() else ""


def build_tokenizer(out_dir: str | Path) -> Path:
    """Train the BPE tokenizer on the KJV training books and write it, with the held-out prose, to ``out_dir``.

    Writes ``out_dir/kjv-bpe-4096/{tokenizer.json, tokenizer_config.json, heldout.txt}``. Needs the Debian
    package (``apt-get install bible-kjv``); raises :class:`~circuitry.errors.InputError` naming it if absent.
    """
    from circuitry.zoo.text_corpus import (
        TOKENIZER_NAME,
        load_kjv,
        save_tokenizer,
        train_tokenizer,
    )

    train_text, heldout = load_kjv()
    folder = Path(out_dir) / TOKENIZER_NAME
    save_tokenizer(train_tokenizer(train_text), folder)
    atomic_write_bytes(folder / "heldout.txt", heldout.encode("utf-8"))
    return folder


def train_text(recipe: TextTrainRecipe, out_dir: str | Path, *, tokenizer_root: str | Path | None = None,
               stop_step: int | None = None, progress: bool = True) -> TextZooManifest:
    """Train ``recipe`` on one thread and write ``out_dir/NAME.{safetensors,json}`` and ``out_dir/NAME/step_*``.

    Parameters
    ----------
    recipe
        A recipe from :func:`text_recipes` (or a shipped manifest's ``recipe``).
    out_dir
        Output folder (as :func:`circuitry.zoo.train.train`).
    tokenizer_root
        Folder holding ``kjv-bpe-4096/`` (default: the shipped tokenizer); its ``tokenizer.json`` must have
        the recipe's ``tokenizer_sha256``.
    stop_step
        Stop after this many steps of the schedule (a bit-identical prefix of the full run).

    Raises
    ------
    InputError
        The Debian package is missing (the message names ``apt-get install bible-kjv``), the tokenizer is not
        the recipe's, or ``stop_step`` is out of range.
    """
    import torch
    from tqdm.auto import tqdm

    from circuitry.zoo.text_corpus import (
        encode_stream,
        heldout_windows,
        iter_text_batches,
        load_kjv,
        load_tokenizer,
        tokenizer_dir,
    )
    from circuitry.zoo.text_eval import icl_score
    from circuitry.zoo.train import (
        CheckpointFile,
        init_training,
        optimizer_step,
        run_probes,
        sha256_bytes,
    )

    n_steps = recipe.steps if stop_step is None else stop_step
    if not 1 <= n_steps <= recipe.steps:
        raise bad_value("stop_step", stop_step, f"an integer in 1..{recipe.steps}", "omit it to train fully")
    tok_sha = shipped_tokenizer_sha256(tokenizer_root)
    if tok_sha != recipe.corpus.tokenizer_sha256:
        raise InputError(f"tokenizer {tokenizer_dir(tokenizer_root)}/tokenizer.json has sha256 {tok_sha or '(none)'}, "
                         f"but the recipe was made with {recipe.corpus.tokenizer_sha256}. Fix: train with the shipped "
                         "tokenizer (omit tokenizer_root), or rebuild the recipe from this tokenizer")
    train_text_, _ = load_kjv()
    tokenizer = load_tokenizer(tokenizer_dir(tokenizer_root))
    stream = encode_stream(tokenizer, train_text_)
    held = (tokenizer_dir(tokenizer_root) / "heldout.txt").read_text(encoding="utf-8")
    windows = heldout_windows(encode_stream(tokenizer, held), seq_len=recipe.corpus.seq_len, stride=TRAIN_EVAL_STRIDE)
    out_dir = Path(out_dir)
    old_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model, opt = init_training(recipe)
        pos = _positional_embedding(model)
        if recipe.pos_init == "sinusoidal" and pos is not None:
            with torch.no_grad():
                pos.weight.copy_(sinusoidal_positions(*pos.weight.shape, recipe.pos_init_std or 0.02))
        batches = iter_text_batches(stream, seq_len=recipe.corpus.seq_len, seed=recipe.seed,
                                    batch_size=recipe.batch_size, short_steps=recipe.short_steps,
                                    short_seq_len=recipe.short_seq_len)
        curve: list[TextCurvePoint] = []
        ckpts: list[CheckpointFile] = []
        window: list[float] = []
        t0 = time.perf_counter()
        bar = tqdm(range(1, n_steps + 1), desc=f"train {recipe.name}", disable=not progress, leave=False,
                   mininterval=30)
        for step in bar:
            loss, lr = optimizer_step(model, opt, recipe, step, torch.from_numpy(next(batches)))
            window.append(loss)
            if step % recipe.eval_every == 0 or step == n_steps:
                probes = run_probes(model, recipe.probe, n_symbols=recipe.corpus.n_symbols)
                icl = icl_score(model, windows)
                curve.append(TextCurvePoint(step=step, train_loss=sum(window) / len(window), lr=lr, probes=probes,
                                            icl=icl))
                window = []
                bar.set_postfix(loss=f"{curve[-1].train_loss:.3f}", ind=f"{probes.induction_best:.2f}",
                                icl=f"{icl.icl_score:.3f}")
            if step in recipe.checkpoint_steps:
                ckpts.append(write_checkpoint(out_dir, recipe.name, step, weights_as(model, recipe.weights_dtype)))
        seconds = time.perf_counter() - t0
        bar.close()
        model.eval()
        final = run_probes(model, recipe.probe, n_symbols=recipe.corpus.n_symbols)
        data = weights_as(model, recipe.weights_dtype)
        weights_file = f"{recipe.name}.safetensors"
        atomic_write_bytes(out_dir / weights_file, data)
        manifest = TextZooManifest(
            name=recipe.name, family=recipe.family, description=recipe.description,
            config=recipe.model.model_dump(), recipe=recipe, seed=recipe.seed, steps=n_steps,
            d_vocab=recipe.model.d_vocab, n_ctx=recipe.model.n_ctx, corpus_sha256=recipe.corpus.text_sha256,
            weights_file=weights_file, weights_sha256=sha256_bytes(data), checkpoints=ckpts, curve=curve,
            final_probes=final, train_seconds=round(seconds, 2), threads=torch.get_num_threads(),
            torch_version=torch.__version__, tokenizer=recipe.corpus.tokenizer, final_icl=icl_score(model, windows),
            transformers_version=_version("transformers") if recipe.family != "zoo" else None,
        )
        atomic_write_json(out_dir / f"{recipe.name}.json", manifest)
        return manifest
    finally:
        torch.set_num_threads(old_threads)


def write_checkpoint(out_dir: Path, name: str, step: int, data: bytes):
    """Write intermediate weights ``data`` to ``out_dir/NAME/step_<5-digit step>.safetensors``; its
    :class:`~circuitry.zoo.train.CheckpointFile`."""
    from circuitry.zoo.train import CheckpointFile, sha256_bytes

    rel = f"{name}/step_{step:05d}.safetensors"
    atomic_write_bytes(Path(out_dir) / rel, data)
    return CheckpointFile(step=step, file=rel, sha256=sha256_bytes(data))


def weights_as(model, dtype: str) -> bytes:
    """``model``'s safetensors bytes (:func:`~circuitry.zoo.train.weights_bytes`) with the tensors cast to ``dtype``."""
    import copy

    import torch

    from circuitry.zoo.train import weights_bytes

    return weights_bytes(model if dtype == "float32" else copy.deepcopy(model).to(getattr(torch, dtype)))


def ship(name: str, trained_dir: str | Path, out_dir: str | Path, *, steps: tuple[int, ...],
         dtype: str = "float16") -> TextZooManifest:
    """Copy a trained text model to ``out_dir`` with only the checkpoints ``steps``, its weights cast to ``dtype``.

    The manifest written is the one :func:`train_text` writes for the recipe with ``checkpoint_steps=steps``
    and ``weights_dtype=dtype`` (saving never changes training, so the curve and probes are the trained run's).

    Raises
    ------
    InputError
        A step that the trained run did not save.
    """
    from circuitry.zoo.registry import load_zoo, zoo_manifest
    from circuitry.zoo.train import sha256_bytes

    man = zoo_manifest(name, root=trained_dir)
    missing = sorted(set(steps) - {c.step for c in man.checkpoints})
    if missing:
        raise bad_value("steps", missing, f"steps the run saved: {[c.step for c in man.checkpoints]}")
    out_dir = Path(out_dir)
    ckpts = []
    for s in sorted(steps):
        ckpts.append(write_checkpoint(out_dir, name, s, weights_as(load_zoo(name, step=s, root=trained_dir)[0], dtype)))
    data = weights_as(load_zoo(name, root=trained_dir)[0], dtype)
    atomic_write_bytes(out_dir / man.weights_file, data)
    recipe = man.recipe.model_copy(update={"checkpoint_steps": tuple(sorted(steps)), "weights_dtype": dtype})
    new = man.model_copy(update={"recipe": recipe, "checkpoints": ckpts, "weights_sha256": sha256_bytes(data)})
    atomic_write_json(out_dir / f"{name}.json", new)
    return new


def main(argv: list[str] | None = None) -> int:
    """``python -m circuitry.zoo.text_train {tokenizer,model NAME} --out DIR [--stop-step N]``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m circuitry.zoo.text_train", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    t = sub.add_parser("tokenizer", help="train the BPE tokenizer and write the held-out prose")
    t.add_argument("--out", required=True)
    m = sub.add_parser("model", help="train a text model")
    m.add_argument("name", choices=sorted(text_recipes()))
    m.add_argument("--out", required=True)
    m.add_argument("--stop-step", type=int, default=None)
    s = sub.add_parser("ship", help="copy a trained model with a subset of its checkpoints, cast to float16")
    s.add_argument("name", choices=sorted(text_recipes()))
    s.add_argument("--trained", required=True, help="the --out folder of `model`")
    s.add_argument("--out", required=True)
    s.add_argument("--steps", required=True, help="comma-separated checkpoint steps to keep")
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except CircuitryError as exc:  # as `circuitry`: the message and its fix, exit 2, no traceback
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2


def _run(args) -> int:
    if args.what == "tokenizer":
        print(build_tokenizer(args.out))
        return 0
    if args.what == "ship":
        new = ship(args.name, args.trained, args.out, steps=tuple(int(x) for x in args.steps.split(",")))
        print(f"{new.name}: checkpoints {[c.step for c in new.checkpoints]}, weights {new.weights_sha256}")
        return 0
    man = train_text(text_recipes()[args.name], args.out, stop_step=args.stop_step)
    print(f"{man.name}: {man.steps} steps in {man.train_seconds:.0f} s, ICL score {man.final_icl.icl_score:.3f}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
