"""Candidates, constant fitting, scoring, the search run and its run directory, engines.

``evopot.search(config)`` (the package is callable; see :mod:`evopot.api`) runs
:func:`evopot.search.run.search` and returns its result with an ASE calculator.
"""
