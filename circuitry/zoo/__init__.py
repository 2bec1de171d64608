"""The zoo: circuitry's own small trained models, shipped inside the package so everything works offline.

>>> from circuitry.zoo import list_zoo, load_zoo
>>> model, manifest = load_zoo("attn-only-2l")   # verified against the manifest's sha256

Modules: :mod:`~circuitry.zoo.arch` (the architecture), :mod:`~circuitry.zoo.corpus` (the deterministic
corpus), :mod:`~circuitry.zoo.train` (recipes, training, probes, manifests), :mod:`~circuitry.zoo.registry`
(listing and loading), :mod:`~circuitry.zoo.cli` (``circuitry zoo``). Importing this package imports
no torch; :func:`load_zoo` does, when called.
"""

from circuitry.zoo.registry import CHECKPOINT_DIR, list_zoo, load_zoo, zoo_manifest

__all__ = ["CHECKPOINT_DIR", "list_zoo", "load_zoo", "zoo_manifest"]
