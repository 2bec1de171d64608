"""Edges of the composition graph, and the automatic checks of what a run shows.

Every task gets the same generic findings, in words true for that task: is there a clean-corrupted gap
to explain, which heads carry a significant share of it, which paths, and does ablating the circuit
heads hurt more than ablating random heads on held-out prompts. The induction task adds the headline
checks (previous-token head -> induction heads through K). Nothing is hand-picked: the previous-token
head is the head with the highest previous-token score outside the last layer, the induction heads
are the later heads with an induction (prefix-matching) score of at least ``INDUCTION_MIN``, and each
check compares the *largest* measured values with them.
"""

from __future__ import annotations

import numpy as np

from circuitry.analysis.results import Finding, SiteEffect
from circuitry.graph.schema import EdgeMeasurement
from circuitry.labels import EMBED, describe_group, group_heads, group_of, head_label, parse_head, receiver_text

INDUCTION_MIN = 0.5
PREV_MIN = 0.5


def build_edges(paths, path_effects: list[SiteEffect], composition) -> list[EdgeMeasurement]:
    """One :class:`EdgeMeasurement` per measured path: ``effect`` = the share of the metric gap the path
    carries, its CI, raw and adjusted p-values, and the baseline-subtracted composition score of the
    same kind (head -> head edges only).

    With grouped-query attention a ``k``/``v`` path enters a key/value group (``L1G0``, one measurement
    for the group, one edge); composition scores are per query head (each reads the group's keys and
    values through its own W_Q or W_O), so the edge's composition is the largest over the group's query
    heads (``paths.groups``)."""
    edges = []
    for (s, r, k), e in zip(paths.paths, path_effects):
        comp = comp_raw = None
        if s != EMBED and k in ("q", "k", "v"):
            c = composition[k.upper()]
            comp_raw = max(c.score(s, h) for h in paths.groups.get(r, [r]))
            comp = comp_raw - c.baseline_mean
        edges.append(EdgeMeasurement(source=s, target=r, kind=k, effect=e.share, ci_low=e.ci_low, ci_high=e.ci_high,
                                     pvalue=e.pvalue, pvalue_adjusted=e.pvalue_adjusted, composition=comp,
                                     composition_raw=comp_raw))
    return edges


def circuit_from_scores(scores, n_layers: int, n_heads: int) -> tuple[str | None, list[str], list, list]:
    """The previous-token head ``P`` (highest previous-token score outside the last layer), the
    induction heads ``I`` (heads after ``P``'s layer with prefix-matching score >= ``INDUCTION_MIN``),
    and the two ranked lists they came from. No hand-picking: both are read off the scores. A 1-layer
    model has no head outside the last layer: ``(None, [], [], ranked induction scores)``."""
    if n_layers < 2:
        ind = scores.head_scores["induction"].numpy()
        return None, [], [], sorted(((head_label(0, h), float(ind[0, h])) for h in range(n_heads)),
                                    key=lambda x: -x[1])
    prev = scores.head_scores["previous_token"].numpy()
    ind = scores.head_scores["induction"].numpy()
    cand = sorted(((head_label(l, h), float(prev[l, h])) for l in range(n_layers - 1) for h in range(n_heads)),
                  key=lambda x: -x[1])
    P = cand[0][0]
    pl = parse_head(P)[0]
    later = sorted(((head_label(l, h), float(ind[l, h])) for l in range(pl + 1, n_layers) for h in range(n_heads)),
                   key=lambda x: -x[1])
    return P, [h for h, v in later if v >= INDUCTION_MIN], cand, later


def _ci(lo: float | None, hi: float | None) -> str:
    """``[lo, hi]`` with an unbounded end written as -inf/inf."""
    return f"[{'-inf' if lo is None else f'{lo:.2f}'}, {'inf' if hi is None else f'{hi:.2f}'}]"


def _fmt_heads(items) -> str:
    return ", ".join(f"{h} {v:.2f}" for h, v in items)


def _sign_note(gap, metric: str) -> str:
    from circuitry.metrics import HIGHER_IS_CLEAN

    if (gap.mean < 0) == HIGHER_IS_CLEAN.get(metric, True):
        return (". The gap runs against the task's intent: the model scores the clean prompts *worse* than the "
                "corrupted ones on this metric, so it does not perform the task as posed; the shares below explain "
                "that reversed gap.")
    return "."


def _unreachable(effects, alpha: float, holm: bool) -> str:
    """Words for a family of tests that could not reach ``alpha`` whatever the data ('' when it could):
    Holm's smallest adjusted p is ``m * floor``, BH's ``floor``."""
    floors = [e.pvalue_floor for e in effects if e.pvalue_floor is not None]
    if not floors:
        return ""
    f = min(floors)
    best = min(1.0, len(effects) * f) if holm else f
    if best <= alpha:
        return ""
    return (f" Inconclusive by construction: with {len(effects)} tests the smallest "
            f"{'Holm' if holm else 'BH'}-adjusted p this sample allows is {best:.2g} (the test's floor {f:.2g}), above "
            f"alpha {alpha}; more prompt pairs are needed before any can be significant.")


def _member(e, share: float | None, alpha: float, min_share: float) -> bool:
    """A circuit member: significant (adjusted p <= alpha) *and* positive and large enough (share >=
    min_share), the two tests of :mod:`circuitry.stats.decide`."""
    return e.pvalue_adjusted is not None and e.pvalue_adjusted <= alpha and (share or 0.0) >= min_share


def _names(items: list[str], most: int = 12) -> str:
    """Every name when there are at most ``most``, else the first ``most`` and how many more."""
    return ", ".join(items) if len(items) <= most else f"{', '.join(items[:most])} and {len(items) - most} more"


def check_findings(model, scores, ctx, gap, head_effects, edges: list[EdgeMeasurement], circuit_test,
                   circuit: list[str], source: str, *, alpha: float, min_share: float = 0.05) -> list[Finding]:
    """Every finding of a run, in words true for its task (see the module docstring). A head or path counts
    only when it is significant and carries at least ``min_share`` of the gap."""
    m = ctx.metric
    out = [Finding(
        claim=(f"The model separates the clean from the corrupted prompts on {m}: there is a gap to explain."
               if gap.resolved else f"The model does not separate the clean from the corrupted prompts on {m}: "
               "there is no gap to explain, so no circuit can be read off this run."),
        holds=gap.resolved,
        evidence=f"{ctx.target}: clean minus corrupted {gap.mean:.3f}, {gap.confidence_level:.0%} interval "
                 f"[{gap.ci_low:.3f}, {gap.ci_high:.3f}] over {gap.n} prompt pairs, p = {gap.pvalue:.2g} "
                 "(Hall's skewness-corrected t-test of no gap)" + (_sign_note(gap, m) if gap.resolved else
                 "; the interval contains 0, so every share of the gap would be a ratio over noise. The run "
                 "stopped after activation patching."))]
    sig = sorted((e for e in head_effects if _member(e, e.share, alpha, min_share)), key=lambda e: -e.share)
    out.append(Finding(
        claim=(f"{len(sig)} head(s) carry a significant share (>= {min_share:g}) of the {m} gap: "
               f"{_names([e.site for e in sig])}."
               if sig else f"No head carries a significant share (>= {min_share:g}) of the {m} gap (Holm-adjusted "
               f"p <= {alpha})." + _unreachable(head_effects, alpha, holm=True)),
        holds=bool(sig) and gap.resolved,
        evidence="activation patching per head (share of the gap, 95% CI, Holm-adjusted p of Hall's t-test): "
                 + "; ".join(f"{e.site} {e.share:.2f} {_ci(e.ci_low, e.ci_high)}, p_adj={e.pvalue_adjusted:.2g}"
                             for e in sorted(head_effects, key=lambda e: -e.share)[:5]) + "."))
    if not gap.resolved:
        return out
    sig_paths = sorted((e for e in edges if _member(e, e.effect, alpha, min_share)), key=lambda e: -(e.effect or 0))
    small = sum(1 for e in edges if e.pvalue_adjusted is not None and e.pvalue_adjusted <= alpha
                and abs(e.effect or 0.0) < min_share)
    out.append(Finding(
        claim=(f"{len(sig_paths)} path(s) carry a significant share (>= {min_share:g}) of the gap "
               f"(Benjamini-Hochberg-adjusted p <= {alpha}); the largest: "
               + ", ".join(f"{e.source}->{e.target}:{e.kind}" for e in sig_paths[:4]) + "."
               if sig_paths else f"No path carries a significant share (>= {min_share:g}) of the gap "
               f"(BH-adjusted p <= {alpha})."),
        holds=bool(sig_paths),
        evidence="largest paths (share, 95% CI, BH-adjusted p of Hall's t-test): " + "; ".join(
            f"{e.source}->{e.target}:{e.kind} {e.effect:.2f} {_ci(e.ci_low, e.ci_high)}, "
            f"p_adj={e.pvalue_adjusted:.2g}" for e in sorted(edges, key=lambda e: -(e.effect or 0))[:5]) + "."
            + (f" {small} more path(s) are significant but carry less than {min_share:g} of the gap: not counted."
               if small else "")))
    if ctx.name == "induction" and ctx.source == "built-in":
        out += induction_findings(model, scores, edges, alpha=alpha)
    if circuit_test is not None:
        from circuitry.analysis.circuit_test import circuit_findings

        out += circuit_findings(circuit_test, ctx, source, alpha)
    else:
        out.append(Finding(claim="No circuit to test against random heads: no head qualified.", holds=False,
                           evidence=f"circuit heads would be {source}; none was."))
    return out


def induction_findings(model, scores, edges: list[EdgeMeasurement], *, alpha: float) -> list[Finding]:
    """The headline checks of the induction task (previous-token head -> induction heads through K)."""
    L, H = model.info.n_layers, model.info.n_heads
    P, I, cand, later = circuit_from_scores(scores, L, H)
    if P is None:
        return [Finding(
            claim="No induction circuit: the model has one layer, so no previous-token head can feed an "
                  "induction head through K-composition.",
            holds=False,
            evidence=f"best induction (prefix-matching) scores: {_fmt_heads(later[:3])} (an induction head scores "
                     f">= {INDUCTION_MIN}).")]
    p_best = cand[0][1]
    p_second = cand[1][1] if len(cand) > 1 else float("nan")
    out: list[Finding] = []
    out.append(Finding(
        claim=f"One head attends mostly to the previous token: {P}.",
        holds=p_best >= PREV_MIN and p_best - p_second >= 0.3,
        evidence=f"previous-token score of {P} is {p_best:.2f}; the next highest head outside the last layer "
                 f"scores {p_second:.2f} (top: {_fmt_heads(cand[:3])})."))

    rest = [v for h, v in later if v < INDUCTION_MIN]
    out.append(Finding(
        claim=f"Later layers hold induction heads: {', '.join(I) if I else 'none'}.",
        holds=bool(I) and (not rest or later[0][1] - max(rest) >= 0.3),
        evidence=f"induction (prefix-matching) scores: {_fmt_heads(later[:max(3, len(I))])}; "
                 f"{len(I)} of {len(later)} heads after {P}'s layer score >= {INDUCTION_MIN}"
                 + (f", the best other head {max(rest):.2f}." if rest else ".")))

    hh = [e for e in edges if e.source != EMBED and e.target.startswith("L")]
    # K and V inputs belong to key/value heads: with grouped-query attention a K-path enters a key/value group
    # (L1G0), measured once for all its query heads. The K-edges "into the induction heads" are the K-edges
    # into the groups that hold an induction head, each group once however many induction heads it holds.
    gs = model.info.group_size
    gqa = model.info.n_kv_heads < model.info.n_heads
    kv_I = list(dict.fromkeys(group_of(h, gs) for h in I)) if gqa else list(I)
    k_edges = sorted((e for e in hh if e.kind == "k"), key=lambda e: (-round(e.effect or 0, 9), e.target not in kv_I))
    into_I: dict[str, float] = {}
    for e in {(e.source, e.target): e for e in k_edges if e.target in kv_I}.values():  # each (sender, group) once
        into_I[e.source] = into_I.get(e.source, 0.0) + (e.effect or 0.0)
    top_sender = max(into_I, key=into_I.get) if into_I else None
    ok = (bool(I) and bool(k_edges) and k_edges[0].source == P and k_edges[0].target in kv_I and top_sender == P
          and (k_edges[0].pvalue_adjusted or 1.0) <= alpha)
    into_note = ""
    if gqa:
        into_note = (f" Grouped-query attention ({model.info.n_kv_heads} key/value heads for {model.info.n_heads} "
                     "query heads per layer): a K-path enters a key/value group and is measured once for the group; "
                     "the groups holding induction heads: " + "; ".join(
                         f"{describe_group(g, gs)} (induction heads {', '.join(h for h in group_heads(g, gs) if h in I)})"
                         for g in kv_I) + ".")
    out.append(Finding(
        claim=f"The K-edges with the largest path-patching effects run from {P} into the induction heads"
              + (" (into the key/value groups that hold them)." if gqa else "."),
        holds=ok,
        evidence="largest K-edges (share of the metric gap, 95% CI, adjusted p): " + "; ".join(
            f"{e.source}->{receiver_text(e.target, gs)} {e.effect:.2f} {_ci(e.ci_low, e.ci_high)}, "
            f"p_adj={e.pvalue_adjusted:.2g}" for e in k_edges[:max(4, len(kv_I))])
        + f". Summed K-share into the induction heads{' (each group once)' if gqa else ''} by sender: " + ", ".join(
            f"{s} {v:.2f}" for s, v in sorted(into_I.items(), key=lambda x: -x[1])[:4]) + "." + into_note))

    if I:
        qkv = {}
        for kind in ("q", "k", "v"):
            into = I if kind == "q" else kv_I
            vals = [e.effect for e in hh if e.kind == kind and e.source == P and e.target in into]
            qkv[kind] = float(np.mean(vals)) if vals else float("nan")
        out.append(Finding(
            claim=f"{P} reaches the induction heads mainly through their keys (K-paths carry more than Q- or V-paths).",
            holds=qkv["k"] > max(qkv["q"], qkv["v"], 0.02) and any(
                (e.pvalue_adjusted or 1.0) <= alpha for e in hh if e.kind == "k" and e.source == P and e.target in kv_I),
            evidence=f"mean path share from {P} into {', '.join(I)}: K {qkv['k']:.2f}, Q {qkv['q']:.2f}, "
                     f"V {qkv['v']:.2f} (a comparison of means over the induction heads"
                     + (f"; K and V over the key/value groups holding them, {', '.join(kv_I)}, each once" if gqa else "")
                     + f", with at least one K-path significant at BH-adjusted p <= {alpha}; the K-Q difference itself "
                     "is not tested)."))

    comp = scores.composition
    K = comp["K"]
    top_pairs = K.pairs(max(1, len(I)))
    ok = all(s == P and d in I for s, d, _, _ in top_pairs)
    zs = []
    for s, d, raw, _ in top_pairs:
        z = {k: (comp[k].score(s, d) - comp[k].baseline_mean) / comp[k].baseline_std for k in ("Q", "K", "V")}
        zs.append((s, d, z))
    near = all(z["K"] > 3 and z["K"] >= 2 * max(z["Q"], z["V"], 0.0) for _, _, z in zs)
    out.append(Finding(
        claim="The largest K-composition scores pick out the same edges, and for those pairs K-composition "
              "dominates: it stands at least twice as far above its random baseline as Q- or V-composition.",
        holds=ok and near and bool(I),
        evidence="top K-composition pairs, in baseline standard deviations above the random-matrix baseline "
                 f"(K baseline {K.baseline_mean:.3f} +- {K.baseline_std:.3f}): " + "; ".join(
                     f"{s}->{d}: K {z['K']:+.1f} sd, Q {z['Q']:+.1f} sd, V {z['V']:+.1f} sd" for s, d, z in zs) + "."))

    return out
