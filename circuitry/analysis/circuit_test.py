"""The circuit heads against random heads, on held-out prompts, under named nulls (docs/statistics.md).

Three tests, each saying what it tests:

* **pool**: the circuit's damage (the task's metric moved the wrong way by ablating its heads) against
  random sets of as many heads from the whole model. Calibrated under "the circuit is a random set".
  It cannot see past a *bottleneck*: when one head is as damaging as the circuit, every random set that
  contains it is too.
* **the most damaging circuit head alone** (the bottleneck candidate): its own damage, with a one-sided
  lower bound over prompts (:func:`circuitry.stats.mean_test`), and its share of the circuit's damage.
* **beyond it** (conditional null): with that head ablated in every set, the circuit's other heads
  against random sets of as many heads from the rest ("the other circuit heads matter beyond it").

On the shipped model the circuit is L0H3 + the four induction heads: the pool test is fragile because
L0H3 alone costs nearly as much as the whole circuit, which the second test shows as its own finding,
and the third asks what the induction heads add.
"""

from __future__ import annotations

import math

from circuitry.display import Displayed, Table, fmt
from circuitry.labels import all_heads
from circuitry.provenance import Frozen
from circuitry.stats.intervals import MeanTest
from circuitry.stats.random_heads import RandomHeadTest

BOTTLENECK_SHARE = 0.5  # a circuit head carrying at least half of the circuit's damage alone is a bottleneck


class CircuitTests(Displayed, Frozen):
    """The circuit tests of one ``analyze`` run (see the module docstring)."""

    circuit: list[str]
    #: damage of the whole circuit and of every single head, mean over the test prompts
    circuit_damage: float
    single_damage: dict[str, float]
    pool: RandomHeadTest
    #: the circuit head with the largest damage alone (``None`` for a one-head circuit)
    top_head: str | None = None
    top_head_test: MeanTest | None = None
    #: ``top_head``'s damage over the circuit's
    top_head_share: float | None = None
    beyond: RandomHeadTest | None = None

    def _table(self) -> Table:
        """One row per test: the row of each random-head test's own table, and the most damaging head's damage
        alone with its one-sided test; each test's sentence in the notes."""
        rows = [("pool", *self.pool._shown_table().rows[0])]
        notes = [f"pool: {self.pool.describe()}"]
        if self.beyond is not None:
            rows.append((f"beyond {self.top_head}", *self.beyond._shown_table().rows[0]))
            notes.append(f"beyond: {self.beyond.describe()}")
        t = self.top_head_test
        if t is not None:
            rows.append(("alone", self.top_head, t.statistic, "–", None, t.pvalue, t.min_attainable_pvalue))
            notes.append(f"alone: {self.top_head}'s damage {fmt(t.statistic)}, {fmt(self.top_head_share)} of the "
                         f"circuit's; {t.test}, one-sided {fmt(t.confidence_level)} bound {fmt(t.bound)}")
        return Table(f"CircuitTests: {', '.join(self.circuit)} (damage {fmt(self.circuit_damage)})",
                     ("test", "heads", "damage", "random sets", "effect size", "p", "floor"), rows, notes=notes,
                     noun="test")


def stop_rule(stop_after: int | None, n_draws: int, alpha: float) -> int | None:
    """The ``stop_after`` a circuit-test null uses: ``None`` (every draw) when ``stop_after`` is ``None`` or 0, else
    at least ``floor(alpha * (n_draws + 1))``. Then a stopped null's p-value, ``(1 + h) / (1 + L)`` with
    ``L <= n_draws``, exceeds ``alpha``, and so would the p-value of all ``n_draws`` (they hold at least
    ``h`` sets as damaging): stopping never changes a verdict at ``alpha``, it only spends fewer draws on a
    null the circuit does not beat.

    >>> stop_rule(20, 1000, 0.01), stop_rule(20, 1000, 0.05), stop_rule(0, 1000, 0.01)
    (20, 50, None)
    """
    if not stop_after:
        return None
    return max(stop_after, math.floor(alpha * (n_draws + 1)))


def run_circuit_tests(model, test, circuit: list[str], ctx, cfg) -> CircuitTests:
    """Run the tests on the ``test`` prompts (a :class:`~circuitry.prompts.PairDataset`)."""
    from circuitry.interventions import head_set_effect_fn
    from circuitry.metrics import Targets
    from circuitry.stats import circuit_vs_random, mean_test
    from circuitry.stats._common import procedure_seed

    ids = test.clean_ids(model.device)
    kw = {"device": model.device}
    if ctx.test_metric == "kl":
        kw.update(metric="kl", clean_logits=model.run(ids).logits)
    targets = Targets.of(test, **kw)
    heads = all_heads(model.info.n_layers, model.info.n_heads)
    # each procedure its own named stream (the test prompts and a file task's split use others)
    s_pool, s_beyond, s_mean = (procedure_seed(cfg.seed, f"circuit-test/{p}") for p in ("pool", "beyond", "mean"))
    fn = head_set_effect_fn(model, ids, targets, method=cfg.ablation, metric=ctx.test_metric,
                            seed=procedure_seed(cfg.seed, "circuit-test/ablation"),
                            sign=ctx.test_sign, mask=test.mask(model.device) if test.padded else None)
    par = dict(executor=cfg.executor, max_workers=cfg.workers, stop_after=stop_rule(cfg.stop_after, cfg.n_draws, cfg.alpha))
    pool = circuit_vs_random(fn, circuit, heads, null="pool", n_draws=cfg.n_draws, rng=s_pool, **par)
    # every single head's damage, per prompt: which circuit head matters most alone
    damage = fn.per_prompt([[h] for h in heads])  # [head, prompt]
    single = {h: float(damage[i].mean()) for i, h in enumerate(heads)}
    out = dict(circuit=circuit, circuit_damage=pool.statistic, single_damage=single, pool=pool)
    if len(circuit) >= 2:
        top = max(circuit, key=single.get)
        out["top_head"] = top
        out["top_head_test"] = mean_test(damage[heads.index(top)], threshold=0.0, confidence_level=1 - cfg.alpha,
                                         rng=s_mean)
        out["top_head_share"] = single[top] / pool.statistic if pool.statistic else None
        rest = [h for h in circuit if h != top]
        out["beyond"] = circuit_vs_random(fn, rest + [top], heads, null="conditional", given=[top],
                                          n_draws=cfg.n_draws, rng=s_beyond, **par)
    return CircuitTests(**out)


def circuit_findings(t: CircuitTests, ctx, source: str, alpha: float) -> list:
    """The findings of :func:`run_circuit_tests`, in words with their nulls and floors."""
    from circuitry.analysis.results import Finding
    from circuitry.stats import verdict

    def verdict_words(r) -> tuple[bool, str]:
        v = verdict(r, alpha)
        # not reaching alpha is "not supported", not a demonstration of no effect
        word = {"refuted": "not supported at this alpha"}.get(v.outcome, v.outcome)
        extra = (f"; it would hold at 0.05 (p = {r.pvalue:.3g})" if v.outcome != "supported" and alpha < 0.05
                 and r.pvalue <= 0.05 and r.min_attainable_pvalue <= 0.05 else "")
        return v.outcome == "supported", f"verdict: {word} ({v.reason}){extra}"

    k = len(t.circuit)
    ok, why = verdict_words(t.pool)
    out = [Finding(
        claim=f"Ablating the circuit heads {', '.join(t.circuit)} causes a larger {ctx.test_statistic} than "
              f"ablating {k} random heads of the model (pool null, p <= {alpha}).",
        holds=ok,
        evidence=f"circuit heads {source}. On {ctx.test_prompts}: {t.pool.describe()} {why}.")]
    if t.top_head is None:
        return out
    mt, share = t.top_head_test, t.top_head_share
    others = sorted((d, h) for h, d in t.single_damage.items() if h != t.top_head)
    nxt = f"{others[-1][1]} {others[-1][0]:.3g}" if others else "none"
    bottleneck = share is not None and share >= BOTTLENECK_SHARE
    out.append(Finding(
        claim=(f"{t.top_head} alone is a bottleneck: ablating it causes {share:.0%} of the circuit's "
               f"{ctx.test_statistic}." if bottleneck else
               f"{t.top_head} is the circuit head that matters most alone, with {share:.0%} of the circuit's "
               f"{ctx.test_statistic}." if share is not None else
               f"{t.top_head} is the circuit head that matters most alone."),
        holds=mt.pvalue <= alpha and mt.min_attainable_pvalue <= alpha,
        evidence=f"{ctx.test_statistic} with {t.top_head} ablated alone: {mt.statistic:.3g}, one-sided "
                 f"{mt.confidence_level:.0%} lower bound {mt.bound:.3g} over {mt.n} test prompts ({mt.method}; "
                 f"null: no damage; p = {mt.pvalue:.3g}, floor {mt.min_attainable_pvalue:.3g}); the whole circuit "
                 f"{t.circuit_damage:.3g}; the most damaging head outside it: {nxt}."))
    ok, why = verdict_words(t.beyond)
    rest = [h for h in t.circuit if h != t.top_head]
    out.append(Finding(
        claim=f"The other circuit heads {', '.join(rest)} matter beyond {t.top_head} (conditional null, "
              f"p <= {alpha}).",
        holds=ok,
        evidence=f"{t.beyond.describe()} {why}."))
    return out


def damage_table(t: CircuitTests, k: int = 6) -> list[tuple[str, float]]:
    """The ``k`` heads whose ablation alone does the most damage, largest first."""
    return sorted(t.single_damage.items(), key=lambda x: -x[1])[:k]


__all__ = ["CircuitTests", "run_circuit_tests", "circuit_findings", "damage_table"]
