"""circuitry: causal circuit discovery in transformer language models.

Nothing heavy happens at import: submodules are imported on first use.
"""

from circuitry._version import __version__
from circuitry.errors import CircuitryError, InputError

__all__ = ["__version__", "CircuitryError", "InputError"]
