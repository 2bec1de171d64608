"""Exact path patching (Wang et al. 2023, "Interpretability in the Wild", Algorithm 1).

For a sender (a head ``L{l}H{h}`` or ``"embed"``) and a receiver set (the ``q``, ``k`` or ``v``
input of later heads, or the logits), with ``x_orig`` and ``x_new``:

1. Cache every head's output (``z``) on ``x_orig`` and ``x_new``.
2. Run ``x_orig`` with every head frozen to its ``x_orig`` output except the sender, which gets its
   ``x_new`` output (for ``"embed"``: the embeddings of ``x_new``); MLPs and layer norms are recomputed.
   Record the receivers' inputs (their queries, keys or values).
3. Run ``x_orig`` again, patching only the receivers' inputs to the recorded values; everything
   downstream is recomputed. The metric of this run measures the path sender -> receivers.

For the logits receiver the metric of step 2 itself is the effect (the path sender -> logits, through
MLPs where the model has them). Freezing blocks every path through other heads, so only the direct
path is measured. This is the exact algorithm, not a linear approximation.

``direction="noising"`` takes ``x_orig`` = clean, ``x_new`` = corrupted (Wang et al.'s setting: how
much the path is necessary); ``"denoising"`` swaps them. Effects are reported raw (metric per prompt)
and normalized as in :mod:`circuitry.interventions.patching`.

Receivers are patched *before* rotary embeddings (the projection outputs), which is equivalent since
the rotation depends only on the position.

**Grouped-query attention.** With ``n_kv_heads < n_heads`` a key or value input belongs to a key/value
head, read by its whole group of query heads: patching it changes every head of the group at once, so
it is *one* measurement per (sender, key/value group), named after the group (``L1G0``, see
:mod:`circuitry.labels`); :attr:`PathPatchResult.groups` lists each group's query heads
(``{"L1G0": ["L1H0", ..., "L1H3"]}``). Query inputs stay per query head (``L1H2``). A sender therefore
has ``n_heads`` q receivers and ``n_kv_heads`` k and v receivers per later layer. Without grouped-query
attention every group is one head and the labels stay ``L1H0``.
"""

from __future__ import annotations

from typing import Callable, Literal, Sequence

import torch

from circuitry.display import Displayed
from circuitry.errors import InputError
from circuitry.interventions.batching import logit_slice, row_mask, rows_per_pass, run_units
from circuitry.labels import EMBED, LOGITS, group_heads, head_label, is_group, kv_label, parse_group, parse_head
from circuitry.metrics import Targets, check_metric_values, get_metric, normalized_effect
from circuitry.models import Edit, ModelAdapter
from circuitry.prompts import PairDataset, check_task
from circuitry.interventions.results import decide_changes, site_table
from circuitry.provenance import Frozen, NamedArray, Provenance, make_provenance

Kind = Literal["q", "k", "v"]
Direction = Literal["denoising", "noising"]


class PathPatchResult(Displayed, Frozen):
    """Effects of paths ``sender -> (receiver, kind)``.

    ``paths`` lists ``(sender, receiver, kind)`` with kind ``q``/``k``/``v`` or ``out`` (receiver
    ``logits``); a ``q`` receiver is a query head (``L1H2``), a ``k``/``v`` receiver a key/value head:
    with grouped-query attention its group (``L1G0``, one measurement for the whole group, whose query
    heads :attr:`groups` lists), otherwise the head (``L1H0``). :attr:`share` is the share of the clean-corrupted gap each path carries (positive = it
    matters; the convention of every figure and table), ``effect`` Zhang & Nanda's normalized effect per path, ``metric_mean`` the raw mean metric,
    ``per_prompt`` the raw metric ``[path, prompt]``; ``orig`` is the metric of the unpatched ``x_orig``
    run per prompt, ``clean`` / ``corrupted`` those of the two runs.
    """

    direction: str
    metric: str
    paths: list[tuple[str, str, str]]
    effect: list[float]
    metric_mean: list[float]
    per_prompt: NamedArray
    clean: list[float]
    corrupted: list[float]
    n_prompts: int
    provenance: Provenance
    #: with grouped-query attention, each key/value group receiver's query heads
    #: (``{"L1G0": ["L1H0", "L1H1", "L1H2", "L1H3"]}``); empty without (and in results written before)
    groups: dict[str, list[str]] = {}

    @property
    def share(self) -> list[float]:
        """Share of the clean-corrupted gap each path carries (:func:`circuitry.metrics.share_of_gap`)."""
        from circuitry.metrics import share_of_gap

        return [float(share_of_gap(e, self.direction)) for e in self.effect]

    def to_records(self) -> list[dict]:
        """One row per path: ``sender``, ``receiver``, ``kind``, ``share``, ``normalized_effect``,
        ``metric_mean`` (``pandas.DataFrame(res.to_records())``)."""
        return [{"sender": s, "receiver": r, "kind": k, "direction": self.direction, "metric": self.metric,
                 "share": sh, "normalized_effect": e, "metric_mean": m}
                for (s, r, k), sh, e, m in zip(self.paths, self.share, self.effect, self.metric_mean)]

    def to_frame(self):
        """:meth:`to_records` as a ``pandas.DataFrame`` (needs pandas)."""
        from circuitry.interventions.results import _frame

        return _frame(self.to_records())

    def summary(self, k: int = 5) -> str:
        """A few lines: the runs' metric and the ``k`` paths carrying the largest share."""
        top = sorted(self.to_records(), key=lambda r: -r["share"])[:k]
        return (f"path patching ({self.direction}, {self.n_prompts} prompts, metric {self.metric}), "
                f"{len(self.paths)} paths; largest share of the gap: "
                + ", ".join(f"{r['sender']}->{r['receiver']}:{r['kind']} {r['share']:.2f}" for r in top))

    def __str__(self) -> str:
        return self.summary()

    def labels(self) -> list[str]:
        """One name per path, ``sender->receiver:kind``."""
        return [f"{s}->{r}:{k}" for s, r, k in self.paths]

    def decisions(self, *, alpha: float = 0.05, min_share: float | None = None):
        """Every path's share with its interval and Benjamini-Hochberg-adjusted p-value
        (:func:`circuitry.stats.decide.decide_sites`, the decision ``circuitry analyze`` makes for a path)."""
        return decide_changes(self.per_prompt.numpy(), self.clean, self.corrupted, self.labels(),
                              direction=self.direction, level="path", alpha=alpha, min_share=min_share)

    def _table(self):
        return site_table(self, f"PathPatchResult: {self.direction}, metric {self.metric}", self.labels(),
                          self.share, "path")

    def receiver_of(self, receiver: str, kind: str) -> str:
        """The measured receiver a ``(receiver, kind)`` names: with grouped-query attention a query head's
        ``k``/``v`` input is its key/value group's (``receiver_of("L1H2", "k") == "L1G0"``); otherwise
        ``receiver`` itself."""
        if kind in ("k", "v"):
            for group, heads in self.groups.items():
                if receiver in heads:
                    return group
        return receiver

    def effect_of(self, sender: str, receiver: str, kind: str) -> float:
        """The normalized effect of one path (a query head's ``k``/``v`` path: its group's, see
        :meth:`receiver_of`)."""
        try:
            return self.effect[self.paths.index((sender, self.receiver_of(receiver, kind), kind))]
        except ValueError:
            raise InputError(f"path ({sender!r}, {receiver!r}, {kind!r}) was not measured") from None


def _sender(s: str) -> tuple[int, int]:
    """``"embed"`` -> (-1, -1); ``"L0H3"`` -> (0, 3)."""
    return (-1, -1) if s == EMBED else parse_head(s)


def _receiver_units(receivers, L: int, H: int, HK: int, model_id: str) -> list[tuple[tuple[int, int], str]]:
    """Receiver pairs ``(label, kind)`` as ``((layer, index), kind)``, in order, each once: index = the
    query head for ``q``, the key/value head for ``k``/``v`` (a query head's label names its group)."""
    out: list[tuple[tuple[int, int], str]] = []
    for r, kind in receivers:
        if kind not in ("q", "k", "v"):
            raise InputError(f"receiver ({r!r}, {kind!r}): kind must be 'q', 'k' or 'v'")
        if is_group(r):
            if kind == "q":
                raise InputError(f"receiver ({r!r}, 'q'): queries are per query head, not per key/value group; "
                                 f"name one of its query heads, e.g. {group_heads(r, H // HK)[0]!r}")
            layer, idx = parse_group(r)
            if not (0 <= layer < L and 0 <= idx < HK):
                raise InputError(f"receiver {r!r} is not a key/value group of {model_id} ({L} layers x {HK} "
                                 "key/value heads)")
        else:
            layer, h = parse_head(r)
            if not (0 <= layer < L and 0 <= h < H):
                raise InputError(f"receiver {r!r} is not a head of {model_id} ({L} layers x {H} heads)")
            idx = h if kind == "q" else h // (H // HK)
        if ((layer, idx), kind) not in out:
            out.append(((layer, idx), kind))
    return out


def _freeze_edits(model: ModelAdapter, senders: Sequence[str], n: int, z_orig, z_new, emb_orig, emb_new):
    """Step 2's edits for a chunk of senders stacked along the batch."""
    k = len(senders)
    edits = []
    if any(s == EMBED for s in senders):
        val = emb_orig.repeat(k, 1, 1)
        for u, s in enumerate(senders):
            if s == EMBED:
                val[u * n:(u + 1) * n] = emb_new
        edits.append(Edit("resid_pre", 0, val))
    for l in range(model.info.n_layers):
        val = z_orig[l].repeat(k, 1, 1, 1)
        for u, s in enumerate(senders):
            sl, sh = _sender(s)
            if sl == l:
                val[u * n:(u + 1) * n, :, sh] = z_new[l][:, :, sh]
        edits.append(Edit("z", l, val))
    return edits


def path_patch(model: ModelAdapter, data: PairDataset, *, senders: Sequence[str] | None = None,
               receivers: Sequence[tuple[str, str]] | None = None, kinds: Sequence[Kind] = ("q", "k", "v"),
               include_logits: bool = True, direction: Direction = "noising",
               metric: str | Callable = "logit_diff", max_rows: int | None = None, progress: bool = True,
               seed: int | None = None) -> PathPatchResult:
    """Path-patch every sender into every later receiver head (or the given receivers), one path at a time.

    Parameters
    ----------
    senders
        Head labels and/or ``"embed"``; default: ``"embed"`` and every head (last-layer heads have only
        the logits as a receiver).
    receivers
        ``(head, kind)`` pairs to measure, e.g. ``[("L1H5", "q"), ("L1G1", "k")]``; default: every head
        in a later layer than the sender, with each of ``kinds``. With grouped-query attention a ``k``
        or ``v`` receiver is a key/value group: give its label (``L1G1``) or any of its query heads
        (``L1H5``, measured as its group ``L1G1``); pairs naming one group twice are measured once.
    include_logits
        Also measure ``sender -> logits`` for every sender.
    direction, metric
        As in :func:`~circuitry.interventions.activation_patch`.

    Returns
    -------
    PathPatchResult
        One path per (sender, query head) for ``q``, per (sender, key/value head) for ``k`` and ``v``
        (``n_kv_heads`` of them per layer; named ``L{l}G{g}`` with grouped-query attention), and per
        sender for the logits.

    Raises
    ------
    InputError
        A bad direction, kind, sender or receiver (a group label as a ``q`` receiver, a group or head the
        model does not have).

    Examples
    --------
    >>> from circuitry.models import load_model
    >>> from circuitry.prompts import induction_pairs
    >>> model = load_model("zoo:llama-2l-gqa")  # 8 query heads, 2 key/value heads per layer
    >>> data = induction_pairs(4, block_len=8, vocab_size=model.info.d_vocab, seed=0)
    >>> res = path_patch(model, data, senders=["L0H1"], progress=False)
    >>> len(res.paths), res.groups["L1G0"]  # 8 q + 2 k + 2 v + logits
    (13, ['L1H0', 'L1H1', 'L1H2', 'L1H3'])
    >>> res.paths[:5]  # head by head; a group's k and v come with its first query head
    [('L0H1', 'L1H0', 'q'), ('L0H1', 'L1G0', 'k'), ('L0H1', 'L1G0', 'v'), ('L0H1', 'L1H1', 'q'), ('L0H1', 'L1H2', 'q')]
    """
    if direction not in ("denoising", "noising"):
        raise InputError(f"direction={direction!r}; expected 'denoising' or 'noising'")
    bad = [k for k in kinds if k not in ("q", "k", "v")]
    if bad:
        raise InputError(f"kinds={list(kinds)} contains {bad}; expected a subset of ('q', 'k', 'v')")
    L, H, HK = model.info.n_layers, model.info.n_heads, model.info.n_kv_heads
    if senders is None:
        senders = [EMBED] + [head_label(l, h) for l in range(L) for h in range(H)]
    senders = list(senders)
    for s in senders:
        sl, sh = _sender(s)
        if s != EMBED and not (0 <= sl < L and 0 <= sh < H):
            raise InputError(f"sender {s!r} is not a head of {model.model_id} ({L} layers x {H} heads)")
    if receivers is not None:
        receivers = _receiver_units(receivers, L, H, HK, model.model_id)
    metric_fn = get_metric(metric)
    check_task(data, model, metric=metric)
    metric_name = metric if isinstance(metric, str) else getattr(metric, "__name__", "custom")
    clean_ids, corr_ids = data.clean_ids(model.device), data.corrupted_ids(model.device)
    orig_ids, new_ids = (clean_ids, corr_ids) if direction == "noising" else (corr_ids, clean_ids)
    reads = [(site, l) for l in range(L) for site in ("z", "resid_pre", "q", "k", "v")]
    clean, corr = model.run(clean_ids, reads=reads), model.run(corr_ids, reads=reads)
    orig, new = (clean, corr) if direction == "noising" else (corr, clean)
    targets = Targets.of(data, device=model.device, metric=metric_name, clean_logits=clean.logits)
    m_clean, m_corr = metric_fn(clean.logits, targets).cpu(), metric_fn(corr.logits, targets).cpu()
    check_metric_values(m_clean, m_corr, metric_name)
    n, seq = orig_ids.shape
    z_orig = {l: orig[("z", l)] for l in range(L)}
    z_new = {l: new[("z", l)] for l in range(L)}

    def wanted(s):
        """The receivers ``((layer, index), kind)`` of sender ``s``: index = query head for q, key/value
        head for k and v."""
        sl = _sender(s)[0]
        if receivers is not None:
            return [(li, kd) for li, kd in receivers if li[0] > sl]
        # head by head, each head's kinds in order; a key/value group's k and v come with its first query head
        # (without grouped-query attention: q, k, v of every head, the order of every earlier release)
        return [((l, h if kd == "q" else h // (H // HK)), kd) for l in range(sl + 1, L) for h in range(H)
                for kd in kinds if kd == "q" or h % (H // HK) == 0]

    # ---- step 2: one frozen run per sender, stacked; record receiver inputs (and the logits metric)
    recv_layers = sorted({l for s in senders for (l, _), _ in wanted(s)})
    rec_reads = [(kd, l) for l in recv_layers for kd in ("q", "k", "v") if kd in kinds or receivers]
    recorded: dict[str, dict] = {}
    logit_vals: dict[str, torch.Tensor] = {}
    cut, cut_targets = logit_slice(metric_fn, targets)
    per_chunk = max(1, (max_rows or rows_per_pass(model, seq, logits=cut)) // n)
    chunks = [senders[i:i + per_chunk] for i in range(0, len(senders), per_chunk)]
    if progress:
        from tqdm.auto import tqdm

        chunks = tqdm(chunks, desc="path patching: senders", leave=False)
    for chunk in chunks:
        # layers before the earliest sender compute exactly the x_orig run (every head there is frozen to its
        # x_orig output, MLPs see x_orig's inputs): start there from x_orig's cached residual stream
        l0 = min(max(_sender(s)[0], 0) for s in chunk)
        start = (l0, orig[("resid_pre", l0)].repeat(len(chunk), 1, 1)) if l0 > 0 else None
        edits = [e for e in _freeze_edits(model, chunk, n, z_orig, z_new, orig[("resid_pre", 0)],
                                          new[("resid_pre", 0)]) if e.layer >= l0]
        out = model.run(orig_ids.repeat(len(chunk), 1), reads=[r for r in rec_reads if r[1] >= l0], edits=edits,
                        start=start, logits_at=cut)
        vals = metric_fn(out.logits, cut_targets.repeat(len(chunk))).detach().float().cpu().view(len(chunk), n)
        for u, s in enumerate(chunk):
            logit_vals[s] = vals[u]
            recorded[s] = {key: out[key][u * n:(u + 1) * n].detach() for key in rec_reads if key[1] >= l0}

    # ---- step 3: patch each receiver input on x_orig
    units = [(s, l, h, kd) for s in senders for (l, h), kd in wanted(s)]

    def make_edits(chunk, n_prompts):
        rows = len(chunk) * n_prompts
        # the pass starts at its earliest receiver's layer from x_orig's stream, so every row's q, k and v
        # there are x_orig's: given whole, the adapter skips their projections
        l0 = min(u[1] for u in chunk)
        given = [Edit(kd, l0, orig[(kd, l0)].repeat(len(chunk), 1, 1, 1)) for kd in ("q", "k", "v")]
        vals_masks: dict[tuple[str, int], tuple[torch.Tensor, torch.Tensor]] = {}
        for u, (s, l, h, kd) in enumerate(chunk):
            key = (kd, l)
            if key not in vals_masks:
                shape = model.site_shape(kd, rows, seq)
                vals_masks[key] = (torch.zeros(shape, dtype=model.dtype, device=model.device),
                                   row_mask(model, kd, rows, seq))
            v, m = vals_masks[key]
            r = slice(u * n_prompts, (u + 1) * n_prompts)  # h: the query head (q) or the key/value head (k, v)
            v[r, :, h] = recorded[s][key][:, :, h]
            m[r, :, h] = True
        return given + [Edit(kd, l, v, m) for (kd, l), (v, m) in vals_masks.items()]

    # receivers sorted by layer, so that each pass starts at its earliest receiver's layer from x_orig's cache
    order = sorted(range(len(units)), key=lambda i: units[i][1])
    sorted_vals = run_units(model, orig_ids, [units[i] for i in order], make_edits, metric_fn, targets,
                            max_rows=max_rows, progress="path patching: receivers" if progress else False,
                            first_layer=lambda u: u[1], resid_pre={l: orig[("resid_pre", l)] for l in range(L)})
    values = torch.empty_like(sorted_vals)
    values[order] = sorted_vals
    paths = [(s, head_label(l, h) if kd == "q" else kv_label(l, h, H, HK), kd) for s, l, h, kd in units]
    groups = {r: group_heads(r, H // HK) for _, r, kd in paths if kd != "q" and is_group(r)}
    per_prompt = [values]
    if include_logits:
        paths += [(s, LOGITS, "out") for s in senders]
        per_prompt.append(torch.stack([logit_vals[s] for s in senders]))
    allv = torch.cat(per_prompt)
    mean = allv.mean(1)
    norm = normalized_effect(mean, m_clean.mean(), m_corr.mean())
    return PathPatchResult(
        direction=direction, metric=metric_name, paths=paths, effect=norm.tolist(), metric_mean=mean.tolist(),
        per_prompt=NamedArray.from_array(allv, ("path", "prompt")), clean=m_clean.tolist(),
        corrupted=m_corr.tolist(), n_prompts=n, groups=groups,
        provenance=make_provenance(model, dataset=data, seed=seed if seed is not None else data.seed,
                                   task=data.task),
    )
