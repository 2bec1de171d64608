"""Ground-truth models: RASP programs compiled by tracr, shipped as zoo checkpoints.

tracr (Lindner et al. 2023) compiles a RASP program into transformer weights whose circuit is known.
The zoo ships seven of them (``tracr-reverse``, ``tracr-frac-prevs``, ``tracr-sort``,
``tracr-sort-unique``, ``tracr-hist``, ``tracr-pair-balance``, ``tracr-shuffle-dyck``), built once by
:mod:`circuitry.zoo.tracr_build` in an environment with tracr; nothing here needs jax.

>>> from circuitry.models import load_model
>>> m = load_model("zoo:tracr-reverse")
>>> man = m.manifest
>>> ids = encode(man, [1, 2, 3, 3])
>>> decode(man, m.logits(torch.tensor([ids])))[0]
['BOS', 3, 3, 2, 1]

The architecture is a :class:`~circuitry.zoo.arch.ZooTransformer` with tracr's choices: no layer
norm, ReLU MLPs, bidirectional attention (scaled by ``1 / sqrt(d_head)``, as tracr's attention does),
learned absolute positions added to the residual stream (position 0, the BOS token, gets a zero
vector), and an unembedding that is a projection onto the output subspace (``d_vocab_out`` columns).

**Readout.** A categorical program's logits are its output space: column ``j`` is output value
``manifest.output_values[j]`` and tracr decodes by argmax (:func:`decode`). A numerical program's
logits have one column, the program's value itself (``logits[..., 0]``); its metric is
:func:`numerical_output` (the mean of that value over the task's positions), which enters circuitry's
discovery as a user metric. The BOS position's output is meaningless in both (tracr replaces it by BOS).

The compiled model masks padding (tracr's ``compiler_pad``) out of the keys; the zoo model does not:
inputs must not contain the pad token (:func:`encode` refuses it).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any, Literal

import torch
from pydantic import Field

from circuitry.errors import InputError
from circuitry.provenance import Frozen

TRACR_MODELS = ("tracr-reverse", "tracr-frac-prevs", "tracr-sort", "tracr-sort-unique", "tracr-hist",
                "tracr-pair-balance", "tracr-shuffle-dyck")

GroundTruth = Literal["reads", "counterfactual", "acdc"]

#: ACDC's canonical circuits (Conmy et al. 2023, ``acdc/tracr_task/utils.py``: ``get_tracr_reverse_edges``,
#: ``get_tracr_proportion_edges``; found by ACDC with the l2 metric and **zero ablation**), in circuitry's
#: edge names: ACDC's ``hook_embed`` and ``hook_pos_embed`` are both circuitry's ``embed`` (circuitry's
#: embedding sender is the sum), ``blocks.L.attn.hook_result[H]`` is ``LlHh``, ``hook_mlp_out`` ``MLPl``.
ACDC_CIRCUITS: dict[str, tuple[str, ...]] = {
    "tracr-reverse": (
        "L3H0->logits", "MLP2->L3H0<q>", "embed->L3H0<k>", "embed->L3H0<v>", "MLP1->MLP2", "MLP0->MLP1",
        "embed->MLP1", "L0H0->MLP0", "embed->MLP0", "embed->L0H0<v>"),
    "tracr-frac-prevs": ("L1H0->logits", "embed->L1H0<q>", "embed->L1H0<k>", "MLP0->L1H0<v>", "embed->MLP0"),
}


class TracrReference(Frozen):
    """tracr's own outputs on the reference inputs (computed by tracr at build time)."""

    inputs: list[list[Any]]
    input_ids: list[list[int]]
    decoded: list[list[Any]]
    output: list[list[Any]]  # tracr's unembedded output: argmax ids (categorical) or values (numerical)
    final_residual: list[list[list[float]]]  # [input][position][d_model], tracr's transformer output


class TracrManifest(Frozen):
    """What a compiled tracr model is (``NAME.json`` next to ``NAME.safetensors``).

    The fields ``name``, ``family``, ``description``, ``config``, ``steps``, ``checkpoints``,
    ``bos_token_id``, ``d_vocab``, ``n_ctx``, ``weights_file`` and ``weights_sha256`` mean what they mean
    in :class:`~circuitry.zoo.train.ZooManifest` (``steps`` is 0: nothing was trained). ``components``
    lists the labelled residual subspaces each component reads and writes; ``ground_truth`` the edge
    lists of :mod:`circuitry.zoo.ground_truth` (``subspaces``: what each edge carries).
    """

    kind: Literal["tracr"] = "tracr"
    name: str
    family: Literal["zoo"] = "zoo"
    description: str
    config: dict[str, Any]
    steps: int = 0
    checkpoints: list[Any] = Field(default_factory=list)
    bos_token_id: int
    pad_token_id: int
    d_vocab: int
    n_ctx: int
    weights_file: str
    weights_sha256: str
    tracr: dict[str, Any]
    output_kind: Literal["categorical", "numerical"]
    input_encoding: list[tuple[Any, int]]
    output_values: list[Any] | None
    output_labels: list[str]
    residual_labels: list[str]
    components: dict[str, dict[str, Any]]
    ground_truth: dict[str, Any]
    task: dict[str, Any]
    reference: TracrReference

    @property
    def recipe(self):
        """A tracr model has no training recipe: asking for one (``circuitry zoo train NAME``) raises."""
        raise InputError(f"{self.name} was compiled by tracr from {self.tracr['program']}, not trained, so it has no "
                         "training recipe. Fix: rebuild it with `python -m circuitry.zoo.tracr_build --out DIR` in an "
                         "environment with tracr-pypi (pip install 'circuitry-lab[tracr]'); see docs/zoo.md")


def tracr_manifest(name: str) -> TracrManifest:
    """The manifest of a shipped tracr model (raises :class:`~circuitry.errors.ModelLoadError` for another name)."""
    from circuitry.zoo.registry import zoo_manifest

    m = zoo_manifest(name)
    if not isinstance(m, TracrManifest):
        raise InputError(f"name={name!r} is a trained zoo model, not a tracr model; tracr models: {TRACR_MODELS}")
    return m


def ground_truth(name: str | TracrManifest, *, kind: GroundTruth = "counterfactual") -> list[str]:
    """The ground-truth edges of a tracr model, in circuitry's edge names.

    Parameters
    ----------
    name
        A tracr model's zoo name (``"tracr-reverse"``) or its manifest.
    kind : {"counterfactual", "reads", "acdc"}
        ``"reads"``: every edge whose receiver reads a subspace its sender writes (the compiled circuit;
        the reference for zero or mean ablation). ``"counterfactual"``: the edges of ``"reads"`` that can
        change under patching from a corrupted input of the same length (the reference for circuitry's
        default patching). ``"acdc"``: ACDC's published circuit (reverse and frac-prevs only).

    Examples
    --------
    >>> ground_truth("tracr-reverse")
    ['embed->L3H0<v>', 'L3H0->logits']
    """
    m = name if isinstance(name, TracrManifest) else tracr_manifest(name)
    if kind == "acdc":
        if m.name not in ACDC_CIRCUITS:
            raise InputError(f"kind='acdc': ACDC published circuits for {sorted(ACDC_CIRCUITS)} only, not {m.name!r}")
        return list(ACDC_CIRCUITS[m.name])
    if kind not in ("reads", "counterfactual"):
        raise InputError(f"kind={kind!r}; expected 'counterfactual', 'reads' or 'acdc'")
    return list(m.ground_truth[kind])


def encode(manifest: TracrManifest, tokens: Sequence[Any], *, bos: bool = True) -> list[int]:
    """Token ids of ``tokens`` (values of the program's vocabulary), BOS first unless ``bos=False``."""
    enc = {_key(v): i for v, i in manifest.input_encoding}
    vocab = manifest.tracr["vocab"]
    bad = [t for t in tokens if _key(t) not in enc or t in ("BOS", "compiler_pad")]
    if bad:
        raise InputError(f"tokens {bad[:5]} are not in {manifest.name}'s vocabulary {vocab}. Fix: use those values "
                         "(BOS is prepended for you; padding is not supported)")
    if len(tokens) + bos > manifest.n_ctx:
        raise InputError(f"{len(tokens)} tokens exceed {manifest.name}'s max_seq_len={manifest.n_ctx - 1}")
    return ([manifest.bos_token_id] if bos else []) + [enc[_key(t)] for t in tokens]


def decode(manifest: TracrManifest, logits: torch.Tensor) -> list[list[Any]]:
    """tracr's decoding of ``logits [batch, pos, d_vocab_out]``: per row, ``"BOS"`` then the output
    value at every later position (argmax for a categorical program, the value for a numerical one)."""
    if manifest.output_kind == "numerical":
        vals = logits[..., 0].tolist()
    else:
        vals = [[manifest.output_values[j] for j in row] for row in logits.argmax(-1).tolist()]
    return [["BOS"] + row[1:] for row in vals]


def numerical_output(logits: torch.Tensor, targets) -> torch.Tensor:
    """Metric for a numerical program: the mean over the target positions of the output value
    (``logits[..., 0]``), ``[n]``. A circuitry user metric (``metric(logits, Targets) -> [n]``)."""
    from circuitry.metrics import at_positions

    return at_positions(logits, targets.positions)[..., 0].mean(-1)


def task_pairs(name: str | TracrManifest, *, n: int = 32, seed: int = 0):
    """Clean/corrupted pairs for a tracr model: two random inputs of the task's length each
    (``manifest.task``), the metric positions every non-BOS position.

    Categorical programs get answers (the clean output) and foils (the corrupted output) at every
    position, for ``logit_diff``; numerical programs none (use :func:`numerical_output`). Pairs whose
    outputs are equal everywhere are skipped (nothing to measure).

    Returns
    -------
    circuitry.prompts.PairDataset
    """
    from circuitry.prompts import PairDataset, PromptPair

    m = name if isinstance(name, TracrManifest) else tracr_manifest(name)
    rng = random.Random(seed)
    vocab, length = m.tracr["vocab"], m.task["length"]

    def draw():
        return rng.sample(vocab, length) if m.task["unique"] else [rng.choice(vocab) for _ in range(length)]

    from circuitry.zoo.registry import load_zoo

    model, _ = load_zoo(m.name)
    pairs = []
    while len(pairs) < n:
        a, b = draw(), draw()
        ids = torch.tensor([encode(m, a), encode(m, b)])
        with torch.no_grad():
            out = model(ids)
        if m.output_kind == "numerical":
            if torch.equal(out[0, 1:, 0], out[1, 1:, 0]):
                continue
            pairs.append(PromptPair(clean=tuple(ids[0].tolist()), corrupted=tuple(ids[1].tolist()),
                                    positions=tuple(range(1, length + 1))))
            continue
        ans, foil = out[0, 1:].argmax(-1).tolist(), out[1, 1:].argmax(-1).tolist()
        if ans == foil:
            continue
        pairs.append(PromptPair(clean=tuple(ids[0].tolist()), corrupted=tuple(ids[1].tolist()),
                                positions=tuple(range(1, length + 1)), answers=tuple(ans), foils=tuple(foil)))
    return PairDataset(task=f"{m.name}", pairs=tuple(pairs), seed=seed,
                       params={"n": n, "length": length, "program": m.tracr["program"]},
                       metric="logit_diff" if m.output_kind == "categorical" else None)


def _key(v: Any) -> str:
    """A hashable key that keeps 1 and "1" (and True and 1) apart."""
    return f"{type(v).__name__}:{v}"
