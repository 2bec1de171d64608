"""A reference circuit, and how well each method's edge ranking recovers it (Conmy et al. 2023's ROC evaluation).

:func:`load_reference` reads a reference circuit from any graph circuitry writes (GraphML, GEXF, node-link
JSON: an edge kind is in the reference when the graph marks it ``in_circuit``, or every kind when the graph
has no such mark), from an MIB / EAP-IG graph JSON (the edges with ``in_graph``), or from a zoo model's shipped
ground truth (``zoo:NAME`` or ``zoo:NAME:KIND`` for the tracr models,
:mod:`circuitry.zoo.tracr_models`). Every edge is checked against the model's edge set before
any work: an edge the model does not have is an :class:`~circuitry.errors.InputError` naming the fix.

:func:`compare_to_reference` gives one method's ROC AUC (the probability that a reference edge outranks a
non-reference edge, ties counting half: Mann-Whitney's U / (n_pos n_neg)) and the precision and recall of its
kept circuit. The AUC's interval resamples prompts with replacement, re-averages the per-prompt scores and
recomputes the AUC (percentile bootstrap, :func:`scipy.stats.bootstrap`, stream ``"reference/bootstrap"``):
it covers this ranking's AUC over prompt samples. ACDC has no per-prompt scores: its AUC (by the metric
change each edge made when tested) has no interval.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from circuitry.discovery.edges import EdgeSet
from circuitry.errors import InputError, bad_value
from circuitry.provenance import Frozen
from circuitry.stats import ConfidenceInterval


class ReferenceCircuit(Frozen):
    """A reference circuit over one model's edges: ``edges`` in circuitry's names, where it came from."""

    source: str
    edges: list[str]
    total_edges: int

    def mask(self, edges: EdgeSet) -> np.ndarray:
        return edges.mask(self.edges)


class ReferenceComparison(Frozen):
    """One method's ranking against a reference circuit.

    ``auc``: ROC AUC of the ranking (``top_k``: by ``|score|`` or by signed importance); ``auc_ci``: its
    percentile bootstrap interval over prompts (``None`` without per-prompt scores, ``reason`` says why);
    ``precision``/``recall``: of the method's kept circuit (``n_kept`` edges) against the ``n_reference``
    reference edges (precision ``None`` for an empty circuit)."""

    method: str
    ablation: str
    top_k: str
    auc: float
    auc_ci: Optional[ConfidenceInterval] = None
    n_resamples: int = 0
    confidence_level: float = 0.95
    precision: Optional[float] = None
    recall: float
    n_kept: int
    n_reference: int
    reason: Optional[str] = None

    def summary(self) -> str:
        ci = f" [{self.auc_ci.low:.3f}, {self.auc_ci.high:.3f}]" if self.auc_ci is not None else ""
        pr = "n/a" if self.precision is None else f"{self.precision:.2f}"
        return (f"{self.method} ({self.ablation}): ROC AUC {self.auc:.3f}{ci} ({self.top_k} ranking); kept circuit "
                f"{self.n_kept} edges, precision {pr}, recall {self.recall:.2f} of {self.n_reference}")


def auc_of(values: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """ROC AUC of ``values [..., E]`` (larger = more likely a reference edge; NaN lowest) against ``labels [E]``,
    ties counting half, along the last axis."""
    from scipy.stats import rankdata

    lab = np.asarray(labels, dtype=bool)
    r = rankdata(np.nan_to_num(np.asarray(values, dtype=float), nan=-np.inf), axis=-1)
    npos, nneg = int(lab.sum()), int((~lab).sum())
    return (r[..., lab].sum(-1) - npos * (npos + 1) / 2) / (npos * nneg)


def check_labels(reference: np.ndarray, n_edges: int) -> np.ndarray:
    lab = np.asarray(reference, dtype=bool)
    if lab.shape != (n_edges,) or lab.all() or not lab.any():
        raise bad_value("reference", f"{int(lab.sum())} of {lab.size} edges", f"a boolean mask over the {n_edges} "
                        "edges with both reference and other edges", "build it with EdgeSet.mask")
    return lab


def compare_to_reference(scores, reference: np.ndarray, *, top_k: str = "absolute", n_resamples: int = 1000,
                         confidence_level: float = 0.95, rng: int = 0) -> ReferenceComparison:
    """ROC AUC (with a bootstrap interval over prompts) and the kept circuit's precision and recall of one
    :class:`~circuitry.discovery.results.EdgeScores` against ``reference [E]`` (bool).

    Examples
    --------
    >>> from circuitry.models import load_model
    >>> from circuitry.prompts import make_task
    >>> from circuitry.discovery import score_edges, edge_set, induction_reference
    >>> m = load_model("zoo:attn-only-2l"); d = make_task("induction", m, n_prompts=8)
    >>> ref = edge_set(m).mask(induction_reference("L0H3", ["L1H0", "L1H2", "L1H5", "L1H7"]))
    >>> c = compare_to_reference(score_edges(m, d, method="exact", progress=False), ref, n_resamples=200)
    >>> c.auc > 0.9 and c.auc_ci.low <= c.auc <= c.auc_ci.high
    True
    """
    from scipy import stats

    from circuitry.discovery.faithfulness_tests import procedure_rng

    if top_k not in ("signed", "absolute"):
        raise bad_value("top_k", top_k, "'signed' or 'absolute'", "e.g. top_k='absolute'")
    lab = check_labels(reference, len(scores.score))
    absolute = top_k == "absolute"
    sign = scores.importance_sign  # fixed by the full sample's gap

    def key(s: np.ndarray) -> np.ndarray:
        return np.abs(s) if absolute else sign * s

    auc = float(auc_of(key(np.asarray(scores.score, dtype=float)), lab))
    kept = np.asarray(scores.in_circuit, dtype=bool)
    tp = int((kept & lab).sum())
    common = dict(method=scores.method, ablation=str(scores.params.get("ablation", "unknown")), top_k=top_k, auc=auc,
                  precision=tp / int(kept.sum()) if kept.any() else None, recall=tp / int(lab.sum()),
                  n_kept=int(kept.sum()), n_reference=int(lab.sum()), confidence_level=confidence_level)
    if scores.per_prompt is None:
        return ReferenceComparison(**common, reason="no per-prompt scores (ACDC's depend on the whole sweep): "
                                                    "no interval over prompts")
    pp = np.asarray(scores.per_prompt.numpy(), dtype=float)  # [E, n]
    n = pp.shape[1]
    if n < 2:
        return ReferenceComparison(**common, reason="one prompt: no interval over prompts")

    def stat(idx, axis=-1):
        idx = np.atleast_2d(np.asarray(idx, dtype=int))
        means = pp[:, idx].mean(-1).T  # [B, E]
        return auc_of(key(means), lab)

    bs = stats.bootstrap((np.arange(n),), stat, vectorized=True, n_resamples=n_resamples,
                         confidence_level=confidence_level, method="percentile",
                         rng=procedure_rng(rng, "reference/bootstrap"))
    ci = ConfidenceInterval(low=float(bs.confidence_interval.low), high=float(bs.confidence_interval.high))
    return ReferenceComparison(**common, auc_ci=ci, n_resamples=n_resamples)


# ------------------------------------------------------------------------------------------------ reading
def _foreign(where: str, name: str, edges: EdgeSet) -> InputError:
    return InputError(f"reference {where}: edge {name!r} is not an edge of this model ({edges.n_layers} layers x "
                      f"{edges.n_heads} heads{', MLPs' if edges.has_mlp else ', no MLPs'}; {len(edges)} edges, e.g. "
                      f"{edges.names[-1]!r}): the reference was made for another model, or names a node this model "
                      "lacks. Fix: pass the reference circuit of this model (--model), in circuitry's node names "
                      "(L0H3, embed, MLP1, logits) or MIB's (a0.h3, input, m1, logits)")


def _graph_edges(G, where: str) -> list[str]:
    from circuitry.graph.build import edge_kinds
    from circuitry.graph.schema import kind_attr

    marked = any(kind_attr("in_circuit", k) in d for _, _, d in G.edges(data=True) for k in ("q", "k", "v", "out"))
    names = []
    for u, v, d in G.edges(data=True):
        kinds = edge_kinds(G, u, v) or ["out"]
        for k in kinds:
            flag = d.get(kind_attr("in_circuit", k))
            if marked and not (flag is not None and float(flag) > 0):
                continue
            names.append(f"{u}->{v}<{k}>" if k != "out" else f"{u}->{v}")
    if not names:
        raise InputError(f"reference {where}: the graph has no reference edges (no edge marked in_circuit). Fix: "
                         "pass a graph whose edges are the reference circuit")
    return names


def _zoo_reference(spec: str, ablation: str) -> tuple[list[str], str]:
    """``NAME`` or ``NAME:KIND`` of a tracr zoo model: its ground truth
    (:func:`circuitry.zoo.tracr_models.ground_truth`); the default kind is the one the ablation can see
    ("counterfactual" for counterfactual patching, "reads" otherwise)."""
    name, _, kind = spec.partition(":")
    try:
        from circuitry.zoo.tracr_models import TRACR_MODELS, ground_truth
    except ImportError:  # pragma: no cover - a zoo without tracr models
        TRACR_MODELS, ground_truth = (), None  # noqa: N806
    if name not in TRACR_MODELS:
        raise InputError(f"reference zoo:{spec}: only the tracr models ship a ground-truth circuit "
                         f"({', '.join(TRACR_MODELS)}). Fix: pass zoo:tracr-NAME[:counterfactual|reads|acdc], or a "
                         "graph file (e.g. the induction circuit from circuitry.discovery.induction_reference, "
                         "written with circuitry.graph)")
    kind = kind or ("counterfactual" if ablation == "counterfactual" else "reads")
    if kind not in ("counterfactual", "reads", "acdc"):
        raise bad_value("reference", f"zoo:{spec}", "zoo:NAME or zoo:NAME:KIND with KIND counterfactual, reads or acdc",
                        f"e.g. zoo:{name}:reads")
    return list(ground_truth(name, kind=kind)), f"zoo:{name}:{kind}"


def load_reference(source: str | Path, edges: EdgeSet, *, ablation: str = "counterfactual") -> ReferenceCircuit:
    """Read a reference circuit (see the module docstring for the formats) and check every edge against
    ``edges`` (a model's :class:`EdgeSet`) before any work. ``zoo:NAME[:KIND]``: a tracr model's ground truth,
    by default the kind ``ablation`` can see ("counterfactual" for counterfactual patching, else "reads")."""
    from circuitry.discovery.mib import is_mib_json, mib_aliases

    src = str(source)
    if src.startswith("zoo:"):
        names, src = _zoo_reference(src[4:], ablation)
    else:
        path = Path(src)
        if not path.is_file():
            raise bad_value("reference", src, "an existing graph file (.graphml, .gexf, .json) or zoo:NAME",
                            "check the path")
        suffix = path.suffix.lower()
        if suffix == ".graphml":
            from circuitry.graph import read_graphml

            names = _graph_edges(read_graphml(path), src)
        elif suffix == ".gexf":
            from circuitry.graph import read_gexf

            names = _graph_edges(read_gexf(path), src)
        elif suffix == ".json":
            try:
                data = json.loads(path.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise InputError(f"reference {src}: not JSON ({exc}). Fix: pass a node-link or MIB graph "
                                 "JSON") from None
            if is_mib_json(data):
                alias = mib_aliases(edges)
                names = []
                for nm, e in data["edges"].items():
                    if not (isinstance(e, dict) and e.get("in_graph")):
                        continue
                    if nm not in alias:
                        raise _foreign(src, nm, edges)
                    names.append(edges.names[alias[nm]])
                if not names:
                    raise InputError(f"reference {src}: no edge has in_graph true. Fix: mark the reference edges")
            else:
                from circuitry.graph import read_node_link_json

                names = _graph_edges(read_node_link_json(path), src)
        else:
            raise bad_value("reference", src, "a .graphml, .gexf or .json graph file, or zoo:NAME",
                            "export the circuit with circuitry.graph or EAP-IG's Graph.to_json")
    for nm in names:
        try:
            edges.lookup([nm])
        except InputError:
            raise _foreign(src, nm, edges) from None
    uniq = sorted(set(edges.names[i] for i in edges.lookup(names)), key=edges.index.get)
    check_labels(edges.mask(uniq), len(edges))
    return ReferenceCircuit(source=src, edges=uniq, total_edges=len(edges))


def compare_all(scores: Sequence, reference: ReferenceCircuit, edges: EdgeSet, **options) -> list[ReferenceComparison]:
    """:func:`compare_to_reference` for every method's scores."""
    lab = reference.mask(edges)
    return [compare_to_reference(s, lab, **options) for s in scores]


def tracr_problem(name: str, *, n_pairs: int = 32, seed: int = 0,
                  kinds: Sequence[str] = ("counterfactual", "reads")):
    """A shipped tracr model with its task and ground truth: ``(model, data, metric, edges, {kind: mask})``.

    ``data`` holds ``n_pairs`` clean/corrupted pairs of the program's inputs
    (:func:`circuitry.zoo.tracr_models.task_pairs`), ``metric`` is ``"logit_diff"`` for a categorical output
    and :func:`~circuitry.zoo.tracr_models.numerical_output` for a numerical one, and each mask marks the
    ground-truth edges of one kind (``"counterfactual"``, ``"reads"`` or ``"acdc"``)."""
    from circuitry.discovery.edges import edge_set
    from circuitry.models import load_model
    from circuitry.zoo.tracr_models import ground_truth, numerical_output, task_pairs

    model = load_model(f"zoo:{name}")
    man = model.manifest
    data = task_pairs(man, n=n_pairs, seed=seed)
    metric = "logit_diff" if man.output_kind == "categorical" else numerical_output
    es = edge_set(model)
    return model, data, metric, es, {k: es.mask(ground_truth(man, kind=k)) for k in kinds}
