"""Upper bounds on every count a user sets, in one place (``docs/errors/LimitError.md``).

Each bound says what sets it: *time* (the work grows linearly with the count, and past the bound a run
would take days on the machines circuitry targets, with no statistical gain) or *memory* (checked against
the machine's available memory where the work is planned; see :mod:`circuitry.io`). Commands and file
schemas import them from here, so a claim file and the command line accept the same counts.
"""

#: time: one ablated forward pass per random head set; 1,000,000 resolve a p-value to 1e-6
MAX_DRAWS = 1_000_000
#: time: a patched forward pass per random circuit or ranking; 10,000 resolve p-values to 1e-4
MAX_RANDOM = 10_000
#: time: a bootstrap mean per resample; 100,000 fix a 95 % interval's ends to ~0.1 %
MAX_RESAMPLES = 100_000
#: time: a forward pass per prompt pair and site; memory is checked separately, per model
MAX_PROMPTS = 100_000
#: time: a forward pass per sequence and detector
MAX_SAMPLES = 1000
