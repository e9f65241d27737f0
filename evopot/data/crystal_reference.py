"""What DFT frames say about an element's ground-state crystal: lattice constant, bulk
modulus and cubic elastic constants read from the frames of type Elastic, and the
crystal itself (ASE's reference structure of the element).

``evopot validate`` compares a potential's properties with these, and a search with
``properties:`` in its config steers its front towards them
(:mod:`evopot.model.properties`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import units
from ase.build import bulk
from ase.data import atomic_numbers, reference_states
from ase.eos import EquationOfState

from evopot.data.dataset import Frames
from evopot.errors import EvopotError

#: the properties a search can be steered by, and their units
PROPERTY_UNITS = {"a0": "Å", "B": "GPa", "C11": "GPa", "C12": "GPa", "C44": "GPa", "C44 unrelaxed": "GPa"}


def crystal(element: str, a: float | None = None):
    """ASE's reference crystal of ``element`` (conventional cubic cell when cubic)."""
    state = reference_states[atomic_numbers[element]]
    if state is None or state.get("symmetry") not in ("diamond", "fcc", "bcc", "sc"):
        raise EvopotError(
            f"no cubic reference crystal known for {element} (ASE's reference state: "
            f"{None if state is None else state.get('symmetry')}); the crystal checks need diamond, fcc, bcc or sc"
        )
    return bulk(element, state["symmetry"], a=a or state["a"], cubic=True)


def dft_equation_of_state(frames: Frames, atoms_per_cell: int):
    """From the DFT frames of type Elastic: the ground-state lattice constant (the frame
    described as "Ground state", else the lowest in energy per atom) and, when at least
    five frames are isotropic strains of it, the bulk modulus of their fit. Also the
    points to draw (volumes, energies relative to the ground state, per atom)."""
    elastic = [k for k, t in enumerate(frames.config_types) if t == "Elastic"]
    if not elastic:
        return None, None, None
    per_atom = {k: frames.energies[k] / len(frames.atoms[k]) for k in elastic}
    described = [k for k in elastic if "ground state" in frames.atoms[k].info.get("description", "").lower()]
    ground = described[0] if described else min(elastic, key=per_atom.get)
    cell = frames.atoms[ground].cell.array
    volume = frames.atoms[ground].get_volume() / len(frames.atoms[ground])
    isotropic = []
    for k in elastic:
        other = frames.atoms[k].cell.array
        scale = np.trace(other @ np.linalg.inv(cell)) / 3
        if len(frames.atoms[k]) == len(frames.atoms[ground]) and np.abs(other - scale * cell).max() < 1e-4:
            isotropic.append(k)
    modulus = None
    if len(isotropic) >= 5:
        v = [frames.atoms[k].get_volume() / len(frames.atoms[k]) for k in isotropic]
        volume, _, b = EquationOfState(v, [per_atom[k] for k in isotropic], eos="birchmurnaghan").fit()
        modulus = b / units.GPa
    points = (
        [frames.atoms[k].get_volume() / len(frames.atoms[k]) for k in isotropic or [ground]],
        [per_atom[k] - per_atom[ground] for k in isotropic or [ground]],
    )
    return (volume * atoms_per_cell) ** (1 / 3), modulus, points


#: largest strain of the DFT frames that the elastic constants are read from
ELASTIC_STRAIN = 0.045
#: the stored stresses are trusted when their C11 is this close to the energies' C11
STRESS_CHECK = 0.05


def dft_elastic_constants(frames: Frames) -> tuple[dict[str, float], str]:
    """Cubic elastic constants (GPa) of the DFT frames of type Elastic, where they allow,
    and a note on how they were read. C11 from the energies of the uniaxial strains
    (E/V₀ = ½·C11·η² + D·η³, Green strains up to :data:`ELASTIC_STRAIN`). The frames'
    stresses (:attr:`Frames.stresses`) are used only when the normal stress of the same
    frames gives that C11 within :data:`STRESS_CHECK`; then C12 is the lateral stress's
    slope, and C44⁰ the shear stress over twice the shear strain of the shear frames
    (whose atoms the data leave unrelaxed: the clamped-ion constant)."""
    elastic = [k for k, t in enumerate(frames.config_types) if t == "Elastic"]
    described = [k for k in elastic if "ground state" in frames.atoms[k].info.get("description", "").lower()]
    if not elastic:
        return {}, "no Elastic frames in the data"
    per_atom = {k: frames.energies[k] / len(frames.atoms[k]) for k in elastic}
    ground = described[0] if described else min(elastic, key=per_atom.get)
    atoms0 = frames.atoms[ground]
    inverse = np.linalg.inv(atoms0.cell.array)
    volume = atoms0.get_volume()
    uniaxial, shear = [], []  # (strain, energy density eV/Å³, stress GPa (6,) or None)
    stressed = frames.stressed
    for k in elastic:
        atoms = frames.atoms[k]
        if len(atoms) != len(atoms0) or k == ground:
            continue
        deformation = (inverse @ atoms.cell.array).T
        green = 0.5 * (deformation.T @ deformation - np.eye(3))
        stress = frames.stresses[k] / units.GPa if stressed[k] else None
        density = (frames.energies[k] - frames.energies[ground]) / volume
        off = green - np.diag(np.diag(green))
        if np.abs(off).max() < 1e-6 and np.count_nonzero(np.abs(np.diag(green)) > 1e-6) == 1:
            axis = int(np.argmax(np.abs(np.diag(green))))
            if abs(green[axis, axis]) <= ELASTIC_STRAIN:
                uniaxial.append((green[axis, axis], density, None if stress is None else (stress[axis], axis, stress)))
        elif np.abs(off).max() <= ELASTIC_STRAIN / 2:
            which = int(np.argmax(np.abs([off[1, 2], off[0, 2], off[0, 1]])))
            shear.append(([off[1, 2], off[0, 2], off[0, 1]][which], None if stress is None else stress[3 + which]))
    if len(uniaxial) < 3:
        return {}, "fewer than three small uniaxial strains among the Elastic frames"
    strain = np.array([u[0] for u in uniaxial])
    density = np.array([u[1] for u in uniaxial])
    (c11, _), *_ = np.linalg.lstsq(np.column_stack([0.5 * strain**2, strain**3]), density, rcond=None)
    constants = {"C11": float(c11 / units.GPa)}
    if any(u[2] is None for u in uniaxial):
        return constants, "C11 from the energies; the frames store no stress"
    along = np.array([u[2][0] for u in uniaxial])
    slope = np.polyfit(strain, along, 1)[0]
    if abs(slope / constants["C11"] - 1) > STRESS_CHECK:
        return constants, (
            f"C11 from the energies; the stored stresses give {slope:.4g} GPa, not trusted (units or order unclear)"
        )
    lateral = np.array([u[2][2][(u[2][1] + 1) % 3] for u in uniaxial])
    constants["C12"] = float(np.polyfit(strain, lateral, 1)[0])
    small = [(g, st) for g, st in shear if st is not None]
    if len(small) >= 2:
        gamma = np.array([g for g, _ in small])
        tau = np.array([st for _, st in small])
        constants["C44 unrelaxed"] = float(np.polyfit(2 * gamma, tau, 1)[0])
    return constants, f"C11 from the energies, checked against the stored stresses ({slope:.4g} GPa)"


@dataclass(frozen=True)
class CrystalReference:
    """The reference values (``PROPERTY_UNITS``' names; a subset) of ``element``'s
    cubic crystal, and where they came from."""

    element: str
    values: dict[str, float]
    source: str


def reference_from_frames(frames: Frames) -> CrystalReference | None:
    """The DFT crystal properties of single-element ``frames`` with Elastic frames (a₀;
    B from isotropic strains, else (C11 + 2·C12)/3; C11, C12, C44⁰ where the frames
    allow), or None when they have none."""
    if len(frames.species) != 1 or "Elastic" not in frames.config_types:
        return None
    element = frames.species[0]
    a0, modulus, _ = dft_equation_of_state(frames, len(crystal(element)))
    elastic, how = dft_elastic_constants(frames)
    values = {"a0": a0, **elastic}
    if modulus is not None:
        values["B"] = modulus
    elif "C12" in elastic:
        values["B"] = (elastic["C11"] + 2 * elastic["C12"]) / 3
    return CrystalReference(element, values, f"{frames.source}: Elastic frames ({how})")
