"""What ``discover`` measures after its search, on request: whether each edge's verdict survives other
ablations and metrics (``--sensitivity``, :mod:`circuitry.discovery.sensitivity`) and which heads take over
when the circuit's heads are gone (``--backup``, :mod:`circuitry.discovery.backup`).

Both land in :class:`~circuitry.discovery.report.DiscoveryReport` (``discovery.json``, the printed summary
and ``report.html``) and in their own files (``sensitivity.json``, ``backup.json``).

Choices named here:

- ``--backup auto`` takes as main heads every attention head that is a sender or a receiver of the kept
  circuit of the first per-edge method (exact, else EAP-IG, else EAP; a key/value group node counts as no
  head: its query heads appear through their own Q edges);
- heads are ablated as wholes (:func:`circuitry.interventions.ablation.head_set_effect_fn`), so the edge
  ablation maps to a head ablation: ``zero`` -> zero, ``resample`` -> resample, and ``mean``,
  ``mean-positional`` and ``counterfactual`` -> mean (per position over the task's clean prompts). A head
  patched from its corrupted run is not a co-ablation: the corrupted run's head already sees the other
  heads' corrupted outputs.
"""

from __future__ import annotations

import re
from typing import Sequence

from circuitry.errors import InputError, bad_value

_HEAD = re.compile(r"^L(\d+)H(\d+)$")
#: the head ablation a backup-head search uses for each edge ablation (module docstring)
HEAD_ABLATION = {"zero": "zero", "resample": "resample", "mean": "mean", "mean-positional": "mean",
                 "counterfactual": "mean"}
#: the per-edge methods, in the order ``--backup auto`` and ``--sensitivity`` take the first of
PER_EDGE = ("exact", "eap-ig", "eap")


def first_per_edge(methods: Sequence[str]) -> str | None:
    """The first of :data:`PER_EDGE` that ran (``None``: only ACDC or greedy)."""
    return next((m for m in PER_EDGE if m in methods), None)


def circuit_heads(edge_names: Sequence[str], kept: Sequence[bool]) -> list[str]:
    """The attention heads among the senders and receivers of the kept edges, in layer-head order."""
    heads = set()
    for name, k in zip(edge_names, kept):
        if k:
            src, dst = name.split("->")
            for node in (src, dst.split("<")[0]):
                if _HEAD.match(node):
                    heads.add(node)
    return sorted(heads, key=lambda h: tuple(int(x) for x in _HEAD.match(h).groups()))


def parse_backup(spec: str | None, model) -> list[str] | str | None:
    """``--backup``: ``None`` (off), ``"auto"``, or a comma-separated list of heads of ``model``."""
    if spec is None or spec == "auto":
        return spec
    from circuitry.labels import head_label, parse_head

    heads = []
    for h in (x.strip() for x in spec.split(",")):
        try:
            layer, head = parse_head(h)
        except InputError:  # name the option, not the label parser
            raise bad_value("--backup", spec, "auto or heads like L1H0,L1H2", "e.g. --backup auto") from None
        if not (0 <= layer < model.info.n_layers and 0 <= head < model.info.n_heads):
            raise bad_value("--backup", h, f"a head of {model.model_id} (L0..L{model.info.n_layers - 1}, "
                            f"H0..H{model.info.n_heads - 1})", "e.g. --backup auto")
        heads.append(head_label(layer, head))
    if len(set(heads)) != len(heads) or len(heads) == model.info.n_layers * model.info.n_heads:
        raise bad_value("--backup", spec, "distinct heads, not every head of the model", "e.g. --backup auto")
    return heads


def run_backup(model, data, scores, spec: list[str] | str, *, ablation: str, metric: str, alpha: float,
               min_share: float, seed: int):
    """The :class:`~circuitry.discovery.backup.BackupReport` for ``spec`` (``"auto"``: the kept circuit's heads
    of the first per-edge method in ``scores``), or ``(None, why)`` when there is nothing to co-ablate."""
    from circuitry.discovery.backup import backup_heads

    if spec == "auto":
        by = {s.method: s for s in scores}
        first = first_per_edge(list(by))
        if first is None:
            return None, "--backup auto needs a per-edge method (exact, eap-ig or eap) to pick the circuit's heads"
        main = circuit_heads(by[first].edges, by[first].in_circuit)
        if not main:
            return None, f"the kept {first} circuit holds no attention head, so there are no main heads to ablate"
    else:
        main = list(spec)
    n_all = model.info.n_layers * model.info.n_heads
    if len(main) >= n_all:
        return None, "the kept circuit holds every head: no other head is left to test as a backup"
    rep = backup_heads(model, data, main, ablation=HEAD_ABLATION[ablation], metric=metric, alpha=alpha,
                       min_share=min_share, seed=seed)
    return rep, None
