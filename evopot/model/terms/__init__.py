"""The registry of term kinds: one module per kind, each a :class:`TermKind`.

``KINDS`` maps a kind's name to its object; :func:`term_kind` looks one up with an
error that names where the name came from. A new kind is a module here with a
:class:`TermKind` subclass, registered below (docs/extending.md).
"""

from __future__ import annotations

from evopot.errors import EvopotError
from evopot.model.terms.base import Bonds, Prediction, Slot, TermKind
from evopot.model.terms.bondorder import BONDORDER
from evopot.model.terms.embedding import EMBEDDING
from evopot.model.terms.pair import PAIR
from evopot.model.terms.threebody import THREEBODY

KINDS: dict[str, TermKind] = {kind.name: kind for kind in (PAIR, THREEBODY, EMBEDDING, BONDORDER)}


def term_kind(name: str, where: str = "term") -> TermKind:
    """The registered kind called ``name``; an error naming ``where`` otherwise."""
    kind = KINDS.get(name) if isinstance(name, str) else None
    if kind is None:
        raise EvopotError(f"{where}: term kind '{name}' is unknown; known kinds: {sorted(KINDS)}")
    return kind


__all__ = [
    "KINDS",
    "Bonds",
    "Prediction",
    "Slot",
    "TermKind",
    "term_kind",
    "PAIR",
    "THREEBODY",
    "EMBEDDING",
    "BONDORDER",
]
