"""The shipped zoo: list, describe and load checkpoints from ``circuitry/zoo/checkpoints/``.

Each model ``NAME`` is two files, ``NAME.safetensors`` (the final weights) and ``NAME.json`` (its
:class:`~circuitry.zoo.train.ZooManifest`), plus intermediate checkpoints
``NAME/step_<5-digit step>.safetensors`` (e.g. ``step_00200``). Loading never unpickles: weights are read with ``safetensors`` only.
Before loading, the sha256 of the safetensors *file bytes* is compared with the manifest; a mismatch
raises :class:`~circuitry.errors.ChecksumError`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from circuitry.errors import ChecksumError, InputError, ModelLoadError

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from circuitry.zoo.tracr_models import TracrManifest
    from circuitry.zoo.train import TrainRecipe, ZooManifest

#: Folder of the shipped checkpoints (inside the installed package).
CHECKPOINT_DIR = Path(__file__).resolve().parent / "checkpoints"


def list_zoo(*, root: str | Path | None = None) -> list[str]:
    """Names of the zoo models in ``root`` (default: the shipped checkpoints), sorted.

    Examples
    --------
    >>> "attn-only-2l" in list_zoo()
    True
    """
    folder = Path(root) if root is not None else CHECKPOINT_DIR
    return sorted(p.stem for p in folder.glob("*.json") if p.with_suffix(".safetensors").exists())


_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def check_zoo_name(name: object, folder: Path) -> None:
    """Refuse a zoo name that is not a plain file stem (``../x``, ``a/b``, an absolute path): a zoo name must
    never lead outside the checkpoints folder."""
    if not isinstance(name, str) or not _NAME_RE.match(name) or ".." in name:
        available = ", ".join(list_zoo(root=folder)) or "(none)"
        raise ModelLoadError(f"name={name!r} is not a zoo model name (letters, digits, '.', '_', '-'; no path): "
                             f"available are {available}. Fix: `circuitry zoo list`; a model elsewhere on disk "
                             "is loaded by its directory, not as zoo:NAME")


def zoo_manifest(name: str, *, root: str | Path | None = None) -> ZooManifest | TracrManifest:
    """The manifest of zoo model ``name`` (no weights are read): a
    :class:`~circuitry.zoo.train.ZooManifest` for a trained model, a
    :class:`~circuitry.zoo.tracr_models.TracrManifest` for a model compiled by tracr.

    Raises
    ------
    ModelLoadError
        If ``name`` is not in the zoo; the message lists the available names.
    """
    from circuitry.zoo.train import ZooManifest

    path = zoo_manifest_path(name, root=root)
    import json

    data = json.loads(path.read_text(encoding="utf-8"))
    if data.get("kind") == "tracr":  # compiled by tracr (circuitry.zoo.tracr_build), not trained
        from circuitry.zoo.tracr_models import TracrManifest

        return TracrManifest.model_validate(data)
    if data.get("kind") == "text":  # trained on natural text (circuitry.zoo.text_train)
        from circuitry.zoo.text_train import TextZooManifest

        return TextZooManifest.model_validate(data)
    return ZooManifest.model_validate(data)


def zoo_manifest_path(name: str, *, root: str | Path | None = None) -> Path:
    """The manifest file of zoo model ``name``, checked without importing torch (so a CLI refuses an unknown
    zoo model at once).

    Raises
    ------
    ModelLoadError
        If ``name`` is not in the zoo; the message lists the available names.
    """
    folder = Path(root) if root is not None else CHECKPOINT_DIR
    check_zoo_name(name, folder)
    path = folder / f"{name}.json"
    if not path.is_file():
        available = ", ".join(list_zoo(root=folder)) or "(none)"
        raise ModelLoadError(
            f"name={name!r} is not a zoo model in {folder}: available are {available}. "
            f"Fix: pick one of them (see `circuitry zoo list`)."
        )
    return path


def read_verified(path: str | Path, expected_sha256: str) -> bytes:
    """The bytes of ``path`` after checking their sha256 against ``expected_sha256``.

    Raises
    ------
    ModelLoadError
        If the file is missing.
    ChecksumError
        If the digest differs (a corrupted, truncated or tampered file).
    """
    from circuitry.zoo.train import sha256_bytes

    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"checkpoint file {path} is missing. Fix: reinstall circuitry or re-train the model.")
    data = path.read_bytes()
    digest = sha256_bytes(data)
    if digest != expected_sha256:
        raise ChecksumError(
            f"checkpoint {path} has sha256 {digest} but its manifest records {expected_sha256}; "
            f"the file is corrupted or was modified, so it was refused. Fix: reinstall circuitry, or "
            f"re-create it with `circuitry zoo train {path.stem.split('.')[0]} --out DIR`."
        )
    return data


def load_zoo(
    name: str,
    *,
    step: int | None = None,
    device: str = "cpu",
    dtype: torch.dtype | None = None,
    root: str | Path | None = None,
) -> tuple[torch.nn.Module, ZooManifest]:
    """Load zoo model ``name`` (weights verified against the manifest) in eval mode.

    Parameters
    ----------
    name
        A name from :func:`list_zoo`, e.g. ``"attn-only-2l"``.
    step
        Load the intermediate checkpoint saved after this training step instead of the final weights
        (``manifest.checkpoints`` lists them).
    device, dtype
        Where to put the model and, optionally, a floating dtype to cast it to.
    root
        A folder holding ``NAME.json`` and ``NAME.safetensors`` (e.g. the ``--out`` folder of
        ``circuitry zoo train``); default: the shipped checkpoints.

    Returns
    -------
    (torch.nn.Module, ZooManifest or TracrManifest)
        A :class:`~circuitry.zoo.arch.ZooTransformer` (family ``"zoo"``, also every tracr model) or a
        ``transformers.LlamaForCausalLM`` (family ``"llama"``) or ``transformers.GPT2LMHeadModel`` (family
        ``"gpt2"``), and its manifest.

    Raises
    ------
    ModelLoadError
        Unknown name or missing file. ``ChecksumError``: the weights' sha256 differs from the
        manifest. ``InputError``: ``step`` is not one of the saved steps.

    Examples
    --------
    >>> model, manifest = load_zoo("attn-only-2l")
    >>> manifest.config["n_heads"]
    8
    """
    from safetensors.torch import load

    from circuitry.zoo.train import build_model, tied_aliases

    manifest = zoo_manifest(name, root=root)
    folder = Path(root) if root is not None else CHECKPOINT_DIR
    if step is None or step == manifest.steps:
        file, sha = manifest.weights_file, manifest.weights_sha256
    else:
        match = [c for c in manifest.checkpoints if c.step == step]
        if not match:
            steps = [c.step for c in manifest.checkpoints] + [manifest.steps]
            raise InputError(
                f"step={step!r} is invalid: {name} has checkpoints at steps {steps}. "
                f"Fix: pass one of them, or step=None for the final weights."
            )
        file, sha = match[0].file, match[0].sha256
    state = load(read_verified(folder / file, sha))
    if getattr(manifest, "kind", None) == "tracr":
        from circuitry.zoo.arch import ZooConfig, ZooTransformer

        model = _build_quiet(ZooTransformer, ZooConfig.model_validate(manifest.config))
    else:
        model = _build_quiet(build_model, manifest.recipe)
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = sorted(set(missing) - tied_aliases(model))  # tied weights are stored once
    if missing or unexpected:
        raise ModelLoadError(
            f"checkpoint {folder / file} does not fit the architecture in its manifest: missing "
            f"{sorted(missing)}, unexpected {sorted(unexpected)}. Fix: re-train it with `circuitry zoo train`."
        )
    model.to(device=device)
    if dtype is not None:
        model.to(dtype=dtype)
    model.eval()
    return model, manifest


def zoo_recipes() -> dict[str, TrainRecipe]:
    """The recipes the shipped zoo models were trained from (each manifest also stores its own).

    All three share one corpus; ``circuitry zoo train NAME --out DIR`` uses the shipped manifest's
    recipe when there is one, otherwise the recipe from here (that is how the zoo was built).
    """
    from circuitry.zoo.arch import ZooConfig
    from circuitry.zoo.train import LlamaSpec, TrainRecipe

    corpus = zoo_corpus()
    common = dict(corpus=corpus, lr=3e-3, betas=(0.9, 0.99), weight_decay=0.05, warmup=100,
                  batch_size=64, seed=0, eval_every=50, pos_init_std=1.0)
    attn = dict(d_model=64, d_head=16, d_vocab=corpus.d_vocab, n_ctx=corpus.seq_len, n_heads=8,
                positional="shortformer")
    return {
        "attn-only-1l": TrainRecipe(
            name="attn-only-1l", description="control: 1 attention-only layer, 8 heads; no induction head",
            model=ZooConfig(n_layers=1, **attn), steps=1000, checkpoint_steps=(250, 500), **common),
        # The headline model's corpus restricts the distance-2 lookups to a quarter of the symbols, so the
        # heads serving them do not duplicate the one unconditional previous-token head (docs/zoo.md);
        # seed 2 of the three tried (0, 1, 2) is the one whose layer 1 has induction and other heads.
        "attn-only-2l": TrainRecipe(
            name="attn-only-2l",
            description="headline: 2 attention-only layers x 8 heads, shortformer positions; induction circuit",
            model=ZooConfig(n_layers=2, **attn), steps=1500, checkpoint_steps=(200, 400, 550, 650, 750, 1000),
            **{**common, "seed": 2, "corpus": headline_corpus()}),
        "llama-2l-gqa": TrainRecipe(
            name="llama-2l-gqa", family="llama",
            description="HF Llama, 2 layers with MLPs, 8 query / 2 key-value heads (GQA), rotary",
            model=LlamaSpec(n_layers=2, n_heads=8, n_kv_heads=2, d_model=128, d_mlp=256,
                            d_vocab=corpus.d_vocab, n_ctx=corpus.seq_len),
            steps=2000, checkpoint_steps=(1000, 1500), **common),
    }


def headline_corpus():
    """The corpus of ``attn-only-2l``: :func:`zoo_corpus` with the distance-2 lookups made conditional."""
    return zoo_corpus().model_copy(update={"p_skip2": 0.7, "skip_trigger_frac": 0.25})


def zoo_corpus():
    """The corpus shared by every shipped zoo model."""
    from circuitry.zoo.corpus import CorpusSpec

    return CorpusSpec(p_repeat=0.3, p_skip2=0.35)


def _build_quiet(build: Any, recipe: Any):
    """Build the model without disturbing the caller's global torch RNG state."""
    import torch

    with torch.random.fork_rng(devices=[]):
        return build(recipe)


def summary(manifest: ZooManifest | TracrManifest) -> dict[str, Any]:
    """A short, printable digest of a manifest: architecture, training, and the final probe scores (a tracr
    model: its program, output kind and ground-truth edge counts)."""
    if getattr(manifest, "kind", None) == "tracr":
        gt = manifest.ground_truth
        return {"name": manifest.name, "family": manifest.family, "description": manifest.description,
                "config": manifest.config, "program": manifest.tracr["program"], "vocab": manifest.tracr["vocab"],
                "max_seq_len": manifest.tracr["max_seq_len"], "tracr_version": manifest.tracr["tracr_version"],
                "output_kind": manifest.output_kind, "weights_sha256": manifest.weights_sha256,
                "ground_truth_edges": {k: len(gt[k]) for k in ("reads", "counterfactual")}}
    p = manifest.final_probes
    text = {"corpus": manifest.recipe.corpus.model_dump(), "final_icl": manifest.final_icl.model_dump()} \
        if getattr(manifest, "kind", None) == "text" else {}
    return {
        "name": manifest.name,
        "family": manifest.family,
        "description": manifest.description,
        "config": manifest.config,
        "steps": manifest.steps,
        "seed": manifest.seed,
        "train_seconds": manifest.train_seconds,
        "threads": manifest.threads,
        "torch_version": manifest.torch_version,
        "weights_sha256": manifest.weights_sha256,
        "checkpoints": [c.step for c in manifest.checkpoints],
        "final_train_loss": round(manifest.curve[-1].train_loss, 4) if manifest.curve else None,
        "loss_per_repeat": [round(x, 3) for x in p.loss_per_repeat],
        "prev_token": [[round(x, 2) for x in row] for row in p.prev_token],
        "induction": [[round(x, 2) for x in row] for row in p.induction],
        **text,
    }


def plot_training_curves(manifest: ZooManifest, path: str | Path) -> Path:
    """Save a PNG of ``manifest``'s training curve: train loss, loss per repeat, best head scores.

    Three panels against the training step: the training loss (window means), the loss on each
    repeat of the held-out repeated random tokens, and the best previous-token score (layer 0) and
    best prefix-matching score (last layer). Intermediate checkpoints are marked by dotted lines.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import io

    import matplotlib.pyplot as plt

    from circuitry.io import atomic_write_bytes

    steps = [c.step for c in manifest.curve]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    axes[0].plot(steps, [c.train_loss for c in manifest.curve], color="k")
    axes[0].set(title="training loss", xlabel="step", ylabel="cross-entropy (nats)")
    n_rep = len(manifest.final_probes.loss_per_repeat)
    for r in range(n_rep):
        axes[1].plot(steps, [c.probes.loss_per_repeat[r] for c in manifest.curve], label=f"repeat {r + 1}")
    axes[1].set(title="held-out repeated random tokens", xlabel="step", ylabel="loss (nats)")
    axes[1].legend(fontsize=8)
    axes[2].plot(steps, [max(c.probes.prev_token[0]) for c in manifest.curve], label="best prev-token (layer 0)")
    axes[2].plot(steps, [max(c.probes.induction[-1]) for c in manifest.curve],
                 label=f"best prefix-matching (layer {len(manifest.final_probes.induction) - 1})")
    axes[2].set(title="head scores", xlabel="step", ylim=(0, 1.05))
    axes[2].legend(fontsize=8)
    for ax in axes:
        for c in manifest.checkpoints:
            ax.axvline(c.step, color="grey", lw=0.6, ls=":")
    fig.suptitle(f"{manifest.name}: {manifest.steps} steps, {manifest.train_seconds:.0f} s on 1 thread")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())
