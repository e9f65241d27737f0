"""Crystal properties of a potential, cheaply enough to judge formulas during a search.

For one element's cubic crystal (ASE's reference structure, 8 atoms for diamond):

- a₀ and the bulk modulus B from an energy–volume scan of 7 cells over ±6 % in volume
  (a cubic polynomial in V) centred on the potential's own minimum: a scan whose lowest
  energy lies at an end moves there, twice as wide, until the minimum is inside (at
  most :data:`TRIES` scans), as ``evopot validate`` does;
- C11, C11 + C12 and the clamped-ion C44⁰ from second differences of the energy under
  ±:data:`STRAIN` uniaxial, biaxial and shear strains at that a₀ (normal strains of a
  cubic crystal move no atom off its site; the DFT shear frames of the mlearn data are
  clamped too), and the relaxed C44 with diamond's internal displacement minimised
  from two more energies per shear (Born stability, :func:`stable`, needs it > 0).

Each group of cells is one :class:`Geometry`, evaluated in one call: a few milliseconds
for a Stillinger–Weber-sized formula. ``evopot validate`` (relaxed atoms, ASE's
Birch–Murnaghan fit) is the thorough check; these agree with it to a few tenths of a
per cent for a₀ and a few per cent for the constants (tests).

A search steers its front with :func:`penalty`: the mean over the reference's
properties of (relative error / tolerance)², a property the potential has no value for
(a crystal it does not bind) counting :data:`MISSING`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from ase import units

from evopot.data.crystal_reference import PROPERTY_UNITS, crystal
from evopot.data.dataset import unlabelled
from evopot.errors import EvopotError
from evopot.model.evaluate import evaluate, potential_geometry
from evopot.model.potential import Potential

#: strain of the elastic cells (tensor component)
STRAIN = 0.01
#: half-width of the energy–volume scan, as a fraction of the volume
SPAN = 0.06
POINTS = 7
#: scans of the energy–volume curve (moving and widening towards its lowest end) before giving up
TRIES = 6
#: lattice constants, relative to a₀, at which the crystal must not be lower in energy than at a₀
WIDE = np.array([0.8, 0.9, 1.15, 1.3, 1.45, 1.6])
#: by more than this (eV/atom)
DEEPER = 1e-3
#: displacement (Å) of diamond's second sublattice for the relaxed C44
SHIFT = 0.01
#: default tolerances: relative errors that count as one unit of penalty
TOLERANCES = {"a0": 0.01, "B": 0.15, "C11": 0.15, "C12": 0.15, "C44": 0.15, "C44 unrelaxed": 0.15}
#: the penalty of a property the potential has no value for, in (error/tolerance)²
MISSING = 100.0


def _energies(potential: Potential, cells: list) -> np.ndarray:
    """Energies (eV) of ``cells`` in one evaluation; inf where not finite."""
    with np.errstate(all="ignore"):
        energies = evaluate(potential, potential_geometry(potential, unlabelled(cells))).energies
    return np.where(np.isfinite(energies), energies, np.inf)


def _scaled(prototype, scales) -> list:
    cells = []
    for s in scales:
        cell = prototype.copy()
        cell.set_cell(prototype.cell.array * s ** (1 / 3), scale_atoms=True)
        cells.append(cell)
    return cells


def equilibrium(potential: Potential, element: str, a: float | None = None) -> tuple[float, float] | None:
    """(a₀ Å, B GPa) of ``element``'s cubic crystal under ``potential``, scanning from
    lattice constant ``a`` (default ASE's); None when no minimum is found, or when the
    crystal is lower in energy at one of the lattice constants :data:`WIDE` × a₀ (it
    would expand or collapse)."""
    prototype = crystal(element, a)
    n = len(prototype)
    centre, width = 1.0, SPAN
    for _ in range(TRIES):
        scales = centre * np.linspace(1 - width, 1 + width, POINTS)
        energies = _energies(potential, _scaled(prototype, scales)) / n
        lowest = int(np.argmin(energies))
        if not np.isfinite(energies[lowest]):
            return None
        inside = 0 < lowest < POINTS - 1
        if inside and width == SPAN and abs(scales[lowest] / centre - 1) <= SPAN / 2:
            break
        centre = scales[lowest]  # found far off centre: scan narrowly around it; at an end: move, wider
        width = SPAN if inside else min(2 * width, 0.45)
        if not 0.2 < centre < 8:
            return None
    else:
        return None
    v = scales * prototype.get_volume() / n
    if not np.all(np.isfinite(energies)):
        return None
    polynomial = np.polynomial.Polynomial.fit(v, energies, 3)
    slope, curvature = polynomial.deriv(), polynomial.deriv(2)
    roots = [r.real for r in slope.roots() if abs(r.imag) < 1e-12 and v[0] <= r.real <= v[-1] and curvature(r.real) > 0]
    if not roots:
        return None
    v0 = min(roots, key=polynomial)
    # the minimum found must be the crystal's lowest energy from compressed to expanded: a
    # potential whose crystal gains energy by flying apart (or collapsing) has no a₀ worth the name
    a0 = float((v0 * n) ** (1 / 3))
    elsewhere = _energies(potential, _scaled(crystal(element, a0), WIDE**3)) / n
    if np.any(elsewhere < polynomial(v0) - DEEPER):
        return None
    return a0, float(v0 * curvature(v0) / units.GPa)


def elastic_constants(potential: Potential, element: str, a0: float) -> dict[str, float]:
    """C11, C12, the clamped-ion C44⁰ and the relaxed C44 (GPa) at lattice constant
    ``a0`` from second differences of the energy under ±:data:`STRAIN`. Normal strains
    of a cubic crystal move no atom off its site; a shear ε_xy moves diamond's second
    sublattice along z (Kleinman's internal strain): the relaxed C44 minimises the
    energy of that displacement, from its first and second differences at ±:data:`SHIFT`
    (a crystal unstable against that displacement gets C44 = 0). Crystals
    of one atom per primitive cell (fcc, bcc, sc) have C44 = C44⁰."""
    prototype = crystal(element, a0)
    volume = prototype.get_volume()
    strains = []
    for pattern in ("uniaxial", "biaxial", "shear"):
        for sign in (1, -1):
            e = np.zeros((3, 3))
            if pattern == "uniaxial":
                e[0, 0] = sign * STRAIN
            elif pattern == "biaxial":
                e[0, 0] = e[1, 1] = sign * STRAIN
            else:
                e[0, 1] = e[1, 0] = sign * STRAIN
            strains.append(e)
    cells = [prototype.copy()]
    for e in strains:
        cell = prototype.copy()
        cell.set_cell(prototype.cell.array @ (np.eye(3) + e).T, scale_atoms=True)
        cells.append(cell)
    second_sublattice = _second_sublattice(prototype)
    relaxing = second_sublattice is not None
    if relaxing:  # the unstrained and the two sheared cells with the second sublattice moved ±SHIFT along z
        for cell in (cells[0], cells[5], cells[6]):
            for sign in (1, -1):
                moved = cell.copy()
                moved.positions[second_sublattice, 2] += sign * SHIFT
                cells.append(moved)
    energies = _energies(potential, cells)
    second = [(energies[1 + 2 * k] + energies[2 + 2 * k] - 2 * energies[0]) / (volume * STRAIN**2) for k in range(3)]
    # E/V = ½·C11·ε² (uniaxial), (C11 + C12)·ε² (biaxial), 2·C44·ε² (shear ε_xy = ε_yx = ε)
    c11 = second[0] / units.GPa
    c12 = second[1] / 2 / units.GPa - c11
    c44 = second[2] / 4 / units.GPa
    relaxed = c44
    if relaxing:
        lowest = []
        for k, centre in enumerate((0, 5, 6)):
            up, down, here = energies[7 + 2 * k], energies[8 + 2 * k], energies[centre]
            slope, curvature = (up - down) / (2 * SHIFT), (up + down - 2 * here) / SHIFT**2
            lowest.append(here - slope**2 / (2 * curvature) if curvature > 0 else -np.inf)
        with np.errstate(invalid="ignore"):
            relaxed = (lowest[1] + lowest[2] - 2 * lowest[0]) / (volume * STRAIN**2) / 4 / units.GPa
        relaxed = relaxed if np.isfinite(relaxed) else 0.0  # no resistance left: unstable
    return {"C11": float(c11), "C12": float(c12), "C44": float(relaxed), "C44 unrelaxed": float(c44)}


def _second_sublattice(prototype) -> np.ndarray | None:
    """Indices of diamond's second fcc sublattice (fractional coordinates ≡ ¼ mod ½) in
    its conventional cell, or None for a crystal without one."""
    fractional = prototype.get_scaled_positions() % 0.5
    second = np.all(np.abs(fractional - 0.25) < 1e-6, axis=1)
    return np.flatnonzero(second) if 0 < second.sum() < len(prototype) else None


def stable(values: dict[str, float]) -> bool:
    """Born's conditions for a cubic crystal: C11 − C12 > 0, C11 + 2·C12 > 0, C44 > 0
    (relaxed, where known)."""
    if not {"C11", "C12"} <= values.keys():
        return False
    c44 = values.get("C44", values.get("C44 unrelaxed", 0.0))
    return values["C11"] - values["C12"] > 0 and values["C11"] + 2 * values["C12"] > 0 and c44 > 0


def crystal_properties(potential: Potential, element: str, a: float | None = None) -> dict[str, float]:
    """a₀ (Å), B, C11, C12, C44 (relaxed) and C44⁰ (GPa) of ``element``'s crystal under ``potential``;
    empty when it does not bind the crystal (or cannot be evaluated on it)."""
    try:
        found = equilibrium(potential, element, a)
        if found is None:
            return {}
        a0, modulus = found
        values = {"a0": a0, "B": modulus, **elastic_constants(potential, element, a0)}
    except (EvopotError, FloatingPointError, ValueError, np.linalg.LinAlgError):
        return {}
    return {k: v for k, v in values.items() if np.isfinite(v)}


def relative_errors(values: dict[str, float], reference: dict[str, float]) -> dict[str, float]:
    """(value − reference)/|reference| per property of ``reference``; nan where the
    potential has no value."""
    return {k: (values[k] - ref) / abs(ref) if k in values else float("nan") for k, ref in reference.items() if ref}


def penalty(values: dict[str, float], reference: dict[str, float], tolerances: dict[str, float]) -> float:
    """Mean over ``reference``'s properties of (relative error / tolerance)², each at most
    :data:`MISSING` and a missing value (no crystal) counting :data:`MISSING`; 0 when
    there is no reference. A crystal that is bound but not :func:`stable` (it falls
    apart under a shear) scores between ½·:data:`MISSING` and :data:`MISSING`, graded by
    that mean: worse than any stable crystal within a few tolerances, yet still ranked,
    so a search whose formulas are all unstable is steered towards the least wrong."""
    errors = relative_errors(values, reference)
    if not errors:
        return 0.0
    terms = [
        MISSING if not np.isfinite(err) else min((err / tolerances.get(k, TOLERANCES.get(k, 0.15))) ** 2, MISSING)
        for k, err in errors.items()
    ]
    mean = float(np.mean(terms))
    if {"C11", "C12"} <= values.keys() and not stable(values):
        return 0.5 * MISSING + 0.5 * mean
    return mean


@dataclass(frozen=True)
class PropertyTarget:
    """What a search steers its front towards: ``element``'s crystal properties
    ``reference`` (a subset of a0, B, C11, C12, C44, "C44 unrelaxed"), each error measured
    in ``tolerances``, weighted by ``weight``; ``source`` says where the values came from."""

    element: str
    reference: dict[str, float]
    weight: float = 1.0
    tolerances: dict[str, float] = field(default_factory=dict)
    source: str = ""

    def judge(self, potential: Potential) -> tuple[dict[str, float], float]:
        """The potential's properties and its penalty, ``weight`` × :func:`penalty`."""
        values = crystal_properties(potential, self.element, self.reference.get("a0"))
        return values, self.weight * penalty(values, self.reference, self.tolerances)

    def describe(self) -> str:
        shown = ", ".join(f"{k} {v:.4g} {PROPERTY_UNITS[k]}" for k, v in self.reference.items())
        return f"{self.element} crystal: {shown} (weight {self.weight:g}; {self.source})"


def crystal_comparison(values: dict[str, float], target: PropertyTarget) -> str:
    """One line: each property of ``values`` against ``target``'s reference."""
    if not values:
        return (
            f"{target.element} crystal: no stable crystal near DFT's (no energy minimum, or a lower energy at "
            f"0.8–1.6 × its lattice constant)"
        )
    parts = []
    for name, value in values.items():
        text = f"{name} {value:.4g} {PROPERTY_UNITS[name]}"
        reference = target.reference.get(name)
        if reference:
            text += f" (DFT {reference:.4g}, {value / reference - 1:+.1%})"
        parts.append(text)
    unstable = "" if stable(values) else " — not Born-stable"
    return f"{target.element} crystal: " + ", ".join(parts) + unstable
