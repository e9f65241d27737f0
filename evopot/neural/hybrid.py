"""Hybrid potentials: a formula plus a residual network, saved and used together.

On disk a hybrid is the formula's potential JSON with a ``metadata.correction`` entry
(symmetry functions, architecture, ensemble size, training record) and, beside it, the
weights file that entry names (``torch.save`` of state dicts, read with
``weights_only=True``). :func:`load_model` reads either kind of file; everything
downstream (ASE calculator, MD, validate, show) takes what it returns.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from evopot.data.dataset import Frames
from evopot.errors import EvopotError
from evopot.model.evaluate import Prediction, evaluate, potential_geometry
from evopot.model.potential import Model, Potential
from evopot.neural.network import Correction


@dataclass(frozen=True)
class Hybrid:
    """``potential`` (the formula; its metadata describes the correction) + ``correction``."""

    potential: Potential
    correction: Correction

    def __post_init__(self):
        if tuple(self.correction.species) != tuple(self.potential.species):
            raise EvopotError(
                f"the network's species {list(self.correction.species)} do not match the formula's "
                f"{list(self.potential.species)}; "
                "train the correction on this formula with evopot correct"
            )
        inputs = getattr(
            self.correction.descriptor, "potential", None
        )  # a network that reads the formula's terms (evopot.neural.formula_inputs)
        if inputs is not None and (inputs.terms != self.potential.terms or inputs.cutoff != self.potential.cutoff):
            raise EvopotError(
                "the network reads the terms of another formula than this one; train the correction on this "
                "formula with evopot correct"
            )

    @property
    def species(self) -> tuple[str, ...]:
        return self.potential.species

    @property
    def metadata(self) -> dict:
        return self.potential.metadata


def formula_only(potential: Potential) -> Potential:
    """The formula part of a (hybrid) potential, without its correction entry."""
    return replace(potential, metadata={k: v for k, v in potential.metadata.items() if k != "correction"})


def save_hybrid(potential: Potential, correction: Correction, path: str | Path) -> Path:
    """Write ``path`` (JSON) and its weights file ``path`` with suffix ``.pt``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    weights = path.with_suffix(".pt")
    correction.save_weights(weights)
    hybrid = replace(
        potential, metadata={**formula_only(potential).metadata, "correction": correction.spec(weights.name)}
    )
    hybrid.save(path)
    return path


def load_model(path: str | Path) -> Model:
    """A formula-only :class:`Potential`, or a :class:`Hybrid` when the file describes a
    correction (its weights read from the same folder)."""
    path = Path(path)
    potential = Potential.load(path)
    spec = potential.metadata.get("correction")
    if not spec:
        return potential
    if not isinstance(spec, dict):
        raise EvopotError(f"{path}: metadata.correction must be an object describing the network")
    return Hybrid(potential, Correction.load(spec, path.parent, str(path), formula_only(potential)))


@dataclass(frozen=True)
class HybridPrediction:
    """The hybrid's ``energies (n_frames,)`` eV and ``forces (n_atoms, 3)`` eV/Å, the
    formula's part alone, and the correction's ensemble spread ``uncertainty
    (n_atoms,)`` eV/Å (zeros for a single network)."""

    energies: np.ndarray
    forces: np.ndarray
    formula: Prediction
    correction_energies: np.ndarray
    uncertainty: np.ndarray


def predict(model: Model, frames: Frames) -> HybridPrediction:
    """Energies and forces of a formula or a hybrid on every frame of ``frames``."""
    from evopot.neural.residual import ensemble_prediction, force_uncertainty, residual_data

    potential = model.potential
    formula = evaluate(potential, potential_geometry(potential, frames))
    if model.correction is None:
        return HybridPrediction(
            formula.energies, formula.forces, formula, np.zeros_like(formula.energies), np.zeros(len(formula.forces))
        )
    device = model.correction.networks[
        0
    ].feature_mean.device  # where it lives: CUDA when train_hybrid ran there (evopot correct moves it to the CPU)
    data = residual_data(
        frames, model.correction.descriptor, np.zeros(len(frames)), np.zeros_like(formula.forces), device
    )
    with torch.no_grad():
        energies, forces = ensemble_prediction(model.correction, data)
    correction = energies.mean(0).cpu().numpy()
    return HybridPrediction(
        formula.energies + correction,
        formula.forces + forces.mean(0).cpu().numpy(),
        formula,
        correction,
        force_uncertainty(forces).cpu().numpy(),
    )
