"""The header every exported file carries: formula, constants, version, date, units."""

from __future__ import annotations

import datetime

import sympy

from evopot.model.potential import Potential
from evopot.version import __version__


def header_lines(potential: Potential, what: str) -> list[str]:
    """Comment lines (without the comment character) describing ``potential`` and what
    the file holds (``what``)."""
    lines = [
        f"evopot {__version__} export, {datetime.date.today().isoformat()}: {what}",
        "units metal (energy eV, distance Angstrom, force eV/Angstrom)",
        f"species {' '.join(potential.species)}; cutoff {potential.cutoff.kind} "
        f"{potential.cutoff.onset:g}-{potential.cutoff.radius:g} A",
    ]
    for k, term in enumerate(potential.terms):
        species = "all" if term.species is None else "-".join(term.species)
        lines.append(f"term {k} {term.kind} [{species}]: {sympy.sstr(term.expression)}")
        if term.density is not None:
            lines.append(f"term {k} density f(r): {sympy.sstr(term.density)}")
        if term.constants:
            lines.append(
                f"term {k} constants: " + ", ".join(f"{name}={value:.12g}" for name, value in term.constants.items())
            )
        if term.cutoff is not None:
            lines.append(f"term {k} cutoff {term.cutoff.kind} {term.cutoff.onset:g}-{term.cutoff.radius:g} A")
    return lines
