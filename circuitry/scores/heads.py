"""Score every head with registered detectors: mean over sampled sequences + bootstrap interval.

Built-in detectors (``available_detectors()``):

=====================  ==========================================================================
``previous_token``     attention from ``i`` to ``i-1`` (Olsson et al. 2022)
``induction``          prefix matching: attention to the token after earlier occurrences (Olsson)
``duplicate_token``    attention to earlier occurrences of the current token (Olsson)
``copying``            share of the head's direct logit raise on the attended token (Olsson)
``retrieval``          top attention on, and copying of, a needle token from far back (Wu et al. 2024)
``attention_sink``     attention to the first token (Xiao et al. 2023)
``streaming``          attention on the sink plus recent tokens (DuoAttention, Xiao et al. 2024)
``ngram_induction``    attention to the token after earlier 3-gram matches (Akyurek et al. 2024)
``successor``          OV circuit maps a token to its successor (Gould et al. 2024)
``copy_suppression``   OV circuit lowers the token it reads most (McDougall et al. 2023)
``negative_copying``   share of the direct logit decrease on the attended token (McDougall et al.)
``ablation_loss``      loss rise when the head is mean-ablated (the ablation effect)
=====================  ==========================================================================

Every built-in detector has a null, so each head is tested and labelled only where significant
(:mod:`circuitry.scores.significance`). Add your own with :func:`register_detector` (built from a
pattern or a function, see :mod:`circuitry.scores.detectors`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Sequence

import numpy as np
import torch

from circuitry.errors import InputError, bad_value
from circuitry.provenance import make_provenance, sha256_json
from circuitry.scores.catalogue import (ABLATION_LOSS, ATTENTION_SINK, COPY_SUPPRESSION, NGRAM_INDUCTION, STREAMING, SUCCESSOR,
                                        with_retrieval_null)
from circuitry.scores.copying import COPYING, NEGATIVE_COPYING
from circuitry.scores.detectors import (DUPLICATE_TOKEN, INDUCTION, PREVIOUS_TOKEN, Detector, SequenceRecipe,
                                        check_tokens, pattern_scores)
from circuitry.scores.results import HeadScores, head_scores_from_samples
from circuitry.scores.retrieval import RETRIEVAL

if TYPE_CHECKING:
    from circuitry.models import ModelAdapter

_REGISTRY: dict[str, Detector] = {d.name: d for d in (
    PREVIOUS_TOKEN, INDUCTION, DUPLICATE_TOKEN, COPYING, with_retrieval_null(RETRIEVAL), ATTENTION_SINK, STREAMING,
    NGRAM_INDUCTION, SUCCESSOR, COPY_SUPPRESSION, NEGATIVE_COPYING, ABLATION_LOSS)}
DEFAULT_DETECTORS = ("previous_token", "induction", "duplicate_token")


def register_detector(detector: Detector, *, overwrite: bool = False) -> Detector:
    """Make ``detector`` available by name to :func:`score_heads` and ``circuitry scores``.

    Raises
    ------
    InputError
        The name is taken and ``overwrite`` is False, or ``detector`` is not a :class:`Detector`.
    """
    if not isinstance(detector, Detector):
        raise bad_value("detector", detector, "a Detector (use pattern_detector(...) or function_detector(...))")
    if detector.name in _REGISTRY and not overwrite:
        raise InputError(f"detector name {detector.name!r} is already registered. Fix: choose another name "
                         "or pass overwrite=True")
    _REGISTRY[detector.name] = detector
    return detector


def get_detector(name: str | Detector) -> Detector:
    """A registered detector by name (a :class:`Detector` passes through)."""
    if isinstance(name, Detector):
        return name
    if name not in _REGISTRY:
        raise bad_value("detector", name, f"one of {sorted(_REGISTRY)}", "register it with register_detector()")
    return _REGISTRY[name]


def available_detectors() -> list[str]:
    """Names of the registered detectors."""
    return sorted(_REGISTRY)


def score_heads(
    model: "ModelAdapter",
    detectors: Sequence[str | Detector] | str | Detector = DEFAULT_DETECTORS,
    *,
    tokens: torch.Tensor | None = None,
    block_len: int | None = None,
    repeats: int = 4,
    n_samples: int = 10,
    bos: int | None | Literal["model"] = "model",
    exclude: Sequence[int] = (),
    seed: int = 0,
    confidence_level: float = 0.95,
    n_resamples: int = 2000,
    alpha: float = 0.05,
    correction: Literal["holm", "bh", "bonferroni"] = "holm",
) -> dict[str, HeadScores]:
    """Score every head of ``model`` with each detector.

    Parameters
    ----------
    model
        A loaded model (:func:`circuitry.models.load_model`).
    detectors
        Names of registered detectors or :class:`Detector` objects (default: previous-token,
        induction, duplicate-token).
    tokens
        ``[n, pos]`` sequences to score on, used by every detector. ``None``: each detector's default
        sequences from the recipe below (repeated random tokens; random tokens for ``copying``; needle
        sequences for ``retrieval``).
    block_len, repeats, n_samples, bos, exclude, seed
        The sequence recipe (:class:`~circuitry.scores.detectors.SequenceRecipe`; Olsson et al.:
        25 tokens, 4 repeats, BOS first, 10 samples; exclude the corpus's most and least frequent
        tokens via ``exclude``). ``block_len=None``: 25, shortened to fit the context
        (``min(25, (n_ctx - 1) // repeats)``), e.g. 15 for a 64-token context.
    confidence_level, n_resamples
        Bootstrap interval over the sequences (:func:`circuitry.stats.bootstrap_ci`'s default
        ``method="auto"``: studentized bootstrap from 8 sequences, Student's t below; at the default 10
        sequences it covers 0.93-0.94 for heads no more skewed than exponential data, see
        ``docs/statistics.md``), drawn from its own stream, a child of ``seed``
        (:func:`~circuitry.scores.results.bootstrap_seed`).
    alpha, correction
        For detectors with a null: each head is tested against it (one-sided, minimum effect
        ``detector.min_effect``; :mod:`circuitry.scores.significance`) and the p-values are corrected over
        the heads (``"holm"``, ``"bh"`` or ``"bonferroni"``); ``HeadScores.significance`` holds the result.

    Returns
    -------
    dict[str, HeadScores]
        By detector name; ``values`` is the ``[layer, head]`` mean over sequences,
        ``significant_heads()`` the heads labelled with it.

    Raises
    ------
    InputError
        Unknown detector, a bad recipe value, or tokens out of range, before any forward pass.

    Examples
    --------
    >>> from circuitry.models import load_model
    >>> m = load_model("zoo:attn-only-2l")
    >>> s = score_heads(m, ["previous_token", "induction"], n_samples=4, n_resamples=200)
    >>> s["induction"].best(layer=1).startswith("L1H")
    True
    """
    if correction not in ("holm", "bh", "bonferroni"):
        raise bad_value("correction", correction, "'holm', 'bh' or 'bonferroni'")
    if not 0 < alpha < 1:
        raise bad_value("alpha", alpha, "a level in (0, 1), e.g. 0.05")
    if isinstance(detectors, (str, Detector)):
        detectors = [detectors]
    dets = [get_detector(d) for d in detectors]
    if not dets:
        raise bad_value("detectors", list(detectors), "at least one detector")
    if block_len is None:
        block_len = max(1, min(25, (model.info.n_ctx - 1) // max(int(repeats), 1)))
    recipe = SequenceRecipe(block_len=block_len, repeats=repeats, n_samples=n_samples, bos=bos,
                            exclude=tuple(int(t) for t in exclude), seed=seed)
    if tokens is None:
        recipe.validate_for(model)
    else:
        tokens = check_tokens(model, tokens)

    per_sample: dict[str, np.ndarray] = {}
    used: dict[str, torch.Tensor] = {}
    pattern_dets = [d for d in dets if d.target is not None and (tokens is not None or d.sequences is None)]
    if pattern_dets:  # one forward pass per batch for every pattern detector on the shared tokens
        toks = tokens if tokens is not None else recipe.tokens(model)
        for d, arr in zip(pattern_dets, pattern_scores(model, toks, [d.target for d in pattern_dets])):
            per_sample[d.name], used[d.name] = arr, toks
    for d in dets:
        if d.name in per_sample:
            continue
        toks = tokens if tokens is not None else d.default_tokens(model, recipe)
        arr = d.score(model, toks)
        arr = np.asarray(arr.detach().cpu() if hasattr(arr, "detach") else arr, dtype=float)
        want = (toks.shape[0], model.info.n_layers, model.info.n_heads)
        if arr.shape != want:
            raise InputError(f"detector {d.name!r} returned shape {arr.shape}; expected [n, layer, head] = {want}")
        per_sample[d.name], used[d.name] = arr, toks

    out = {}
    for d in dets:
        toks = used[d.name]
        rec = recipe.model_dump(mode="json") | {"user_tokens": tokens is not None, "shape": list(toks.shape)}
        prov = make_provenance(model, dataset=sha256_json(toks.tolist()), seed=seed, detector=d.name)
        null = None if d.null is None else d.null(model, toks, per_sample[d.name])
        out[d.name] = head_scores_from_samples(per_sample[d.name], name=d.name, description=d.description,
                                               provenance=prov, recipe=rec, confidence_level=confidence_level,
                                               n_resamples=n_resamples, seed=seed, null=null,
                                               min_effect=d.min_effect, alpha=alpha, correction=correction,
                                               null_description=d.null_description)
    return out
