"""evopot: discover interatomic potentials as short, readable formulas.

import evopot
result = evopot.search("config.yaml")      # or a SearchConfig, or frames in memory
print(result.sympy())
atoms.calc = evopot.EvopotCalculator("runs/x/potentials/member_003.json")
"""

import types

from evopot import search  # the subpackage; calling it runs a search (evopot.api.search)
from evopot.version import __version__


class _CallableModule(types.ModuleType):
    def __call__(self, config, **options):
        from evopot.api import search as run_search

        return run_search(config, **options)


search.__class__ = _CallableModule

__all__ = ["search", "Potential", "EvopotCalculator", "__version__"]


def __getattr__(name):
    # imported on first use: `import evopot` stays light (no torch)
    if name == "Potential":
        from evopot.model.potential import Potential

        return Potential
    if name == "EvopotCalculator":
        from evopot.md.calculator import EvopotCalculator

        return EvopotCalculator
    raise AttributeError(f"module 'evopot' has no attribute {name!r}")
