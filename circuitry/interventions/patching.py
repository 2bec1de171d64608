"""Activation patching between clean and corrupted prompts (Zhang & Nanda 2024).

* **denoising**: run the *corrupted* prompts and patch in one site's *clean* activation; a large
  effect means the site is *sufficient* to restore the behaviour.
* **noising**: run the *clean* prompts and patch in the *corrupted* activation; a large effect means
  the site is *necessary*.

Every effect is reported raw (the metric per prompt) and normalized,
``(M_patched - M_corrupted) / (M_clean - M_corrupted)`` on the means: 0 = like the corrupted run,
1 = like the clean run, in both directions. So under noising, a necessary head drops from 1 toward 0;
under denoising a sufficient head rises from 0 toward 1.
"""

from __future__ import annotations

from typing import Callable, Literal, Sequence

import torch

from circuitry.errors import InputError
from circuitry.interventions.batching import row_mask, run_units
from circuitry.interventions.results import PatchResult
from circuitry.metrics import Targets, check_metric_values, get_metric, normalized_effect
from circuitry.models import Edit, ModelAdapter
from circuitry.models.families import HEAD_SITES, SITES
from circuitry.prompts import PairDataset, check_task
from circuitry.provenance import NamedArray, make_provenance

Direction = Literal["denoising", "noising"]
PATCH_SITES = tuple(s for s in SITES if s != "logits")


def _units(model: ModelAdapter, site: str, layers: Sequence[int], per_position: bool, seq: int):
    n_heads = model.info.n_kv_heads if site in ("k", "v") else model.info.n_heads
    heads = range(n_heads) if site in HEAD_SITES else [None]
    positions = range(seq) if per_position else [None]
    return [(l, h, p) for l in layers for h in heads for p in positions]


def activation_patch(model: ModelAdapter, data: PairDataset, *, site: str, direction: Direction = "denoising",
                     metric: str | Callable = "logit_diff", layers: Sequence[int] | None = None,
                     per_position: bool = False, max_rows: int | None = None,
                     progress: bool = True, seed: int | None = None, skip_layers: bool = True) -> PatchResult:
    """Patch ``site`` at every layer (and head, and position if ``per_position``), one at a time.

    Parameters
    ----------
    model
        A loaded :class:`~circuitry.models.ModelAdapter`.
    data
        Clean/corrupted pairs with metric targets (e.g. :func:`circuitry.prompts.induction_pairs`).
    site
        A canonical site (``"z"``/``"head_out"`` per head, ``"q"``, ``"k"``, ``"v"``, ``"pattern"``,
        ``"resid_pre"``, ``"attn_out"``, ``"mlp_out"``, ...).
    direction
        ``"denoising"`` (corrupted run, clean activation in) or ``"noising"`` (clean run, corrupted in).
    metric
        ``"logit_diff"``, ``"answer_prob"``, ``"loss"``, ``"kl"`` or a callable (see :mod:`circuitry.metrics`).
    per_position
        Patch each position separately (an extra ``position`` axis) instead of all positions at once.
    max_rows
        Rows per forward pass; patches are stacked along the batch up to this budget.
    skip_layers
        Start each pass at its earliest patched layer from the unpatched run's cached residual stream
        instead of recomputing the layers before it (identical results; tested).

    Returns
    -------
    PatchResult
        Named axes ``(layer, head[, position])`` (or ``(layer[, position])``), per-prompt values,
        clean and corrupted baselines, provenance.
    """
    if site not in PATCH_SITES:
        import difflib

        near = difflib.get_close_matches(str(site), PATCH_SITES, n=1)
        raise InputError(f"site={site!r} is not patchable; expected one of {PATCH_SITES}."
                         + (f" Did you mean {near[0]!r}?" if near else ""))
    if direction not in ("denoising", "noising"):
        raise InputError(f"direction={direction!r}; expected 'denoising' or 'noising'")
    layers = list(range(model.info.n_layers)) if layers is None else list(layers)
    model.validate([(site, l) for l in layers], [])
    metric_fn = get_metric(metric)
    check_task(data, model, metric=metric)
    metric_name = metric if isinstance(metric, str) else getattr(metric, "__name__", "custom")
    clean_ids, corr_ids = data.clean_ids(model.device), data.corrupted_ids(model.device)
    reads = [(site, l) for l in layers] + [("resid_pre", l) for l in range(model.info.n_layers)]
    clean = model.run(clean_ids, reads=reads)
    corr = model.run(corr_ids, reads=reads)
    targets = Targets.of(data, device=model.device, metric=metric_name, clean_logits=clean.logits)
    m_clean = metric_fn(clean.logits, targets).float().cpu()
    m_corr = metric_fn(corr.logits, targets).float().cpu()
    check_metric_values(m_clean, m_corr, metric_name)
    base_ids, src = (corr_ids, clean) if direction == "denoising" else (clean_ids, corr)
    n, seq = base_ids.shape
    units = _units(model, site, layers, per_position, seq)

    def make_edits(chunk, n_prompts):
        by_layer: dict[int, list[tuple[int, int | None, int | None]]] = {}
        for u, (l, h, p) in enumerate(chunk):
            by_layer.setdefault(l, []).append((u, h, p))
        edits = []
        for l, units_l in by_layer.items():  # each layer's edit touches only the rows patched there
            k = len(units_l)
            m = row_mask(model, site, k * n_prompts, seq)
            for i, (_, h, p) in enumerate(units_l):
                r = slice(i * n_prompts, (i + 1) * n_prompts)
                ps = slice(None) if p is None else p
                if site == "pattern":
                    m[r, h, ps] = True
                elif h is None:
                    m[r, ps] = True
                else:
                    m[r, ps, h] = True
            rows = torch.cat([torch.arange(u * n_prompts, (u + 1) * n_prompts) for u, _, _ in units_l])
            v = src[(site, l)]
            edits.append(Edit(site, l, v.repeat(k, *[1] * (v.ndim - 1)), m, rows=rows.to(model.device)))
        return edits

    base = corr if direction == "denoising" else clean
    values = run_units(model, base_ids, units, make_edits, metric_fn, targets, max_rows=max_rows,
                       progress=f"{direction} {site}" if progress else False,
                       first_layer=(lambda u: u[0]) if skip_layers and site != "resid_pre" else None,
                       resid_pre={l: base[("resid_pre", l)] for l in range(model.info.n_layers)})
    return _result(model, data, site, direction, metric_name, layers, per_position, seq, units, values,
                   m_clean, m_corr, seed)


def _result(model, data, site, direction, metric_name, layers, per_position, seq, units, values, m_clean,
            m_corr, seed) -> PatchResult:
    has_head = site in HEAD_SITES
    n_heads = model.info.n_kv_heads if site in ("k", "v") else model.info.n_heads
    shape = [len(layers)] + ([n_heads] if has_head else []) + ([seq] if per_position else [])
    axes = ["layer"] + (["head"] if has_head else []) + (["position"] if per_position else [])
    per_prompt = values.view(*shape, values.shape[-1])
    mean = per_prompt.mean(-1)
    norm = normalized_effect(mean, m_clean.mean(), m_corr.mean())
    coords = {"layer": list(layers)}
    return PatchResult(
        site=site, direction=direction, metric=metric_name,
        effect=NamedArray.from_array(norm, axes, coords), metric_mean=NamedArray.from_array(mean, axes, coords),
        per_prompt=NamedArray.from_array(per_prompt, axes + ["prompt"], coords),
        clean=m_clean.tolist(), corrupted=m_corr.tolist(), n_prompts=len(data),
        provenance=make_provenance(model, dataset=data, seed=seed if seed is not None else data.seed,
                                   task=data.task),
    )
