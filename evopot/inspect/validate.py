"""``evopot validate POTENTIAL --reference DATA``: does the potential behave physically?

Checks, each printed as a line of a pass/fail table and drawn where a picture helps:

- energy–volume curve of the ground-state crystal (ASE's reference structure of the
  element), lattice constant a₀ and bulk modulus B from a Birch–Murnaghan fit, against
  the same fit to the DFT frames of type Elastic when the data has them;
- cubic elastic constants C11, C12, C44 by ±0.5 % finite strains with relaxed atoms;
- energy drift of a short NVE run, and stability of a Langevin run at twice the
  highest temperature named in the data (``… at 1518 K`` in a frame's description);
- the radial distribution function from MD at an AIMD temperature of the data against
  the RDF of the DFT frames at that temperature.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms, units
from ase.eos import EquationOfState
from scipy.integrate import trapezoid

from evopot.data.crystal_reference import crystal, dft_elastic_constants, dft_equation_of_state
from evopot.data.dataset import read_frames, unlabelled
from evopot.data.geometry import build_geometry
from evopot.errors import EvopotError
from evopot.md.calculator import EvopotCalculator
from evopot.md.dynamics import MolecularDynamics, thermalized
from evopot.md.forcefield import ForceField
from evopot.model.potential import Potential

TEMPERATURE = re.compile(r"(\d+(?:\.\d+)?)\s*K\b")


@dataclass
class Check:
    name: str
    value: float | None
    reference: float | None
    unit: str
    passed: bool | None  # None: reported only
    note: str = ""

    def __post_init__(self):
        if self.passed is not None:  # NumPy's bool_ is not False even when false
            self.passed = bool(self.passed)

    def row(self) -> list[str]:
        value = "—" if self.value is None else f"{self.value:.4g}"
        reference = "—" if self.reference is None else f"{self.reference:.4g}"
        verdict = {True: "pass", False: "FAIL", None: "info"}[self.passed]
        return [self.name, value, reference, self.unit, verdict, self.note]


@dataclass
class Validation:
    checks: list[Check] = field(default_factory=list)
    figures: list[Path] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(c.passed is not False for c in self.checks)

    def table(self) -> str:
        rows = [["check", "evopot", "reference", "unit", "result", "note"]] + [c.row() for c in self.checks]
        widths = [max(len(r[k]) for r in rows) for k in range(5)]
        return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r[:5], widths)) + "  " + r[5] for r in rows)


def equation_of_state(atoms, calculator, span: float = 0.06, points: int = 11, tries: int = 8):
    """Volumes (Å³/atom), energies (eV/atom) of isotropically scaled ``atoms`` and the
    fitted (V₀ Å³/atom, E₀ eV/atom, B GPa), on a scan of ±``span`` in volume centred
    on the potential's own minimum: a scan whose lowest energy lies at an end moves
    there, twice as wide, until the minimum is inside; the fit's scan is then the
    narrow one centred on it. An error when no minimum is found (the crystal is not
    bound)."""
    centre, width, tried = 1.0, span, []
    for _ in range(tries):
        scales = centre * np.linspace(1 - width, 1 + width, points)
        volumes, energies = _scan(atoms, calculator, scales)
        tried.append((volumes[0], volumes[-1]))
        lowest = int(np.argmin(energies))
        if not np.isfinite(energies[lowest]):
            break
        inside = 0 < lowest < points - 1
        if inside and width == span and abs(scales[lowest] / centre - 1) <= span / 2:
            v0, e0, b = EquationOfState(volumes, energies, eos="birchmurnaghan").fit()
            return np.array(volumes), np.array(energies), (v0, e0, b / units.GPa)
        centre = scales[lowest]
        width = span if inside else min(2 * width, 0.45)  # found: centre the narrow scan on it
        if not 0.2 < centre < 8:
            break
    low, high = min(v for v, _ in tried), max(v for _, v in tried)
    raise EvopotError(
        f"no energy minimum of the {atoms.get_chemical_formula()} crystal between {low:.3g} and {high:.3g} Å³/atom: "
        f"the potential does not bind it"
    )


def _scan(atoms, calculator, scales) -> tuple[list[float], list[float]]:
    """Volumes (Å³/atom) and energies (eV/atom, inf where not finite) of ``atoms``
    scaled isotropically by each volume factor of ``scales``."""
    volumes, energies = [], []
    for s in scales:
        scaled = atoms.copy()
        scaled.set_cell(atoms.cell.array * s ** (1 / 3), scale_atoms=True)
        scaled.calc = calculator
        volumes.append(scaled.get_volume() / len(scaled))
        try:
            energy = scaled.get_potential_energy() / len(scaled)
        except EvopotError:
            energy = np.inf
        energies.append(energy if np.isfinite(energy) else np.inf)
    return volumes, energies


def cubic_elastic_constants(atoms, calculator, strain: float = 0.005, fmax: float | None = 1e-5) -> dict[str, float]:
    """C11, C12, C44 (GPa) from central differences of the stress under ±``strain``
    (normal xx, shear yz), with the atoms relaxed at each strain (``fmax`` None: not
    relaxed, the clamped-ion constants)."""
    from ase.optimize import BFGS

    def stress(deformation):
        strained = atoms.copy()
        strained.set_cell(atoms.cell.array @ deformation.T, scale_atoms=True)
        strained.calc = calculator
        if fmax is not None:
            BFGS(strained, logfile=None).run(fmax=fmax, steps=500)
        return strained.get_stress(voigt=False)

    normal, shear = np.zeros((3, 3)), np.zeros((3, 3))
    normal[0, 0] = strain
    shear[1, 2] = shear[2, 1] = strain
    dn = stress(np.eye(3) + normal) - stress(np.eye(3) - normal)
    ds = stress(np.eye(3) + shear) - stress(np.eye(3) - shear)
    to_gpa = 1 / units.GPa
    # the shear deformation has ε_yz = strain, an engineering shear γ = 2·strain
    return {
        "C11": dn[0, 0] / (2 * strain) * to_gpa,
        "C12": dn[1, 1] / (2 * strain) * to_gpa,
        "C44": ds[1, 2] / (4 * strain) * to_gpa,
    }


def radial_distribution(frames: list, r_max: float = 5.0, bins: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """g(r) averaged over ``frames`` (ase.Atoms, periodic): bin centres (Å) and g."""
    geometry = build_geometry(unlabelled(frames), r_max)
    edges = np.linspace(0, r_max, bins + 1)
    counts = np.histogram(geometry.pair_distances, edges)[0] * 2.0  # half list: each pair once
    density = np.mean([len(a) / a.get_volume() for a in frames])
    atoms = sum(len(a) for a in frames)
    shells = 4 / 3 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    return 0.5 * (edges[1:] + edges[:-1]), counts / (atoms * density * shells)


def dimer_curve(potential: Potential, element: str, r: np.ndarray) -> np.ndarray:
    """Energy (eV) of two ``element`` atoms at each distance of ``r`` (Å), isolated in
    vacuum, less twice the isolated atom's."""
    pairs = [Atoms(element * 2, positions=[(0, 0, 0), (d, 0, 0)], cell=[40] * 3, pbc=False) for d in r]
    return np.array([_energy(potential, atoms) for atoms in pairs]) - 2 * isolated_energy(potential, element)


def isolated_energy(potential: Potential, element: str) -> float:
    """Energy (eV) of one ``element`` atom alone in vacuum."""
    return _energy(potential, Atoms(element, positions=[(0, 0, 0)], cell=[40] * 3, pbc=False))


def _energy(potential: Potential, atoms) -> float:
    atoms.calc = EvopotCalculator(potential)
    return float(atoms.get_potential_energy())


def frame_temperature(description: str) -> float | None:
    match = TEMPERATURE.search(description or "")
    return float(match.group(1)) if match else None


def validate(
    potential: Potential,
    reference: str | Path,
    output: str | Path,
    steps: int = 2000,
    seed: int = 0,
    progress: bool = False,
) -> Validation:
    """Run every check of ``potential`` against the DFT frames in ``reference``; figures
    go to ``output``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frames = read_frames(reference)
    missing = sorted(set(frames.species) - set(potential.species))
    if missing:
        raise EvopotError(
            f"{reference}: the reference data has species {missing} that the potential "
            f"({', '.join(potential.species)}) does not describe"
        )
    if len(frames.species) != 1:
        raise EvopotError(f"{reference}: validate's crystal checks need one element; the data has {frames.species}")
    element = frames.species[0]
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    result = Validation()
    calculator = EvopotCalculator(potential)

    # energy–volume curve and lattice constant
    prototype = crystal(element)
    reference_a0, reference_b, ground = dft_equation_of_state(frames, len(prototype))
    try:
        volumes, energies, (v0, e0, modulus) = equation_of_state(prototype, calculator)
    except EvopotError as exc:
        result.checks.append(Check("lattice constant a0", None, reference_a0, "Å", False, str(exc)))
        (output / "validation.txt").write_text(result.table() + "\n")
        return result
    a0 = (v0 * len(prototype)) ** (1 / 3)
    figure, axis = plt.subplots(figsize=(5, 3.6))
    axis.plot(volumes, energies - e0, "o-", label="evopot")
    if ground is not None:
        axis.plot(*ground, "s", label="DFT")
    axis.set_xlabel("volume (Å³/atom)")
    axis.set_ylabel("energy − E₀ (eV/atom)")
    axis.set_title(f"{element} {prototype.info.get('crystal', '')} energy–volume".strip())
    axis.legend()
    figure.tight_layout()
    figure.savefig(output / "energy_volume.png", dpi=110)
    plt.close(figure)
    result.figures.append(output / "energy_volume.png")
    result.checks.append(
        Check(
            "lattice constant a0",
            a0,
            reference_a0,
            "Å",
            None if reference_a0 is None else abs(a0 / reference_a0 - 1) < 0.01,
            "within 1 % of DFT",
        )
    )
    result.checks.append(
        Check(
            "bulk modulus B",
            modulus,
            reference_b,
            "GPa",
            None if reference_b is None else abs(modulus / reference_b - 1) < 0.15,
            "within 15 % of DFT" if reference_b is not None else "no isotropic DFT strains in the data to compare",
        )
    )

    # elastic constants at the potential's own lattice constant, against the DFT frames'
    dft, how = dft_elastic_constants(frames)
    relaxed = cubic_elastic_constants(crystal(element, a0), calculator)
    clamped = cubic_elastic_constants(crystal(element, a0), calculator, fmax=None)
    for name, value, note in [
        ("C11", relaxed["C11"], "relaxed atoms, ±0.5 % strain"),
        ("C12", relaxed["C12"], "relaxed atoms, ±0.5 % strain"),
        ("C44", relaxed["C44"], "relaxed atoms, ±0.5 % strain"),
        ("C44 unrelaxed", clamped["C44"], "atoms not relaxed, as in the DFT shear frames"),
    ]:
        reference = dft.get(name)
        verdict = None if reference is None else abs(value / reference - 1) < 0.15
        text = f"{note}; DFT: {how}" if reference is not None else note
        result.checks.append(Check(f"elastic constant {name}", value, reference, "GPa", verdict, text))
    if reference_b is None and "C12" in dft:
        reference_b = (dft["C11"] + 2 * dft["C12"]) / 3
        bulk_check = next(c for c in result.checks if c.name == "bulk modulus B")
        bulk_check.reference, bulk_check.passed = reference_b, abs(modulus / reference_b - 1) < 0.15
        bulk_check.note = "within 15 % of DFT's (C11 + 2·C12)/3"
    c11, c12, c44 = relaxed["C11"], relaxed["C12"], relaxed["C44"]
    result.checks.append(
        Check(
            "Born stability",
            min(c11 - c12, c11 + 2 * c12, c44),
            None,
            "GPa",
            bool(c11 - c12 > 0 and c11 + 2 * c12 > 0 and c44 > 0),
            "C11−C12, C11+2C12, C44 > 0",
        )
    )

    # the dimer and the cohesive energy
    shortest = float(potential.metadata.get("shortest_distance") or 0.0) or 1.5
    r = np.linspace(0.8 * shortest, potential.cutoff.radius, 120)
    with np.errstate(all="ignore"):
        dimer = dimer_curve(potential, element, r)
    core = r <= shortest
    repulsive = bool(np.all(np.isfinite(dimer)) and np.all(np.diff(dimer[core]) < 0))
    lowest = int(np.nanargmin(np.where(np.isfinite(dimer), dimer, np.nan))) if np.any(np.isfinite(dimer)) else 0
    result.checks.append(
        Check(
            "dimer repulsive core",
            float(dimer[0]),
            None,
            "eV at 0.8 × shortest distance",
            repulsive,
            f"E(r) falls from {r[0]:.3g} Å to the shortest training distance {shortest:.3g} Å",
        )
    )
    result.checks.append(
        Check(
            "dimer binding",
            float(dimer[lowest]),
            None,
            "eV",
            None,
            f"at {r[lowest]:.3g} Å (E(dimer) − 2·E(atom))",
        )
    )
    result.checks.append(
        Check(
            "cohesive energy",
            isolated_energy(potential, element) - e0,
            None,
            "eV/atom",
            None,
            "E(isolated atom) − E(crystal) per atom; the DFT value needs the isolated atom's DFT energy",
        )
    )
    figure, axis = plt.subplots(figsize=(5, 3.6))
    axis.plot(r, dimer, label="evopot")
    axis.axvline(shortest, color="grey", linestyle=":", label="shortest training distance")
    axis.set_xlabel("r (Å)")
    axis.set_ylabel("E(dimer) − 2·E(atom) (eV)")
    axis.set_title(f"{element}₂ dimer")
    axis.legend()
    figure.tight_layout()
    figure.savefig(output / "dimer.png", dpi=110)
    plt.close(figure)
    result.figures.append(output / "dimer.png")

    # NVE drift and stability
    temperatures = sorted({t for t in (frame_temperature(a.info.get("description", "")) for a in frames.atoms) if t})
    supercell = crystal(element, a0).repeat(3)
    start = thermalized(supercell, 600.0, seed)
    nve = MolecularDynamics(start, ForceField(potential), 1.0).run(
        steps, thermo_every=max(1, steps // 20), progress=progress
    )
    drift = abs(nve.thermo[-1].total - nve.thermo[0].total) / len(supercell) * 1000
    result.checks.append(
        Check(
            "NVE energy drift",
            drift,
            1.0,
            "meV/atom",
            drift < 1.0,
            f"{steps} steps of 1 fs from 600 K, {len(supercell)} atoms",
        )
    )
    hot = 2 * temperatures[-1] if temperatures else 1200.0
    try:
        run = MolecularDynamics(
            thermalized(supercell, hot, seed), ForceField(potential), 0.5, "langevin", hot, 5.0, seed
        ).run(steps, thermo_every=max(1, steps // 20), progress=progress)
        closest = float(min(np.min(run.atoms.get_all_distances(mic=True) + 1e9 * np.eye(len(supercell))), 99))
        shortest = float(potential.metadata.get("shortest_distance") or 0.0)
        ok = closest > 0.7 * shortest if shortest else closest > 1.0
        result.checks.append(
            Check(
                f"MD stable at {hot:.0f} K",
                closest,
                shortest or None,
                "Å (closest pair)",
                ok,
                f"Langevin {steps} × 0.5 fs; 2 × highest data temperature",
            )
        )
    except EvopotError as exc:
        result.checks.append(Check(f"MD stable at {hot:.0f} K", None, None, "", False, str(exc)))

    # radial distribution function against AIMD frames
    aimd = {}
    for atoms, kind in zip(frames.atoms, frames.config_types):
        t = frame_temperature(atoms.info.get("description", ""))
        if t and "AIMD" in kind.upper():
            aimd.setdefault(t, []).append(atoms)
    if aimd:
        temperature = sorted(aimd)[len(aimd) // 2]
        dft = aimd[temperature]
        r, g_dft = radial_distribution(dft)
        sampled = []
        dynamics = MolecularDynamics(
            thermalized(dft[0], temperature, seed), ForceField(potential), 1.0, "langevin", temperature, 5.0, seed
        )
        dynamics.run(steps // 4)
        for _ in range(10):
            dynamics.run(max(1, steps // 20))
            sampled.append(dynamics.snapshot())
        _, g_md = radial_distribution(sampled)
        difference = float(trapezoid(np.abs(g_md - g_dft), r) / trapezoid(g_dft, r))
        result.checks.append(
            Check(
                f"RDF at {temperature:.0f} K",
                difference,
                0.25,
                "∫|Δg|/∫g",
                difference < 0.25,
                f"MD vs {len(dft)} DFT AIMD frames",
            )
        )
        figure, axis = plt.subplots(figsize=(5, 3.6))
        axis.plot(r, g_dft, label=f"DFT AIMD ({len(dft)} frames)")
        axis.plot(r, g_md, label="evopot MD")
        axis.set_xlabel("r (Å)")
        axis.set_ylabel("g(r)")
        axis.set_title(f"radial distribution at {temperature:.0f} K")
        axis.legend()
        figure.tight_layout()
        figure.savefig(output / "rdf.png", dpi=110)
        plt.close(figure)
        result.figures.append(output / "rdf.png")
    (output / "validation.txt").write_text(result.table() + "\n")
    return result
