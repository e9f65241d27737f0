"""Candidates, constant fitting, scoring, the search run and its run directory, engines.

The package is callable: ``evopot.search(config)`` is :func:`evopot.search.run.search`.
"""

import sys
import types


class _CallableModule(types.ModuleType):
    def __call__(self, config, **kwargs):
        from evopot.search.run import search

        return search(config, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
