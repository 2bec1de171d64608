"""Circuit search: score every edge with one method and mark the kept circuit.

:func:`score_edges` returns an :class:`~circuitry.discovery.results.EdgeScores`; the ``discover_*``
functions return the same as a ``networkx.DiGraph`` in circuitry's graph schema
(:meth:`EdgeScores.to_graph`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import networkx as nx
import numpy as np
import torch

from circuitry.discovery.ablations import Ablation, ablated_run, check_ablation
from circuitry.discovery.edges import EdgeSet, edge_set
from circuitry.discovery.results import EdgeScores, Method, check_method
from circuitry.discovery.runs import RunCache, cache_run
from circuitry.errors import InputError, bad_value
from circuitry.metrics import Targets, get_metric
from circuitry.models import ModelAdapter
from circuitry.prompts import PairDataset, check_task
from circuitry.provenance import Frozen, NamedArray, make_provenance, sha256_json

DEFAULT_TAU = 0.02


@dataclass
class Prepared:
    """Everything a method needs: the edges, the token ids, the metric and both runs' sender outputs."""

    edges: EdgeSet
    ids: torch.Tensor
    corrupted_ids: torch.Tensor
    metric: Callable
    metric_name: str
    targets: Targets
    clean: RunCache
    corr: RunCache
    #: what a patched edge is fed (:mod:`circuitry.discovery.ablations`); ``corr`` holds the ablated sender
    #: outputs and, for the logits, the run with every edge patched (the corrupted run for "counterfactual")
    ablation: str = "counterfactual"
    seed: int = 0

    def metric_of(self, run: RunCache) -> torch.Tensor:
        return self.metric(run.logits, self.targets).detach().float().cpu()


def prepare(model: ModelAdapter, data: PairDataset, *, metric: str | Callable | None = None,
            default_metric: str = "logit_diff", ablation: Ablation = "counterfactual", seed: int = 0) -> Prepared:
    """Check the prompts and metric, then cache the clean and corrupted runs (two forward passes).

    ``ablation``: what a patched edge is fed (:mod:`circuitry.discovery.ablations`); ``seed`` draws the
    ``"resample"`` sources (stream ``"discovery/resample"``)."""
    check_ablation(ablation)
    if not isinstance(data, PairDataset):
        raise bad_value("data", type(data).__name__, "a circuitry.prompts.PairDataset",
                        "build one with circuitry.prompts.make_task")
    metric = metric or data.metric or default_metric
    for i, p in enumerate(data.pairs):
        if len(p.clean) != len(p.corrupted):
            raise InputError(f"data pair {i}: clean and corrupted prompts tokenize to {len(p.clean)} and "
                             f"{len(p.corrupted)} tokens; edge patching needs equal lengths. Fix: corrupt with a "
                             "prompt of the same template (same token count)")
    check_task(data, model, metric=metric)
    fn = get_metric(metric)
    name = metric if isinstance(metric, str) else getattr(metric, "__name__", "custom")
    edges = edge_set(model)
    ids, cids = data.clean_ids(model.device), data.corrupted_ids(model.device)
    clean, corr = cache_run(model, edges, ids), cache_run(model, edges, cids)
    if ablation != "counterfactual":
        corr = ablated_run(model, ids, clean, corr, ablation, seed=seed,
                           mask=data.mask(model.device) if data.padded else None)
    targets = Targets.of(data, device=model.device, metric=name, clean_logits=clean.logits)
    return Prepared(edges, ids, cids, fn, name, targets, clean, corr, ablation, seed)


def score_edges(model: ModelAdapter, data: PairDataset, *, method: Method, metric: str | Callable | None = None,
                steps: int = 5, tau: float = DEFAULT_TAU, threshold: float = 0.05, alpha: float = 0.01,
                checkpoint: str | Path | None = None, max_rows: int | None = None, progress: bool = True,
                seed: int | None = None, prepared: Prepared | None = None,
                ablation: Ablation | None = None, greedy_edges: int | None = None) -> EdgeScores:
    """Score every edge of ``model`` on the prompt pairs ``data`` with one method.

    Parameters
    ----------
    model
        A loaded model (:func:`circuitry.models.load_model`).
    data
        Clean/corrupted prompt pairs of equal token length (:func:`circuitry.prompts.make_task`).
    method : {"exact", "eap", "eap-ig", "acdc"}
        See :data:`~circuitry.discovery.results.Method` and ``docs/discovery.md``.
    metric
        ``"logit_diff"``, ``"answer_prob"``, ``"loss"``, ``"kl"`` or a callable; default: the task's
        metric for the scoring methods, ``"kl"`` for ACDC (Conmy et al.'s choice).
    steps
        EAP-IG interpolation steps (Hanna et al. 2024 use 5 or more).
    tau
        ACDC threshold, in metric units: an edge whose removal moves the metric by less stays removed.
    threshold, alpha
        For the scoring methods, the kept circuit is decided by :func:`circuitry.stats.decide.decide_sites`:
        edges whose share of the gap is large enough, ``|score| >= threshold * |m(clean) - m(corrupted)|``
        (practical significance), *and* significant, a Benjamini-Hochberg-adjusted p <= ``alpha`` of Hall's
        skewness-corrected t-test of the per-prompt scores against 0 (two-sided; null: the edge's mean score
        is 0; floor 0), so the drawn circuit holds only what the statistics support. ``circuitry analyze``
        decides a path by the same rule.
    checkpoint
        ACDC: a JSON file recording progress after every edge; a killed run resumes from it.
    max_rows
        Batch rows per forward pass (default: :func:`circuitry.interventions.batching.rows_per_pass`).
    progress
        tqdm progress bars on every sweep.
    seed
        Recorded in the provenance; with ``ablation="resample"`` it also draws the source prompts (stream
        ``"discovery/resample"``; the methods themselves draw nothing at random).
    prepared
        The output of :func:`prepare` for these arguments, to share the cached runs between methods.
    ablation : {"counterfactual", "zero", "mean", "mean-positional", "resample"}
        What a patched edge is fed (:mod:`circuitry.discovery.ablations`; default ``prepared``'s, else
        ``"counterfactual"``, the corrupted prompt's activation). Recorded in ``params`` and the provenance.
    greedy_edges
        ``method="greedy"``: the search's largest circuit, pruned from EAP-IG's top ``greedy_edges`` edges
        (default :func:`circuitry.discovery.greedy.default_search_size`: every edge up to 4,096 edges, else
        the largest search of at most 120 patched circuits). Recorded as ``params["greedy_edges"]``.

    Returns
    -------
    EdgeScores

    Raises
    ------
    InputError
        An unknown method, a bad option, prompts of unequal length or a metric the task cannot feed.

    Examples
    --------
    >>> from circuitry.models import load_model
    >>> from circuitry.prompts import make_task
    >>> m = load_model("zoo:attn-only-2l")
    >>> res = score_edges(m, make_task("induction", m, n_prompts=8), method="eap", progress=False)
    >>> len(res.edges)
    257
    """
    check_method(method)
    if ablation is not None:
        check_ablation(ablation)
    if prepared is not None and ablation is not None and prepared.ablation != ablation:
        raise bad_value("ablation", ablation, f"the ablation of `prepared` ({prepared.ablation!r})",
                        "prepare the runs with prepare(..., ablation=...) or drop one of the two")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise bad_value("steps", steps, "an integer >= 1", "use steps=5")
    if not isinstance(tau, (int, float)) or not math.isfinite(tau) or tau < 0:
        raise bad_value("tau", tau, "a finite number >= 0", "use tau=0.02")
    if not isinstance(threshold, (int, float)) or not 0 <= threshold:
        raise bad_value("threshold", threshold, "a number >= 0", "use threshold=0.05")
    if not isinstance(alpha, (int, float)) or not 0 < alpha < 1:
        raise bad_value("alpha", alpha, "a number in (0, 1)", "use alpha=0.01")
    pr = prepared or prepare(model, data, metric=metric, default_metric="kl" if method == "acdc" else "logit_diff",
                             ablation=ablation or "counterfactual", seed=seed if seed is not None else data.seed)
    if method == "greedy":  # forward selection by joint faithfulness, warm-started from EAP-IG (greedy.py)
        from circuitry.discovery.greedy import greedy_scores

        return greedy_scores(model, data, prepared=pr, steps=steps, threshold=threshold, max_rows=max_rows,
                             progress=progress, seed=seed, max_size=greedy_edges)
    m_clean, m_corr = pr.metric_of(pr.clean), pr.metric_of(pr.corr)
    params: dict = {"ablation": pr.ablation}
    if pr.ablation == "resample":
        params["resample_seed"] = pr.seed
    pvalue = pvalue_adjusted = None
    order: list[str] = []
    per_prompt = None
    ci: tuple[list | None, list | None] = (None, None)
    decision = ""
    es = pr.edges
    if method == "acdc":
        from circuitry.discovery.acdc import run_acdc

        ident = {"model": model.weights_sha256, "data": data.sha256(), "metric": pr.metric_name,
                 "tau": float(tau), "edges": len(es)}
        if pr.ablation != "counterfactual":  # the default's run id stays that of earlier checkpoints
            ident.update(ablation=pr.ablation, seed=pr.seed)
        run_id = sha256_json(ident)
        keep, visit, delta, final = run_acdc(model, es, pr.ids, pr.clean, pr.corr, pr.metric, pr.targets, tau=tau,
                                             checkpoint=checkpoint, run_id=run_id, max_rows=max_rows,
                                             progress=progress)
        score = delta
        order = [es.names[e] for e in visit]
        params.update(tau=float(tau), final_metric=final, rule="remove if |m(without edge) - m(circuit)| < tau")
    else:
        if method == "exact":
            from circuitry.discovery.exact import exact_per_prompt

            pp = exact_per_prompt(model, es, pr.ids, pr.clean, pr.corr, pr.metric, pr.targets, max_rows=max_rows,
                                  progress=progress)
        else:
            from circuitry.discovery.attribution import attribution_per_prompt

            pp = attribution_per_prompt(model, es, pr.ids, pr.clean, pr.corr, pr.metric, pr.targets,
                                        steps=steps if method == "eap-ig" else None, progress=progress)
            if method == "eap-ig":
                params["steps"] = steps
        score = pp.mean(1).numpy()
        per_prompt = NamedArray.from_array(pp, ("edge", "prompt"))
        from circuitry.stats.decide import decide_sites

        fam = decide_sites(-pp.numpy().astype(float), (m_clean - m_corr).numpy().astype(float), labels=es.names,
                           level="edge", alpha=alpha, min_share=threshold)
        pvalue = [d.pvalue for d in fam.sites]
        pvalue_adjusted = [d.pvalue_adjusted for d in fam.sites]
        ci = ([d.ci_low for d in fam.sites], [d.ci_high for d in fam.sites])
        decision = fam.describe()
        keep = np.array([d.member for d in fam.sites], dtype=bool)
        params["threshold"], params["alpha"] = float(threshold), float(alpha)
    info = model.info
    return EdgeScores(
        method=method, metric=pr.metric_name, edges=list(es.names), mib_edges=list(es.mib_names),
        score=[float(x) for x in score], per_prompt=per_prompt, in_circuit=[bool(x) for x in keep],
        pvalue=pvalue, pvalue_adjusted=pvalue_adjusted, ci_low=ci[0], ci_high=ci[1], decision=decision,
        clean=m_clean.tolist(), corrupted=m_corr.tolist(), order=order, params=params,
        shape={"n_layers": info.n_layers, "n_heads": info.n_heads, "n_kv_heads": info.n_kv_heads,
               "has_mlp": int(info.has_mlp), "parallel_residual": int(info.parallel_residual),
               "d_model": info.d_model},
        provenance=make_provenance(model, dataset=data, seed=seed if seed is not None else data.seed,
                                   task=data.task, method=method, ablation=pr.ablation),
    )


def discover_exact(model: ModelAdapter, data: PairDataset, **options) -> nx.DiGraph:
    """Exact edge patching as a composition graph (options as in :func:`score_edges`)."""
    return score_edges(model, data, method="exact", **options).to_graph()


def discover_eap(model: ModelAdapter, data: PairDataset, **options) -> nx.DiGraph:
    """EAP (Syed et al. 2023) as a composition graph (options as in :func:`score_edges`)."""
    return score_edges(model, data, method="eap", **options).to_graph()


def discover_eap_ig(model: ModelAdapter, data: PairDataset, **options) -> nx.DiGraph:
    """EAP-IG (Hanna et al. 2024) as a composition graph (options as in :func:`score_edges`)."""
    return score_edges(model, data, method="eap-ig", **options).to_graph()


def discover_acdc(model: ModelAdapter, data: PairDataset, **options) -> nx.DiGraph:
    """ACDC (Conmy et al. 2023) as a composition graph, the kept circuit marked ``in_circuit``
    (options as in :func:`score_edges`)."""
    return score_edges(model, data, method="acdc", **options).to_graph()


def roc_auc(scores: EdgeScores | np.ndarray, reference: np.ndarray) -> float:
    """ROC AUC of the ranking by ``|score|`` against reference labels (``reference [E]`` bool): the
    probability that a reference edge outranks a non-reference edge, ties counting half
    (Mann-Whitney U / (n_pos n_neg)).

    Examples
    --------
    >>> roc_auc(np.array([0.9, -0.8, 0.1, 0.0]), np.array([True, True, False, False]))
    1.0
    """
    from circuitry.discovery.reference import auc_of, check_labels

    s = np.abs(np.asarray(scores.score if isinstance(scores, EdgeScores) else scores, dtype=float))
    return float(auc_of(s, check_labels(reference, s.size)))


class TauSweep(Frozen):
    """ACDC over a sweep of thresholds against a reference circuit (Conmy et al. 2023's evaluation):
    per ``tau`` the number of edges kept and the true/false positive rates; ``auc`` is the area under the
    ROC curve through these points, ``(0, 0)`` and ``(1, 1)`` (trapezoid rule)."""

    taus: list[float]
    n_kept: list[int]
    tpr: list[float]
    fpr: list[float]
    auc: float


def acdc_tau_sweep(model: ModelAdapter, data: PairDataset, reference: np.ndarray, *, taus: Sequence[float],
                   metric: str | Callable | None = None, max_rows: int | None = None, progress: bool = True,
                   prepared: Prepared | None = None, ablation: Ablation = "counterfactual", seed: int = 0) -> TauSweep:
    """Run ACDC at every ``tau`` and score the kept circuits against ``reference`` (``[E]`` bool);
    ``ablation`` and ``seed`` as in :func:`prepare` (ignored with ``prepared``, which carries its own).

    Examples
    --------
    >>> from circuitry.models import load_model
    >>> from circuitry.prompts import make_task
    >>> from circuitry.discovery import edge_set, induction_reference
    >>> m = load_model("zoo:attn-only-2l"); d = make_task("induction", m, n_prompts=4)
    >>> ref = edge_set(m).mask(induction_reference("L0H3", ["L1H0", "L1H2", "L1H5", "L1H7"]))
    >>> acdc_tau_sweep(m, d, ref, taus=[0.0, 1e9], progress=False).auc
    0.5
    """
    ts = [float(t) for t in taus]
    if not ts or any(not math.isfinite(t) or t < 0 for t in ts):
        raise bad_value("taus", taus, "one or more finite thresholds >= 0", "e.g. taus=[0.005, 0.01, 0.02, 0.05]")
    pr = prepared or prepare(model, data, metric=metric, default_metric="kl", ablation=ablation, seed=seed)
    ref = np.asarray(reference, dtype=bool)
    if ref.shape != (len(pr.edges),) or ref.all() or not ref.any():
        raise bad_value("reference", f"{int(ref.sum())} of {ref.size}", f"a boolean mask over the {len(pr.edges)} "
                        "edges with both reference and other edges", "build it with EdgeSet.mask")
    it = ts
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(ts, desc="ACDC tau sweep", leave=False)
    kept = [np.asarray(score_edges(model, data, method="acdc", tau=t, prepared=pr, max_rows=max_rows,
                                   progress=False).in_circuit) for t in it]
    tpr = [float((k & ref).sum() / ref.sum()) for k in kept]
    fpr = [float((k & ~ref).sum() / (~ref).sum()) for k in kept]
    pts = sorted(set(zip(fpr, tpr)) | {(0.0, 0.0), (1.0, 1.0)})
    auc = float(np.trapezoid([p[1] for p in pts], [p[0] for p in pts]))
    return TauSweep(taus=ts, n_kept=[int(k.sum()) for k in kept], tpr=tpr, fpr=fpr, auc=auc)
