"""``python -m circuitry``: the same as the ``circuitry`` command."""

import sys

from circuitry.cli import main

sys.exit(main())
