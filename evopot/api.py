"""The Python API: ``evopot.search(config)`` and what it returns.

:func:`search` is :func:`evopot.search.run.search` with a result that also makes an
ASE calculator of any front member (which the search stage itself cannot: the MD
engine comes after it in the flow).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from evopot.md.calculator import EvopotCalculator
from evopot.search import run


@dataclass
class SearchResult(run.SearchResult):
    """:class:`evopot.search.run.SearchResult` (front, ``recommended()``, ``best()``,
    ``member()``, ``sympy()``, ``latex()``) and :meth:`calculator`."""

    def calculator(self, member: int | None = None, **options) -> EvopotCalculator:
        """An ASE calculator of front ``member`` (default: the recommended one);
        ``options`` (``device``, ``dtype``, …) go to :class:`EvopotCalculator`."""
        return EvopotCalculator(self.member(member).potential, **options)


def search(config, **options) -> SearchResult:
    """Run (or resume) a search; see :func:`evopot.search.run.search` for ``options``
    (``resume``, ``overwrite``, ``progress``, ``train``, ``validation``, ``test``)."""
    result = run.search(config, **options)
    return SearchResult(**{f.name: getattr(result, f.name) for f in fields(result)})
