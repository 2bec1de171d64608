"""The one model adapter: every read and write of a model's activations goes through here, via nnsight.

An analysis asks for canonical sites (see :mod:`circuitry.models.families`) and never touches module
paths. One call to :meth:`ModelAdapter.run` is one forward pass, in which any number of
:class:`Edit` s (overwrite or add to a site, on any subset of batch rows, positions and heads, given as
a boolean mask) and reads are applied in the order the model computes them. Interventions never modify
the model: nnsight applies them for the duration of one trace, so a run after any edit, including one
that raised mid-way, gives the unpatched logits.

Wrapping a Hugging Face model changes two things that keep its function (:func:`_prepare`): attention
runs in the eager implementation (the only one that returns patterns), and tanh-approximate GELU
activations (GPT-2's ``gelu_new``: ``NewGELUActivation``, six elementwise torch ops; ``GELUTanh`` and the
other aliases) run as :class:`~circuitry.models.activations.TanhGELU`, the same function written as
``x * sigmoid(2u)`` (2.3x faster than torch's tanh kernel on a CPU; outputs differ by float rounding, at
most 4.8e-7 on N(0, 1) inputs). docs/performance.md measures both.
"""

from __future__ import annotations

import hashlib
from typing import Iterable

import torch

from circuitry.errors import InputError, UnsupportedError
from circuitry.models.activations import TANH_GELU_CLASSES, TanhGELU
from circuitry.models.distributed import nnsight_envoy
from circuitry.models.edits import (
    STAGES,
    Edit,
    LogitSlice,
    RunResult,
    apply_edits,
    stage_of,
)
from circuitry.models.families import HEAD_SITES, SITES, get_path
from circuitry.models.info import ArchInfo, arch_info, detect_family
from circuitry.models.logit_slicing import read_logits, scatter, trim_positions, unembed_columns
from circuitry.models.weights import HeadWeights, extract_weights


def _prepare(module: torch.nn.Module) -> int:
    """Eager attention, and every Hugging Face tanh-GELU module (``gelu_new``, ``gelu_fast``,
    ``gelu_pytorch_tanh``) replaced by :class:`~circuitry.models.activations.TanhGELU` (the same function
    in a form 2.3x faster on a CPU). Returns how many activations were replaced."""
    if hasattr(module, "set_attn_implementation"):
        module.set_attn_implementation("eager")  # attention patterns are only returned by eager
    swaps = [name for name, child in module.named_modules()
             if type(child).__name__ in TANH_GELU_CLASSES and type(child).__module__.startswith("transformers.")]
    for name in swaps:
        parent, _, attr = name.rpartition(".")
        setattr(module.get_submodule(parent) if parent else module, attr, TanhGELU())
    return len(swaps)


class ModelAdapter:
    """A loaded model behind canonical sites.

    Parameters
    ----------
    module
        A zoo model or a Hugging Face causal LM (GPT-2, GPT-NeoX/Pythia, Llama-layout incl. Qwen-2, Gemma-2).
    model_id
        How the model was named (``"zoo:attn-only-2l"``, a directory, a hub id); recorded in results.
    remote
        ``"local"``: every trace goes through nnsight's in-process serialize/deserialize round trip (a dry
        run of the remote path; the module is wrapped in an nnsight ``Remotable`` envoy). ``True`` (NDIF)
        raises :class:`UnsupportedError` for now (``docs/scale.md`` says why).
    tensor_parallel
        The weights are sharded across the ranks of a ``torch.distributed`` group (loaded with
        ``load_model(..., tensor_parallel=N)`` under ``torchrun``): the envoy then uses nnsight's
        tensor-parallel interleaver, which shows every read and edit the whole activation.

    Examples
    --------
    >>> from circuitry.models import load_model
    >>> m = load_model("zoo:attn-only-2l")
    >>> ids = torch.tensor([[0, 5, 6, 7, 5, 6, 7]])
    >>> out = m.run(ids, reads=[("z", 1)])
    >>> out[("z", 1)].shape[2] == m.info.n_heads
    True
    """

    def __init__(self, module: torch.nn.Module, *, model_id: str = "module", remote: bool | str = False,
                 tokenizer=None, manifest=None, weights_sha256: str | None = None, tensor_parallel: bool = False):
        self.module = module.eval()
        self.spec = detect_family(module)
        self.info: ArchInfo = arch_info(module, self.spec)
        if manifest is not None and getattr(manifest, "bos_token_id", None) is not None:
            self.info = self.info.model_copy(update={"bos_token_id": manifest.bos_token_id})
        if self.spec.name != "zoo":
            _prepare(module)
        self.model_id = model_id
        self.remote = remote
        self.tokenizer = tokenizer
        self.manifest = manifest
        self.tensor_parallel = tensor_parallel
        self._nn = nnsight_envoy(module, remote=remote, tensor_parallel=tensor_parallel)
        self._weights: dict[bool, HeadWeights] = {}
        self._sha: str | None = weights_sha256

    # ----------------------------------------------------------------- pickling
    def __getstate__(self) -> dict:
        """The module and what was said about it, without the nnsight envoy (rebuilt on unpickling), so an
        adapter can be shipped to a worker process or a Ray task (:mod:`circuitry.executors`)."""
        if self.tensor_parallel:
            raise InputError("a tensor-parallel model cannot be pickled: its weights are shards held by the ranks of "
                             "a torch.distributed group. Fix: run the sweep with executor='serial' under torchrun")
        state = dict(self.__dict__)
        state.pop("_nn")
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._nn = nnsight_envoy(self.module, remote=self.remote, tensor_parallel=False)

    # ----------------------------------------------------------------- facts
    @property
    def device(self) -> torch.device:
        return next(self.module.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.module.parameters()).dtype

    @property
    def weights_sha256(self) -> str:
        """sha256 of the weights: for a zoo model, of its shipped safetensors file (the manifest's, what
        ``sha256sum`` prints); otherwise over the state dict (names in sorted order, raw tensor bytes)."""
        if self._sha is None:
            h = hashlib.sha256()
            for name, t in sorted(self.module.state_dict().items()):
                if hasattr(t, "full_tensor"):  # a tensor-parallel shard (DTensor): hash the whole weight
                    t = t.full_tensor()
                h.update(name.encode())
                h.update(t.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
            self._sha = h.hexdigest()
        return self._sha

    def weights(self, *, fold_ln: bool = True) -> HeadWeights:
        """Per-head weights in the row-vector convention (:mod:`circuitry.models.weights`)."""
        if fold_ln not in self._weights:
            self._weights[fold_ln] = extract_weights(self.module, self.spec, self.info, fold_ln=fold_ln)
        return self._weights[fold_ln]

    def site_shape(self, site: str, batch: int, seq: int) -> tuple[int, ...]:
        """Canonical shape of ``site`` for a batch of ``batch`` sequences of ``seq`` tokens."""
        i = self.info
        return {
            "q": (batch, seq, i.n_heads, i.d_head), "k": (batch, seq, i.n_kv_heads, i.d_head),
            "v": (batch, seq, i.n_kv_heads, i.d_head), "z": (batch, seq, i.n_heads, i.d_head),
            "head_out": (batch, seq, i.n_heads, i.d_model), "pattern": (batch, i.n_heads, seq, seq),
            "logits": (batch, seq, i.n_outputs),
        }.get(site, (batch, seq, i.d_model))

    def mask(self, site: str, *, batch: int, seq: int, rows: Iterable[int] | None = None,
             positions: Iterable[int] | None = None, heads: Iterable[int] | None = None) -> torch.Tensor:
        """Boolean mask over ``site``'s canonical shape selecting ``rows x positions x heads``
        (``None`` selects all). For ``pattern``, ``positions`` are query positions."""
        shape = self.site_shape(site, batch, seq)
        m = torch.zeros(shape, dtype=torch.bool, device=self.device)
        r = slice(None) if rows is None else torch.as_tensor(list(rows), dtype=torch.long)
        p = slice(None) if positions is None else torch.as_tensor(list(positions), dtype=torch.long)
        if site in HEAD_SITES and site != "pattern":
            h = slice(None) if heads is None else torch.as_tensor(list(heads), dtype=torch.long)
            idx = torch.zeros(shape[:3], dtype=torch.bool, device=self.device)
            idx[r] = _sel(idx[r], p, h)
            m[idx] = True
        elif site == "pattern":
            h = slice(None) if heads is None else torch.as_tensor(list(heads), dtype=torch.long)
            idx = torch.zeros(shape[:3], dtype=torch.bool, device=self.device)
            idx[r] = _sel(idx[r], h, p)
            m[idx] = True
        else:
            if heads is not None:
                raise InputError(f"heads={list(heads)} given for site {site!r}, which has no head axis")
            idx = torch.zeros(shape[:2], dtype=torch.bool, device=self.device)
            sub = idx[r]
            sub[:, p] = True
            idx[r] = sub
            m[idx] = True
        return m

    # ----------------------------------------------------------------- running
    def validate(self, reads: Iterable[tuple[str, int]], edits: Iterable[Edit]) -> None:
        """Check sites and layers before any work; raises :class:`InputError` / :class:`UnsupportedError`."""
        for site, layer in list(reads) + [(e.site, e.layer) for e in edits]:
            if site not in SITES or site == "logits":
                import difflib

                near = difflib.get_close_matches(str(site), SITES[:-1], n=1)
                raise InputError(f"site={site!r} is not a layer site; expected one of {SITES[:-1]}."
                                 + (f" Did you mean {near[0]!r}?" if near else ""))
            if not 0 <= layer < self.info.n_layers:
                raise InputError(f"layer={layer} is out of range for a {self.info.n_layers}-layer model. Fix: layers "
                                 f"count from 0 to {self.info.n_layers - 1}")
            if site in ("mlp_in", "mlp_out") and not self.info.has_mlp:
                raise InputError(f"site={site!r} requested, but {self.model_id} is attention-only")
        for e in edits:
            if e.site == "pattern" and not self.spec.pattern:
                raise UnsupportedError(
                    f"editing the attention pattern is not supported for family {self.spec.name!r} "
                    "(Hugging Face computes it inside the attention function). Fix: patch 'q', 'k' or 'z' instead"
                )
            if e.op not in ("set", "add"):
                raise InputError(f"Edit.op={e.op!r}; expected 'set' or 'add'")

    def run(self, input_ids: torch.Tensor, *, reads: Iterable[tuple[str, int]] = (),
            edits: Iterable[Edit] = (), grad: bool = False, logits: bool = True,
            start: tuple[int, torch.Tensor] | None = None, logits_at: LogitSlice | None = None) -> RunResult:
        """One forward pass with ``edits`` applied and ``reads`` recorded.

        Parameters
        ----------
        input_ids
            ``[batch, pos]`` token ids (all rows the same length).
        reads
            ``(site, layer)`` pairs to return, in canonical shapes.
        edits
            Interventions to apply, in any order; several edits of one site apply in the given order.
        grad
            Keep the autograd graph (for attribution patching); otherwise runs under ``no_grad``.
        start
            ``(layer, resid)``: begin at ``layer`` from the residual stream ``resid`` (``[b, p, d]``, e.g.
            an unpatched run's ``resid_pre`` there). The layers before it are skipped (nnsight's
            ``skip``), which gives the same result as recomputing them when nothing before ``layer``
            is edited. Reads and edits must then lie at ``layer`` or later.
        logits_at
            Return (and compute) only these positions and vocabulary columns of the logits (:class:`LogitSlice`).
        logits
            ``False``: no logits; the pass stops after the last read or edit (nnsight's ``stop``).
        """
        reads, edits = list(dict.fromkeys(reads)), list(edits)
        self.validate(reads, edits)
        if start is not None:
            early = [(s, l) for s, l in reads + [(e.site, e.layer) for e in edits] if l < start[0]]
            if early or not 0 <= start[0] < self.info.n_layers:
                raise InputError(f"start layer {start[0]} is after the reads/edits at {early}; they would be skipped")
        if input_ids.ndim != 2:
            raise InputError(f"input_ids has shape {tuple(input_ids.shape)}; expected [batch, pos]")
        input_ids = input_ids.to(self.device)
        plan: dict[tuple[int, int], tuple[list, list]] = {}
        for site, layer in reads:
            plan.setdefault((layer, STAGES.index(stage_of(self.spec, site))), ([], []))[0].append(site)
        for e in edits:
            plan.setdefault((e.layer, STAGES.index(stage_of(self.spec, e.site))), ([], []))[1].append(e)
        if any(s == "head_out" for s, _ in reads) or any(e.site == "head_out" for e in edits):
            self.weights(fold_ln=False)  # computed before the trace, outside nnsight's interleaving
        # with a norm on the attention output, head outputs need z and the projection's output: kept from o_proj
        stash = {l for s, l in reads + [(e.site, e.layer) for e in edits] if s == "head_out"} if self.spec.attn_post \
            else set()
        for l in stash:
            plan.setdefault((l, STAGES.index("o_proj")), ([], []))
        out: dict = {}
        trim = trim_positions(self, logits, logits_at, reads, edits, input_ids.shape[1])
        if trim is not None:  # the last layer's output projection and MLP run at the metric's positions only
            plan.setdefault((self.info.n_layers - 1, STAGES.index("o_proj")), ([], []))
            if self.spec.mlp and self.info.has_mlp:
                plan.setdefault((self.info.n_layers - 1, STAGES.index("mlp")), ([], []))
            trim = trim.to(self.device)
        unembed_cols = unembed_columns(self, logits_at)
        # plain tensors only inside the trace: a remote trace ships what it references
        cut_pos = None if logits_at is None else logits_at.positions.to(self.device)
        cut_cols = None if logits_at is None or logits_at.columns is None else logits_at.columns.to(self.device)
        kwargs = {"remote": self.remote} if self.remote else {}
        with torch.set_grad_enabled(grad), self._nn.trace(input_ids, **kwargs) as tracer:
            root = self._nn
            if start is not None and start[0] > 0:
                layers = get_path(root, self.spec.layers)
                resid = start[1].to(self.device)
                for j in range(start[0]):  # only the last skipped layer's output is used
                    layers[j].skip(resid)
            last = self.info.n_layers - 1
            for key in sorted(plan):
                self._stage(root, key[0], STAGES[key[1]], plan[key][0], plan[key][1], out,
                            trim=trim if key[0] == last else None, bp=tuple(input_ids.shape), stash=key[0] in stash)
            if logits:
                read_logits(self, root, cut_pos, cut_cols, unembed_cols, out)
            elif plan:
                tracer.stop()  # nothing after the last read or edit is needed: the later layers do not run
        result = RunResult(logits=out.pop("logits", None))
        result.acts.update(out)
        return result

    def logits(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Plain forward pass through the adapter: ``[batch, pos, vocab]``."""
        return self.run(input_ids).logits

    # ----------------------------------------------------------------- stages
    def _overwritten(self, edits: list[Edit], sites: list[str], bp: tuple[int, int]) -> list[torch.Tensor] | None:
        """When each of ``sites`` (a projection's parts) is first set whole (no mask, no rows, a full-shaped
        value), those values; else ``None``. The projection then need not run (nnsight's ``skip``); a sharded
        model always runs it."""
        if self.tensor_parallel:
            return None
        firsts = [next((e for e in edits if e.site == s), None) for s in sites]
        if all(e is not None and e.op == "set" and e.mask is None and e.rows is None and torch.is_tensor(e.value)
               and tuple(e.value.shape) == self.site_shape(s, *bp) for e, s in zip(firsts, sites)):
            return [e.value.to(dtype=self.dtype, device=self.device) for e in firsts]
        return None

    def _stage(self, root, layer: int, stage: str, reads: list[str], edits: list[Edit], out: dict,
               trim: torch.Tensor | None = None, bp: tuple[int, int] = (0, 0), stash: bool = False) -> None:
        """Apply ``edits`` and record ``reads`` at one stage of ``layer`` (``bp``: the batch's rows and
        positions); with ``trim`` (positions; last layer only, see :func:`~circuitry.models.logit_slicing.trim_positions`) the output
        projection and the MLP run at those positions only. A projection whose output the edits set whole
        is skipped (:meth:`_overwritten`). ``stash``: keep ``z`` and the output projection's result for the
        ``attn_post`` stage (head outputs behind a norm)."""
        i, spec = self.info, self.spec
        lay = get_path(root, spec.layers)[layer]
        by = lambda s: [e for e in edits if e.site == s]  # noqa: E731
        if stage in ("layer_in", "layer_out"):
            site = "resid_pre" if stage == "layer_in" else "resid_post"
            raw = lay.input if stage == "layer_in" else lay.output
            tup = isinstance(raw, tuple)
            act = raw[0] if tup else raw
            if edits:
                act = apply_edits(act, edits)
                new = (act, *raw[1:]) if tup else act
                if stage == "layer_in":
                    lay.input = new
                else:
                    lay.output = new
            if reads:
                out[(site, layer)] = act
        elif stage == "mlp" and trim is not None:  # no reads or edits here (see trim_positions)
            env = get_path(lay, spec.mlp)
            x = env.input
            seq = x.shape[1]
            env.input = x[:, trim]
            env.output = scatter(env.output, trim, seq)
        elif stage == "mlp_in":
            env = get_path(lay, spec.ln2)
            raw = env.input
            act = apply_edits(raw, edits) if edits else raw
            if edits:
                env.input = act
            if reads:
                out[("mlp_in", layer)] = act
        elif stage in ("ln1", "mlp", "pattern_hook"):
            site = {"ln1": "attn_in", "mlp": "mlp_out", "pattern_hook": "pattern"}[stage]
            env = get_path(lay, {"ln1": spec.ln1, "mlp": spec.mlp_post or spec.mlp, "pattern_hook": spec.pattern}[stage])
            act = env.output
            if edits:
                act = apply_edits(act, edits)
                env.output = act
            if reads:
                out[(site, layer)] = act
        elif stage in ("q", "k", "v"):
            env = get_path(lay, getattr(spec, stage))
            full = self._overwritten(edits, [stage], bp)
            if full is not None:  # the projection's output is given whole: it is not computed
                act = apply_edits(full[0], edits[1:])
                env.skip(act.reshape(*bp, -1))
                if reads:
                    out[(stage, layer)] = act
                return
            raw = env.output
            n = i.n_heads if stage == "q" else i.n_kv_heads
            act = raw.view(*raw.shape[:-1], n, i.d_head)
            if edits:
                act = apply_edits(act, edits)
                env.output = act.reshape(raw.shape)
            if reads:
                out[(stage, layer)] = act
        elif stage == "qkv":
            env = get_path(lay, spec.qkv)
            b, p = bp
            full = self._overwritten(edits, ["q", "k", "v"], bp)
            if full is not None:  # q, k and v are all given whole: the fused projection is not computed
                parts = [apply_edits(t, by(s)[1:]) for t, s in zip(full, "qkv")]
            else:
                raw = env.output
                if spec.qkv_layout == "gpt2_fused":
                    parts = [t.view(b, p, i.n_heads, i.d_head) for t in raw.split(i.n_heads * i.d_head, dim=-1)]
                else:
                    parts = list(raw.view(b, p, i.n_heads, 3 * i.d_head).split(i.d_head, dim=-1))
                if edits:
                    parts = [apply_edits(t, by(s)) for t, s in zip(parts, "qkv")]
            if edits:
                if spec.qkv_layout == "gpt2_fused":
                    new = torch.cat([t.reshape(b, p, -1) for t in parts], dim=-1)
                else:
                    new = torch.cat(parts, dim=-1).reshape(b, p, -1)
                if full is not None:
                    env.skip(new)
                else:
                    env.output = new
            for t, s in zip(parts, "qkv"):
                if s in reads:
                    out[(s, layer)] = t
        elif stage == "o_proj":
            env = get_path(lay, spec.o)
            zin = env.input
            z = zin.view(*zin.shape[:-1], i.n_heads, i.d_head)
            if by("z"):
                z = apply_edits(z, by("z"))
            if "z" in reads:
                out[("z", layer)] = z
            if trim is not None:  # no later reads or edits here (see trim_positions)
                env.input = z.reshape(zin.shape)[:, trim]
                env.output = scatter(env.output, trim, zin.shape[1])
                return
            if by("z"):
                env.input = z.reshape(zin.shape)
            if stash:
                out[("_zo", layer)] = (z, env.output)
            if "attn_out" in reads or "head_out" in reads or edits and set(e.site for e in edits) - {"z"}:
                act = self._head_sites(env.output, z, layer, reads, edits, out)
                if by("head_out") or by("attn_out"):
                    env.output = act
        elif stage == "attn_post":
            env = get_path(lay, spec.attn_post)
            z, o = out.pop(("_zo", layer), (None, None))
            act = self._head_sites(env.output, z, layer, reads, edits, out, normed=o)
            if edits:
                env.output = act
        elif stage == "attn_mod":
            out[("pattern", layer)] = get_path(lay, spec.attn).output[1]


    def _head_sites(self, act, z, layer: int, reads: list[str], edits: list[Edit], out: dict, normed=None):
        """Read and edit ``head_out`` and ``attn_out`` given the attention output ``act`` and ``z``; returns the
        (edited) attention output. ``normed``: the output projection's result when ``act`` is a norm of it
        (Gemma-2's ``post_attention_layernorm``); a head's output is then its share of ``act``,
        ``z_h W_O^h * g / rms(o)`` (:func:`circuitry.models.weights.head_share`)."""
        by = lambda s: [e for e in edits if e.site == s]  # noqa: E731
        if "head_out" in reads or by("head_out"):
            W_O = self.weights(fold_ln=False).W_O[layer].to(z.dtype)
            cur = torch.einsum("bphe,hed->bphd", z, W_O)
            if normed is not None:
                from circuitry.models.weights import head_share

                cur = head_share(cur, normed, get_path(self.module, self.spec.layers)[layer], self.spec)
            if by("head_out"):
                new = apply_edits(cur, by("head_out"))
                act = act + (new - cur).sum(dim=2)
                cur = new
            if "head_out" in reads:
                out[("head_out", layer)] = cur
        if by("attn_out"):
            act = apply_edits(act, by("attn_out"))
        if "attn_out" in reads:
            out[("attn_out", layer)] = act
        return act


def _sel(t: torch.Tensor, a, b) -> torch.Tensor:
    """Set ``t[:, a, b] = True`` for index tensors or slices ``a``, ``b`` (outer product)."""
    t = t.clone()
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        t[:, a[:, None], b[None, :]] = True
    else:
        t[:, a, b] = True
    return t
