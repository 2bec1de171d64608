"""Run the phase-change analysis over a series of checkpoints: :func:`phase_change`.

A series is a list of ``(step, model)`` with ``model`` anything :func:`circuitry.models.load_model`
accepts (``"zoo:attn-only-2l@400"``, a Hugging Face directory such as a ``checkpoint-1000`` folder of
the Trainer) or an already loaded adapter. :func:`zoo_checkpoints` gives a zoo model's shipped series,
:func:`checkpoint_dirs` a user's list of directories with the step read from each name.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from circuitry.display import Displayed, Table, interval, series_rows, spread
from circuitry.dynamics.measure import CheckpointScores, dataset_hash, heldout_tokens, measure_checkpoint
from circuitry.dynamics.phase import PhaseChange, TrainingLog, locate_phase_change, training_log_series
from circuitry.errors import InputError, bad_value
from circuitry.labels import head_label
from circuitry.provenance import Frozen, Provenance, make_provenance

Checkpoint = tuple[int, Any]
"""``(step, model)``: a name :func:`circuitry.models.load_model` accepts, or a loaded ``ModelAdapter``."""


def zoo_checkpoints(name: str) -> list[Checkpoint]:
    """The shipped checkpoints of zoo model ``name`` and its final weights, by step.

    Examples
    --------
    >>> [s for s, _ in zoo_checkpoints("attn-only-1l")]
    [250, 500, 1000]
    """
    from circuitry.zoo import zoo_manifest

    man = zoo_manifest(name)
    steps = sorted({c.step for c in man.checkpoints} | {man.steps})
    return [(s, f"zoo:{name}@{s}") for s in steps]


def retrain_zoo_checkpoints(name: str, out_dir: str | os.PathLike, *, every: int = 50, until: int = 600,
                            progress: bool = True) -> list[Checkpoint]:
    """Re-train zoo model ``name`` from its shipped recipe for ``until`` steps, saving a checkpoint every
    ``every`` steps in ``out_dir``, and return them loaded, as a series.

    The shipped checkpoints are few (``attn-only-2l``: 200, 400, 550, ...); this gives a dense series
    over the phase change. Training is the shipped recipe's exact prefix (``circuitry zoo train
    --steps``; one thread, about 50 s for 600 steps of ``attn-only-2l``); on another CPU type the weights
    can differ in the last bits (``docs/zoo.md``). Each checkpoint's id is ``OUT_DIR/NAME@STEP`` and its
    weights sha256 the one recorded in the written manifest.

    Raises
    ------
    InputError
        ``every`` or ``until`` out of range (``0 < every < until < recipe.steps``), before any training.
    """
    from circuitry.models import ModelAdapter
    from circuitry.zoo import load_zoo, zoo_manifest
    from circuitry.zoo.train import train

    recipe = zoo_manifest(name).recipe
    if not (isinstance(every, int) and isinstance(until, int) and 0 < every < until < recipe.steps):
        raise bad_value("every/until", (every, until), f"integers with 0 < every < until < {recipe.steps}")
    steps = tuple(range(every, until, every))
    man = train(recipe.model_copy(update={"checkpoint_steps": steps}), out_dir, stop_step=until, progress=progress)
    sha = {c.step: c.sha256 for c in man.checkpoints} | {until: man.weights_sha256}
    out = []
    for s in (*steps, until):
        module, _ = load_zoo(name, step=s, root=out_dir) if s != until else load_zoo(name, root=out_dir)
        out.append((s, ModelAdapter(module, model_id=f"{out_dir}/{name}@{s}", manifest=man, weights_sha256=sha[s])))
    return out


def checkpoint_dirs(paths: Sequence[str | os.PathLike], steps: Sequence[int] | None = None) -> list[Checkpoint]:
    """A user's checkpoint directories as a series; each step is ``steps[i]`` or the last number in the
    directory's name (``checkpoint-1000``, ``step_200``).

    Raises
    ------
    InputError
        A path is not a directory, a name holds no number and no ``steps`` were given, or the lengths differ.
    """
    paths = [Path(p) for p in paths]
    for p in paths:
        if not p.is_dir():
            raise bad_value("checkpoints", str(p), "a directory holding a saved Hugging Face model",
                            "save each checkpoint with save_pretrained(DIR)")
    if steps is not None:
        if len(steps) != len(paths):
            raise InputError(f"steps has {len(steps)} values for {len(paths)} checkpoints; give one step per checkpoint")
        return [(int(s), str(p)) for s, p in zip(steps, paths)]
    out = []
    for p in paths:
        nums = re.findall(r"\d+", p.name)
        if not nums:
            raise bad_value("checkpoints", str(p), "a directory name holding its step (e.g. checkpoint-1000)",
                            "pass the steps explicitly (--steps 100,200,...)")
        out.append((int(nums[-1]), str(p)))
    return out


class DynamicsResult(Displayed, Frozen):
    """The phase-change analysis of one series (``circuitry dynamics`` writes it to ``dynamics.json``).

    Attributes
    ----------
    series
        Name of the series (e.g. ``"zoo:attn-only-2l"``).
    checkpoints
        One :class:`~circuitry.dynamics.measure.CheckpointScores` per checkpoint, by step.
    heldout_source
        Where the held-out sequences came from (and ``provenance.dataset_sha256`` their hash).
    tracked_pair, tracked_k_composition
        The previous-token head (layers before the last) and the induction head that are best at the
        *last* checkpoint, and their raw K-composition at every checkpoint (``None`` for 1 layer).
    k_baseline_mean, k_baseline_std, k_baseline_n_draws
        K-composition of random heads of the same shapes (Elhage et al. 2021), simulated once.
    phase_change
        Located on the checkpoints (:func:`~circuitry.dynamics.phase.locate_phase_change`).
    training_log, log_phase_change
        For a zoo model: its training log (every 50 steps) and the window located on it.
    """

    series: str
    checkpoints: list[CheckpointScores]
    heldout_source: dict[str, Any]
    tracked_pair: tuple[str, str] | None = None
    tracked_k_composition: list[float] | None = None
    k_baseline_mean: float | None = None
    k_baseline_std: float | None = None
    k_baseline_n_draws: int = 0
    phase_change: PhaseChange
    training_log: TrainingLog | None = None
    log_phase_change: PhaseChange | None = None
    provenance: Provenance

    @property
    def steps(self) -> list[int]:
        return [c.step for c in self.checkpoints]

    def curve(self, score: str) -> np.ndarray:
        """``[n_checkpoints, 3]``: value, ci_low, ci_high of the best head for ``"prev_token"`` (layers
        before the last, where a previous-token head can feed an induction head; all layers for a
        1-layer model) or ``"induction"`` (all heads), or of ``"icl"``."""
        return best_curve(self.checkpoints, score)

    def to_markdown(self) -> str:
        """A Markdown summary: the window and one row per checkpoint."""
        from circuitry.dynamics.report import markdown

        return markdown(self)

    def plot(self, path: str | Path) -> Path:
        """The figure: every curve on one time axis, the located window shaded."""
        from circuitry.dynamics.report import plot

        return plot(self, path)

    def _table(self) -> Table:
        """The first and last checkpoints and those at the ends of the located window (of the prefix-matching
        jump when no phase change was found), with the ICL score, loss, best heads' scores and intervals."""
        pc, steps = self.phase_change, self.steps
        ends = pc.window or (pc.induction.start_step, pc.induction.end_step)
        icl, prev, ind = self.curve("icl"), self.curve("prev_token"), self.curve("induction")
        kc = self.tracked_k_composition or [None] * len(steps)
        what = "window" if pc.window else "prefix-matching jump"
        phase = {ends[0]: f"{what} start", ends[1]: f"{what} end"}
        rows = [(steps[i], icl[i, 0], interval(icl[i, 1], icl[i, 2]), self.checkpoints[i].heldout_loss, prev[i, 0],
                 ind[i, 0], interval(ind[i, 1], ind[i, 2]), kc[i], phase.get(steps[i], ""))
                for i in series_rows(len(steps), [steps.index(s) for s in ends if s in steps])]
        notes = [pc.describe()] + ([] if self.log_phase_change is None else [self.log_phase_change.describe()])
        if self.tracked_pair:
            notes.append(f"K-comp: raw K-composition {self.tracked_pair[0]} -> {self.tracked_pair[1]} (random-matrix "
                         f"baseline {spread(self.k_baseline_mean, self.k_baseline_std)}, "
                         f"{self.k_baseline_n_draws} draws)")
        notes.append("ICL score (nats, late - early loss) and best heads' scores (prev-token: layers before the last) "
                     "with 95% bootstrap intervals over sequences")
        return Table(f"DynamicsResult: {self.series}, {len(steps)} checkpoints",
                     ("step", "ICL", "ICL CI", "loss", "prev-token", "induction", "induction CI", "K-comp", "phase"),
                     rows, notes=notes, total=len(steps), noun="checkpoint")


def best_curve(rows: Sequence[CheckpointScores], score: str) -> np.ndarray:
    """See :meth:`DynamicsResult.curve`."""
    if score == "icl":
        return np.array([[c.icl, c.icl_ci_low, c.icl_ci_high] for c in rows])
    if score not in ("prev_token", "induction"):
        raise bad_value("score", score, "'icl', 'prev_token' or 'induction'")
    n_layers = rows[0].prev_token.shape[0]
    layers = range(max(n_layers - 1, 1)) if score == "prev_token" else None
    return np.array([c.best(score, layers=layers)[1:] for c in rows])


def _validate(checkpoints: Sequence[Checkpoint]) -> list[Checkpoint]:
    from circuitry import models

    if isinstance(checkpoints, str) or len(checkpoints) < 3:
        raise bad_value("checkpoints", checkpoints if isinstance(checkpoints, str) else f"{len(checkpoints)} checkpoints",
                        "at least 3 (step, model) pairs", "use zoo_checkpoints(NAME) or checkpoint_dirs([...])")
    out = sorted(((int(s), m) for s, m in checkpoints), key=lambda x: x[0])
    steps = [s for s, _ in out]
    if len(set(steps)) != len(steps):
        raise bad_value("checkpoints", steps, "distinct steps")
    for s, m in out:
        if isinstance(m, models.ModelAdapter):
            continue
        if not isinstance(m, str):
            raise bad_value("checkpoints", m, "a model name for load_model or a loaded ModelAdapter")
        if not m.startswith("zoo:") and not os.path.isdir(m):
            raise bad_value("checkpoints", m, "'zoo:NAME@STEP' or a directory holding a saved model")
    return out


def phase_change(checkpoints: Sequence[Checkpoint], *, series: str | None = None,
                 heldout: torch.Tensor | None = None, n_heldout: int = 256, n_samples: int = 10, seed: int = 0,
                 n_resamples: int = 1000, n_baseline: int = 1000, progress: bool = True,
                 **locate: Any) -> DynamicsResult:
    """Measure every checkpoint and locate the induction-head phase change (Olsson et al. 2022).

    Parameters
    ----------
    checkpoints
        ``(step, model)`` pairs (:func:`zoo_checkpoints`, :func:`checkpoint_dirs`), at least 3; each
        model is loaded, measured and released in turn.
    series
        Name recorded in the result (default: the first checkpoint's name without ``@STEP``).
    heldout
        ``[n, pos]`` held-out token ids for the ICL score and the loss (default:
        :func:`~circuitry.dynamics.measure.heldout_tokens` of the first checkpoint, ``n_heldout`` sequences).
    n_samples, seed, n_resamples
        Sequences per head score, seed, bootstrap resamples.
    n_baseline
        Random head pairs simulated for the K-composition baseline.
    progress
        A progress bar over the checkpoints.
    **locate
        Passed to :func:`~circuitry.dynamics.phase.locate_phase_change` (``share``, ``max_width``,
        ``min_induction_rise``, ``min_icl_drop``).

    Returns
    -------
    DynamicsResult

    Raises
    ------
    InputError
        Fewer than 3 checkpoints, repeated steps, a missing directory or bad held-out tokens (before any
        model is loaded).

    Examples
    --------
    >>> r = phase_change(zoo_checkpoints("attn-only-2l"), n_resamples=200, progress=False)
    >>> r.phase_change.found, r.phase_change.window
    (True, (200, 400))
    """
    from tqdm.auto import tqdm

    from circuitry import models
    from circuitry.scores import random_baseline
    from circuitry.scores.detectors import check_tokens

    items = _validate(checkpoints)
    bad = set(locate) - {"share", "max_width", "min_induction_rise", "min_icl_drop"}
    if bad:
        raise bad_value("locate", sorted(bad), "share, max_width, min_induction_rise or min_icl_drop")
    rows: list[CheckpointScores] = []
    source: dict[str, Any] = {}
    first = None
    for step, spec in tqdm(items, desc="checkpoints", disable=not progress, leave=False):
        model = spec if isinstance(spec, models.ModelAdapter) else models.load_model(spec)
        if first is None:
            first = model
            if heldout is None:
                heldout, source = heldout_tokens(model, n=n_heldout, seed=seed)
            else:
                heldout, source = check_tokens(model, heldout), {"kind": "user tokens", "n": len(heldout)}
        rows.append(measure_checkpoint(model, step=step, heldout=heldout, n_samples=n_samples, seed=seed,
                                       n_resamples=n_resamples))
    name = series or (first.model_id.split("@")[0] if first is not None else "series")
    info = first.info
    pair = kc = bmean = bstd = None
    if info.n_layers > 1:
        last = rows[-1]
        (sl, sh), *_ = last.best("prev_token", layers=range(info.n_layers - 1))
        (dl, dh), *_ = last.best("induction", layers=range(sl + 1, info.n_layers))
        pair = (head_label(sl, sh), head_label(dl, dh))
        kc = [float(c.k_composition.numpy()[sl, sh, dl, dh]) for c in rows]
        bmean, bstd, _ = random_baseline(info.d_model, info.d_head, kind="K", n_draws=n_baseline, seed=seed)
    icl, ind = best_curve(rows, "icl"), best_curve(rows, "induction")
    steps = [c.step for c in rows]
    pc = locate_phase_change(steps, icl[:, 0], ind[:, 0], icl_ci=(icl[:, 1], icl[:, 2]),
                             induction_ci=(ind[:, 1], ind[:, 2]), source="checkpoints", **locate)
    log = log_pc = None
    man = getattr(first, "manifest", None)
    if man is not None and len(man.curve) >= 3:
        log = training_log_series(man)
        log_pc = locate_phase_change(log.steps, log.icl_proxy, log.best_induction, source="training log", **locate)
    return DynamicsResult(
        series=name, checkpoints=rows, heldout_source=source, tracked_pair=pair, tracked_k_composition=kc,
        k_baseline_mean=bmean, k_baseline_std=bstd, k_baseline_n_draws=n_baseline if pair else 0,
        phase_change=pc, training_log=log, log_phase_change=log_pc,
        provenance=make_provenance(first, dataset=dataset_hash(heldout), seed=seed, series=name, steps=steps,
                                   weights_sha256_by_step={str(c.step): c.weights_sha256 for c in rows}))
