"""Evaluator: energies per frame and forces per atom of a Potential on a Geometry.

Vectorised over all pairs, angles and atoms of the whole dataset at once (NumPy).
Forces come from exact symbolic derivatives of each term (sympy) through the chain
rule with the cutoff; each term kind (:mod:`evopot.model.terms`) computes its own part:

    E = Σ_terms E_term + Σ_atoms e_ref(species_i)

:mod:`evopot.model.evaluate_torch` computes the same numbers by torch autograd, and the
tests hold the two together.
"""

from __future__ import annotations

import numpy as np

from evopot.data.dataset import unlabelled
from evopot.data.geometry import Geometry, build_geometry
from evopot.errors import EvopotError
from evopot.model.cutoff import Cutoff
from evopot.model.potential import Potential, Term
from evopot.model.terms import PAIR, Prediction


def pair_curve(potential: Potential, species_pair: tuple[str, str], r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Σ V(r)·fc(r) over the pair terms of ``potential`` acting on ``species_pair``, and
    its r-derivative: energies (eV) and dE/dr (eV/Å), each shaped like ``r`` (Å)."""
    energy, slope = np.zeros_like(r), np.zeros_like(r)
    for term in potential.terms:
        if term.kind == PAIR.name and PAIR.applies(term, species_pair):
            v, dv = PAIR.value_and_slope(term, r)
            fc, dfc = potential.cutoff_of(term).value_and_derivative(r)
            energy, slope = energy + v * fc, slope + dv * fc + v * dfc
    return energy, slope


def reference_energy(potential: Potential, geometry: Geometry) -> np.ndarray:
    """(n_frames,) sum of the per-species reference energies of each frame's atoms."""
    per_species = np.array([potential.reference_energies.get(s, 0.0) for s in geometry.species])
    return geometry.species_counts @ per_species


def term_prediction(term: Term, cutoff: Cutoff, geometry: Geometry) -> Prediction:
    """Energies ``(n_frames,)`` and forces ``(n_atoms, 3)`` of one term alone, with
    ``cutoff`` (the term's own or its potential's)."""
    return term.spec.prediction(term, cutoff, geometry)


def potential_geometry(potential: Potential, frames) -> Geometry:
    """The :class:`Geometry` of ``frames`` that ``potential`` needs: its pairs within
    the potential's neighbour radius (:attr:`Potential.reach`)."""
    return build_geometry(frames, potential.reach, potential.species)


def evaluate_atoms(potential: Potential, atoms) -> tuple[float, np.ndarray]:
    """Energy (eV) and forces (eV/Å, ``(len(atoms), 3)``) of one ASE ``Atoms``."""
    prediction = evaluate(potential, potential_geometry(potential, unlabelled([atoms])))
    return float(prediction.energies[0]), prediction.forces


def evaluate(potential: Potential, geometry: Geometry) -> Prediction:
    """Energies, forces and virials of ``potential`` on every frame of ``geometry``
    (whose pairs must reach :attr:`Potential.reach`)."""
    if geometry.cutoff < potential.reach - 1e-12:
        raise EvopotError(
            f"the geometry's pairs reach {geometry.cutoff} Å but the potential needs {potential.reach} Å; "
            "build it with evopot.model.evaluate.potential_geometry"
        )
    energies = reference_energy(potential, geometry)
    forces = np.zeros((geometry.n_atoms, 3))
    virials = ()
    for term in potential.terms:
        part = term.spec.prediction(term, potential.cutoff_of(term), geometry)
        energies = energies + part.energies
        forces += part.forces
        virials += part.virial_parts
    return Prediction(energies, forces, virials)
