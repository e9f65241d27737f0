"""Error metrics of a prediction against DFT labels, in the units people quote."""

from __future__ import annotations

import numpy as np
from ase import units

from evopot.data.dataset import Frames
from evopot.model.evaluate import Prediction


def errors(prediction: Prediction, frames: Frames) -> dict[str, float]:
    """Force MAE and RMSE per component (eV/Å), energy MAE and RMSE per atom
    (meV/atom) and, where the frames have DFT stresses and the prediction virials, the
    stress MAE per component (GPa) of ``prediction`` against ``frames``."""
    force_error = prediction.forces - np.concatenate(frames.forces)
    atoms = np.array([len(a) for a in frames.atoms])
    energy_error = (prediction.energies - frames.energies) / atoms
    out = {
        "force_mae": float(np.mean(np.abs(force_error))),
        "force_rmse": float(np.sqrt(np.mean(force_error**2))),
        "energy_mae": float(1000 * np.mean(np.abs(energy_error))),
        "energy_rmse": float(1000 * np.sqrt(np.mean(energy_error**2))),
    }
    known = frames.stressed
    if known.any() and prediction.virials is not None:
        volumes = np.array([frames.atoms[k].get_volume() for k in np.nonzero(known)[0]])
        stress = prediction.virials[known] / volumes[:, None]
        out["stress_mae"] = float(np.mean(np.abs(stress - frames.stresses[known])) / units.GPa)
    return out


def zero_force_errors(frames: Frames) -> dict[str, float]:
    """The baseline of predicting zero force everywhere (eV/Å)."""
    forces = np.concatenate(frames.forces)
    return {"force_mae": float(np.mean(np.abs(forces))), "force_rmse": float(np.sqrt(np.mean(forces**2)))}


def simplest_within(items, error, complexity, tolerance: float = 0.05):
    """The item of least ``complexity(item)`` whose ``error(item)`` is within
    ``tolerance`` (relative) of the lowest: the knee a person would pick from a front."""
    items = list(items)
    best = min(error(item) for item in items)
    return min((item for item in items if error(item) <= best * (1 + tolerance)), key=complexity)
