"""``EvopotCalculator``: an evopot potential as an ASE calculator (energy, forces, stress),
so it runs in ASE's own MD, optimisers and phonon tools.

    from evopot.md.calculator import EvopotCalculator
    atoms.calc = EvopotCalculator(Potential.load("member_003.json"))
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from ase.calculators.calculator import Calculator, all_changes
from ase.stress import full_3x3_to_voigt_6_stress

from evopot.md.forcefield import ForceField
from evopot.model.potential import Model
from evopot.neural.hybrid import load_model


class EvopotCalculator(Calculator):
    """Energy (eV), forces (eV/Å) and, for periodic cells, stress (eV/Å³, ASE's sign:
    (1/V) ∂E/∂ε) from the compiled kernel of ``potential`` (a formula, a hybrid, or the
    path of either's JSON file) on ``device``."""

    implemented_properties = ["energy", "free_energy", "forces", "stress"]

    def __init__(
        self,
        potential: Model | str | Path,
        device=None,
        dtype: torch.dtype = torch.float64,
        skin: float = 0.5,
        optimize: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.potential = load_model(potential) if isinstance(potential, (str, Path)) else potential
        self.forcefield = ForceField(self.potential, device, dtype, skin, optimize)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        energy, forces, virial = self.forcefield(*self.forcefield.tensors(self.atoms))
        self.results["energy"] = self.results["free_energy"] = float(energy)
        self.results["forces"] = forces.detach().cpu().numpy().astype(np.float64)
        if self.atoms.pbc.all():
            stress = virial.detach().cpu().numpy().astype(np.float64) / self.atoms.get_volume()
            self.results["stress"] = full_3x3_to_voigt_6_stress(0.5 * (stress + stress.T))
        elif "stress" in properties:
            from ase.calculators.calculator import PropertyNotImplementedError

            raise PropertyNotImplementedError("stress needs a cell periodic in all three directions")
