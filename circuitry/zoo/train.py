"""Training the zoo: a recipe in, safetensors checkpoints and a JSON manifest out.

Training runs on one torch thread (``torch.set_num_threads(1)``), the only setting in which it is
bit-reproducible: the same recipe on the same torch version gives byte-identical safetensors files,
hence the same sha256. The learning-rate schedule depends on ``recipe.steps`` only, so a run stopped
early (``stop_step``) is a prefix of the full run and reproduces its intermediate checkpoints.

Every ``eval_every`` steps it records probes (:func:`run_probes`, Olsson et al. 2022's head evaluators)
on held-out repeated random tokens: each head's previous-token and prefix-matching score, and the
loss on each repeat.
"""

from __future__ import annotations

import hashlib
import math
import time
from importlib.metadata import version as _version
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from circuitry.errors import bad_value
from circuitry.io import atomic_write_bytes, atomic_write_json
from circuitry.provenance import Frozen
from circuitry.zoo.arch import ZooConfig
from circuitry.zoo.corpus import BOS_TOKEN_ID, CorpusSpec, corpus_sha256

Family = Literal["zoo", "llama", "gpt2"]


class LlamaSpec(Frozen):
    """Architecture of a zoo model built as a Hugging Face ``LlamaForCausalLM``.

    ``n_kv_heads < n_heads`` gives grouped-query attention; ``d_model / n_heads`` is the head size.
    Rotary positions (``rope_theta``), RMSNorm, SwiGLU MLP of width ``d_mlp``, untied embeddings.
    """

    n_layers: int
    n_heads: int
    n_kv_heads: int
    d_model: int
    d_mlp: int
    d_vocab: int
    n_ctx: int
    rope_theta: float = 10000.0

    @model_validator(mode="after")
    def _check(self) -> "LlamaSpec":
        if self.d_model % self.n_heads or self.n_heads % self.n_kv_heads:
            raise ValueError(
                f"need n_heads | d_model and n_kv_heads | n_heads, got d_model={self.d_model}, "
                f"n_heads={self.n_heads}, n_kv_heads={self.n_kv_heads}"
            )
        return self


class GPT2Spec(Frozen):
    """Architecture of a zoo model built as a Hugging Face ``GPT2LMHeadModel``: pre-LayerNorm, learned
    absolute positions, GELU MLP of width ``d_mlp`` (GPT-2's 4 x ``d_model`` when ``None``), tied embeddings."""

    n_layers: int
    n_heads: int
    d_model: int
    d_vocab: int
    n_ctx: int
    d_mlp: int | None = None

    @model_validator(mode="after")
    def _check(self) -> "GPT2Spec":
        if self.d_model % self.n_heads:
            raise ValueError(f"need n_heads | d_model, got d_model={self.d_model}, n_heads={self.n_heads}")
        return self


class ProbeSpec(Frozen):
    """Held-out probe sequences: ``[BOS] + B * n_repeats``, ``B`` a block of ``block_len`` random symbols.

    Olsson et al. use 25 tokens repeated 4 times (101 tokens); the zoo's defaults (20 tokens, 3
    repeats, 61 tokens) fit its 64-token context. ``n_samples`` sequences are drawn with ``seed`` from a
    random stream that training never uses.
    """

    block_len: int = 20
    n_repeats: int = 3
    n_samples: int = 16
    seed: int = 999


class ProbeResult(Frozen):
    """Probe scores of every head, ``[layer][head]``, and the mean loss on each repeat of the block.

    ``prev_token[l][h]``: mean attention from query ``i`` to key ``i - 1`` (all ``i >= 1``).
    ``induction[l][h]``: prefix-matching score, mean over the tokens of repeats 2.. of the attention
    summed over the tokens that followed *all* earlier occurrences (keys ``i - k * block_len + 1``). ``loss_per_repeat[r]``: mean
    next-token loss on the tokens of repeat ``r`` (repeat 0 is unpredictable: about ``ln(n_symbols)``).
    """

    prev_token: list[list[float]]
    induction: list[list[float]]
    loss_per_repeat: list[float]

    prev_token_best = property(lambda self: max(map(max, self.prev_token)), doc="Best prev-token score.")
    induction_best = property(lambda self: max(map(max, self.induction)), doc="Best prefix-matching score.")


def attention_patterns(model, tokens) -> tuple[object, list[object]]:
    """Logits ``[batch, pos, vocab]`` and each layer's pattern ``[batch, head, query, key]``.

    Zoo models: read with forward hooks on ``blocks.{l}.attn.hook_pattern``; Hugging Face models:
    ``output_attentions=True`` (needs eager attention).
    """
    if hasattr(model, "blocks"):
        pats: list[object] = []
        handles = [b.attn.hook_pattern.register_forward_hook(lambda m, i, o: pats.append(o.detach()))
                   for b in model.blocks]
        try:
            return model(tokens), pats
        finally:
            for h in handles:
                h.remove()
    out = model(tokens, output_attentions=True)
    return out.logits, [a.detach() for a in out.attentions]


def run_probes(model, spec: ProbeSpec, *, n_symbols: int) -> ProbeResult:
    """Compute the :class:`ProbeResult` of ``model`` on the held-out probe sequences (no gradients)."""
    import torch
    import torch.nn.functional as F

    from circuitry.zoo.corpus import repeated_random_tokens

    tokens = torch.from_numpy(repeated_random_tokens(
        n_symbols=n_symbols, block_len=spec.block_len, n_repeats=spec.n_repeats,
        n_samples=spec.n_samples, seed=spec.seed))
    was_training = model.training
    with torch.no_grad():
        logits, pats = attention_patterns(model.eval(), tokens)
    model.train(was_training)
    n, L = tokens.shape[1], spec.block_len
    q = torch.arange(1, n)
    qi = torch.arange(1 + L, n)
    prev = [p[:, :, q, q - 1].mean(dim=(0, 2)).tolist() for p in pats]
    rep = (qi - 1) // L  # repeat index of each query (>= 1): it has `rep` earlier occurrences
    ind = []
    for p in pats:
        total = torch.zeros(p.shape[0], p.shape[1], len(qi))
        for k in range(1, spec.n_repeats):
            keys = qi - k * L + 1
            ok = (rep >= k) & (keys >= 1)
            total[:, :, ok] += p[:, :, qi[ok], keys[ok]]
        ind.append(total.mean(dim=(0, 2)).tolist())
    losses = F.cross_entropy(logits[:, :-1].transpose(1, 2), tokens[:, 1:], reduction="none").mean(0)
    per_rep = [float(losses[r * L:(r + 1) * L].mean()) for r in range(spec.n_repeats)]
    return ProbeResult(prev_token=prev, induction=ind, loss_per_repeat=per_rep)


class TrainRecipe(Frozen):
    """Everything that determines a zoo model: architecture, corpus, optimizer, schedule, seed.

    Parameters
    ----------
    name
        The zoo name the model is shipped under.
    family
        ``"zoo"``: :class:`~circuitry.zoo.arch.ZooTransformer` built from ``model`` (a
        :class:`ZooConfig`); ``"llama"``: ``transformers.LlamaForCausalLM`` built from ``model`` (a
        :class:`LlamaSpec`), eager attention; ``"gpt2"``: ``transformers.GPT2LMHeadModel`` built from
        ``model`` (a :class:`GPT2Spec`), eager attention.
    lr, betas, weight_decay
        AdamW. The learning rate rises linearly for ``warmup`` steps, then follows a cosine to
        ``lr * final_lr_frac`` at ``steps``.
    checkpoint_steps
        Steps after which an intermediate checkpoint is saved (for phase-change analyses).
    eval_every
        Probe interval in steps; the training loss is averaged over the same window.
    pos_init_std
        Re-initialize a zoo model's ``pos_embed`` at this std (the default 0.02 is too small for sharp
        positional heads under shortformer; see docs/zoo.md). Ignored without ``pos_embed`` (Llama).
    """

    name: str
    family: Family = "zoo"
    description: str = ""
    model: ZooConfig | LlamaSpec | GPT2Spec
    corpus: CorpusSpec = Field(default_factory=CorpusSpec)
    probe: ProbeSpec = Field(default_factory=ProbeSpec)
    lr: float = 3e-3
    betas: tuple[float, float] = (0.9, 0.99)
    weight_decay: float = 0.05
    warmup: int = 100
    final_lr_frac: float = 0.1
    grad_clip: float = 1.0
    batch_size: int = 64
    steps: int = 2000
    seed: int = 0
    checkpoint_steps: tuple[int, ...] = ()
    eval_every: int = 50
    pos_init_std: float | None = None

    @model_validator(mode="after")
    def _check(self) -> "TrainRecipe":
        want = {"zoo": ZooConfig, "llama": LlamaSpec, "gpt2": GPT2Spec}[self.family]
        if not isinstance(self.model, want):
            raise ValueError(f"family={self.family!r} needs model to be a {want.__name__}")
        if self.model.d_vocab != self.corpus.d_vocab:
            raise ValueError(f"model d_vocab={self.model.d_vocab} != corpus d_vocab={self.corpus.d_vocab}")
        if self.model.n_ctx < self.corpus.seq_len:
            raise ValueError(f"model n_ctx={self.model.n_ctx} < corpus seq_len={self.corpus.seq_len}")
        if any(not 0 < s < self.steps for s in self.checkpoint_steps):
            raise ValueError(f"checkpoint_steps={self.checkpoint_steps} must lie strictly inside (0, {self.steps})")
        return self


class CurvePoint(Frozen):
    """One point of the training curve: mean train loss over the window ending at ``step``, plus probes."""

    step: int
    train_loss: float
    lr: float
    probes: ProbeResult


class CheckpointFile(Frozen):
    """A weights file next to the manifest; ``sha256`` is over the file's bytes."""

    step: int
    file: str
    sha256: str


class ZooManifest(Frozen):
    """What a zoo checkpoint is and how it was made (stored as ``NAME.json`` next to the weights).

    ``weights_sha256`` and every ``checkpoints[i].sha256`` are sha256 digests of the *safetensors
    file bytes*, checked on every load.
    """

    name: str
    family: Family
    description: str
    config: dict[str, Any]
    recipe: TrainRecipe
    seed: int
    steps: int
    bos_token_id: int = BOS_TOKEN_ID
    d_vocab: int
    n_ctx: int
    corpus_sha256: str
    weights_file: str
    weights_sha256: str
    checkpoints: list[CheckpointFile]
    curve: list[CurvePoint]
    final_probes: ProbeResult
    train_seconds: float
    threads: int
    torch_version: str
    transformers_version: str | None = None


def build_model(recipe: TrainRecipe):
    """A freshly initialized model for ``recipe`` (uses the current torch RNG state)."""
    if recipe.family == "zoo":
        from circuitry.zoo.arch import ZooTransformer

        return ZooTransformer(recipe.model)
    import transformers

    if recipe.family == "gpt2":
        g: GPT2Spec = recipe.model
        cfg = transformers.GPT2Config(
            vocab_size=g.d_vocab, n_embd=g.d_model, n_layer=g.n_layers, n_head=g.n_heads, n_positions=g.n_ctx,
            n_inner=g.d_mlp, bos_token_id=BOS_TOKEN_ID, eos_token_id=None, pad_token_id=None,
        )
        cfg._attn_implementation = "eager"
        return transformers.GPT2LMHeadModel(cfg)
    m: LlamaSpec = recipe.model
    cfg = transformers.LlamaConfig(
        vocab_size=m.d_vocab, hidden_size=m.d_model, intermediate_size=m.d_mlp,
        num_hidden_layers=m.n_layers, num_attention_heads=m.n_heads, num_key_value_heads=m.n_kv_heads,
        max_position_embeddings=m.n_ctx, rope_theta=m.rope_theta, tie_word_embeddings=False,
        bos_token_id=BOS_TOKEN_ID, eos_token_id=None, pad_token_id=None, initializer_range=0.02,
    )
    cfg._attn_implementation = "eager"
    return transformers.LlamaForCausalLM(cfg)


def tied_aliases(model) -> set[str]:
    """State-dict keys whose tensor is an earlier key's (tied weights, e.g. GPT-2's ``lm_head.weight``)."""
    seen: set[int] = set()
    out = set()
    for k, v in model.state_dict(keep_vars=True).items():
        if id(v) in seen:
            out.add(k)
        seen.add(id(v))
    return out


def weights_bytes(model) -> bytes:
    """The model's state dict as safetensors bytes (contiguous CPU float tensors, no metadata); a tied
    weight is stored once, under its first key."""
    from safetensors.torch import save

    tied = tied_aliases(model)
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items() if k not in tied}
    return save(state)


def sha256_bytes(data: bytes) -> str:
    """sha256 hex digest of ``data``."""
    return hashlib.sha256(data).hexdigest()


def _lr(recipe: TrainRecipe, step: int) -> float:
    """Learning rate used for the update that ends step ``step`` (counted from 1)."""
    if step <= recipe.warmup:
        return recipe.lr * step / max(recipe.warmup, 1)
    frac = (step - recipe.warmup) / max(recipe.steps - recipe.warmup, 1)
    floor = recipe.lr * recipe.final_lr_frac
    return floor + (recipe.lr - floor) * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0)))


def make_optimizer(model, recipe: TrainRecipe):
    """AdamW with ``recipe``'s settings; weight decay on matrices only: not on biases, norms or (positional)
    embeddings."""
    import torch

    no_wd = [p.ndim < 2 or n.split(".")[-2] in ("embed", "pos_embed", "embed_tokens", "wte", "wpe")
             for n, p in model.named_parameters()]
    decay = [p for (n, p), skip in zip(model.named_parameters(), no_wd) if not skip]
    no_decay = [p for (n, p), skip in zip(model.named_parameters(), no_wd) if skip]
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": recipe.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=recipe.lr, betas=recipe.betas, foreach=False,
    )


def init_training(recipe: TrainRecipe):
    """``(model, optimizer)`` at step 0: seeded with ``recipe.seed``, positional embeddings re-drawn at
    ``recipe.pos_init_std`` (zoo models), train mode, :func:`make_optimizer`."""
    import torch

    torch.manual_seed(recipe.seed)
    model = build_model(recipe)
    if recipe.pos_init_std is not None and hasattr(model, "pos_embed"):
        with torch.no_grad():
            model.pos_embed.weight.normal_(0.0, recipe.pos_init_std)
    model.train()
    return model, make_optimizer(model, recipe)


def optimizer_step(model, opt, recipe: TrainRecipe, step: int, tokens) -> tuple[float, float]:
    """One training step on ``tokens`` ``[batch, pos]`` (next-token loss at every position, gradient clipping at
    ``recipe.grad_clip``, the learning rate of ``step``); returns ``(loss, lr)``."""
    import torch
    import torch.nn.functional as F

    lr = _lr(recipe, step)
    for group in opt.param_groups:
        group["lr"] = lr
    logits = _logits(model, tokens)
    loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.grad_clip)
    opt.step()
    return loss.item(), lr


def train(
    recipe: TrainRecipe,
    out_dir: str | Path,
    *,
    stop_step: int | None = None,
    progress: bool = True,
) -> ZooManifest:
    """Train ``recipe`` on one thread and write ``out_dir/NAME.{safetensors,json}`` atomically.

    Parameters
    ----------
    recipe
        The recipe (shipped recipes are in each manifest's ``recipe`` field).
    out_dir
        Folder for ``NAME.safetensors``, ``NAME.json`` and intermediates ``NAME/step_<5-digit step>.safetensors`` (e.g. ``step_00200``).
    stop_step
        Stop after this many steps of the recipe's schedule (a prefix of the full run, bit-identical to
        it up to that step); ``None`` trains all ``recipe.steps``.
    progress
        Show a tqdm progress bar with the running loss and probe scores.

    Returns
    -------
    ZooManifest
        The manifest that was written (``steps`` is the number of steps actually trained).

    Raises
    ------
    InputError
        If ``stop_step`` is not in ``1..recipe.steps``.
    """
    import torch
    from tqdm.auto import tqdm

    from circuitry.zoo.corpus import iter_batches

    n_steps = recipe.steps if stop_step is None else stop_step
    if not 1 <= n_steps <= recipe.steps:
        raise bad_value("stop_step", stop_step, f"an integer in 1..{recipe.steps}", "omit it to train fully")
    out_dir = Path(out_dir)
    old_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model, opt = init_training(recipe)
        batches = iter_batches(recipe.corpus, seed=recipe.seed, batch_size=recipe.batch_size)
        curve: list[CurvePoint] = []
        ckpts: list[CheckpointFile] = []
        window: list[float] = []
        t0 = time.perf_counter()
        bar = tqdm(range(1, n_steps + 1), desc=f"train {recipe.name}", disable=not progress, leave=False)
        for step in bar:
            loss, lr = optimizer_step(model, opt, recipe, step, torch.from_numpy(next(batches)))
            window.append(loss)
            if step % recipe.eval_every == 0 or step == n_steps:
                probes = run_probes(model, recipe.probe, n_symbols=recipe.corpus.n_symbols)
                curve.append(CurvePoint(step=step, train_loss=sum(window) / len(window), lr=lr, probes=probes))
                window = []
                bar.set_postfix(loss=f"{curve[-1].train_loss:.3f}", prev=f"{probes.prev_token_best:.2f}",
                                ind=f"{probes.induction_best:.2f}")
            if step in recipe.checkpoint_steps:
                rel = f"{recipe.name}/step_{step:05d}.safetensors"
                data = weights_bytes(model)
                atomic_write_bytes(out_dir / rel, data)
                ckpts.append(CheckpointFile(step=step, file=rel, sha256=sha256_bytes(data)))
        seconds = time.perf_counter() - t0
        bar.close()
        model.eval()
        final = run_probes(model, recipe.probe, n_symbols=recipe.corpus.n_symbols)
        data = weights_bytes(model)
        weights_file = f"{recipe.name}.safetensors"
        atomic_write_bytes(out_dir / weights_file, data)
        manifest = ZooManifest(
            name=recipe.name, family=recipe.family, description=recipe.description,
            config=recipe.model.model_dump(), recipe=recipe, seed=recipe.seed, steps=n_steps,
            d_vocab=recipe.model.d_vocab, n_ctx=recipe.model.n_ctx, corpus_sha256=corpus_sha256(recipe.corpus),
            weights_file=weights_file, weights_sha256=sha256_bytes(data), checkpoints=ckpts, curve=curve,
            final_probes=final, train_seconds=round(seconds, 2), threads=torch.get_num_threads(),
            torch_version=torch.__version__,
            transformers_version=_version("transformers") if recipe.family != "zoo" else None,
        )
        atomic_write_json(out_dir / f"{recipe.name}.json", manifest)
        return manifest
    finally:
        torch.set_num_threads(old_threads)


def _logits(model, tokens):
    out = model(tokens)
    return getattr(out, "logits", out)
