"""Pair terms → ``pair_style table`` files.

One keyword section per species pair, ``N`` points evenly spaced in r between the
inner limit and the cutoff (``R rlo rhi``), columns ``index r energy force`` with
energy = Σ V(r)·fc(r) over the pair terms acting on that pair and force = −dE/dr
(exact symbolic derivative, cutoff function included). LAMMPS stops with "Pair
distance < table inner cutoff" when two atoms come closer than the inner limit, so
the inner limit must lie below any distance a simulation will meet.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations_with_replacement
from pathlib import Path

import numpy as np

from evopot.errors import EvopotError
from evopot.model.evaluate import pair_curve
from evopot.model.potential import Potential


@dataclass(frozen=True)
class TableSection:
    """One keyword section: species pair, keyword and the outer cutoff (Å)."""

    species: tuple[str, str]
    keyword: str
    cutoff: float


def write_pair_tables(
    potential: Potential, path: Path, inner: float, points: int, header: list[str]
) -> list[TableSection]:
    """Write every species pair's tabulated pair energy and force to ``path``.

    ``inner`` (Å) is the first tabulated distance, ``points`` the number of rows; the
    table ends at the potential's neighbour radius (:attr:`Potential.reach`: a term's own
    cutoff may reach past the potential's). Raises :class:`EvopotError` when the
    energy or force is not finite somewhere on [inner, cutoff] (then choose a larger
    ``inner``)."""
    radius = potential.reach
    if not 0 < inner < radius:
        raise EvopotError(
            f"table inner limit {inner} Å must lie between 0 and the cutoff radius {radius} Å (option --inner)"
        )
    r = np.linspace(inner, radius, points)
    lines = [f"# {line}" for line in header]
    lines.append(f"# pair_style table spline {points}; inner limit {inner:.6g} A (LAMMPS stops if atoms come closer)")
    sections = []
    for pair in combinations_with_replacement(potential.species, 2):
        energy, slope = pair_curve(potential, pair, r)
        if not (np.all(np.isfinite(energy)) and np.all(np.isfinite(slope))):
            bad = r[~(np.isfinite(energy) & np.isfinite(slope))]
            raise EvopotError(
                f"pair {'-'.join(pair)}: energy or force is not finite at r = {bad[0]:.4g} Å; choose an "
                f"inner limit above it (option --inner)"
            )
        keyword = f"EVOPOT_{pair[0]}_{pair[1]}"
        lines += ["", keyword, f"N {points} R {inner:.12g} {radius:.12g}", ""]
        lines += [f"{k + 1} {x:.12g} {e:.16e} {-f:.16e}" for k, (x, e, f) in enumerate(zip(r, energy, slope))]
        sections.append(TableSection(pair, keyword, radius))
    path.write_text("\n".join(lines) + "\n")
    return sections
