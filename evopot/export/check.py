"""Check an export by running it: LAMMPS's energy and forces on a random periodic
triclinic cell against evopot's own evaluation of the same potential."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from evopot.data.sampling import probe_cell
from evopot.export.lammps_run import run_lammps
from evopot.model.evaluate import evaluate_atoms
from evopot.model.potential import Potential

FORCE_TOLERANCE = 1e-4  # eV/Å, the bar for analytic styles and tables


@dataclass(frozen=True)
class ExportCheck:
    atoms: int
    max_force_difference: float  # eV/Å
    energy_difference_per_atom: float  # eV/atom
    tolerance: float

    @property
    def ok(self) -> bool:
        return self.max_force_difference <= self.tolerance

    def summary(self) -> str:
        verdict = "agrees" if self.ok else "DISAGREES"
        return (
            f"LAMMPS {verdict} with evopot on a random triclinic cell of {self.atoms} atoms: max force difference "
            f"{self.max_force_difference:.3g} eV/Å (tolerance {self.tolerance:g}), energy difference "
            f"{self.energy_difference_per_atom:.3g} eV/atom"
        )


def compare_with_lammps(
    potential: Potential, folder: str | Path, atoms=None, tolerance: float = FORCE_TOLERANCE
) -> ExportCheck:
    """Run LAMMPS with the export in ``folder`` on ``atoms`` (default :func:`probe_cell`)."""
    atoms = probe_cell(potential.species, potential.metadata.get("shortest_distance")) if atoms is None else atoms
    lammps = run_lammps(atoms, folder, potential.species)
    energy, forces = evaluate_atoms(potential, atoms)
    return ExportCheck(
        len(atoms), float(np.abs(lammps.forces - forces).max()), abs(lammps.energy - energy) / len(atoms), tolerance
    )
