"""Evaluator: energies per frame and forces per atom of a Potential on a Geometry.

Vectorised over all pairs of the whole dataset at once (NumPy). Forces come from the
exact symbolic derivative of each term (sympy), through the product rule with the
cutoff: dE/dr = V'(r)·fc(r) + V(r)·fc'(r). :mod:`evopot.evaluate_torch` computes the
same numbers by torch autograd, and the tests hold the two together.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import sympy

from evopot.geometry import Geometry
from evopot.potential import Potential, Term


@dataclass(frozen=True)
class Prediction:
    """``energies (n_frames,)`` eV and ``forces (n_atoms, 3)`` eV/Å."""

    energies: np.ndarray
    forces: np.ndarray


@lru_cache(maxsize=4096)
def compile_pair_function(expression: sympy.Expr, constant_names: tuple[str, ...], module: str = "numpy"):
    """NumPy (or torch) functions ``(V, dV/dr)`` of ``(r, *constants)`` for a pair expression."""
    r = sympy.Symbol("r")
    args = [r] + [sympy.Symbol(c) for c in constant_names]
    value = sympy.lambdify(args, expression, modules=module, cse=True)
    slope = sympy.lambdify(args, sympy.diff(expression, r), modules=module, cse=True)
    return value, slope


def pair_energy_and_slope(term: Term, distances: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """V(r) (eV) and dV/dr (eV/Å) of one pair term, each shaped like ``distances``."""
    names = tuple(term.constants)
    value, slope = compile_pair_function(term.expression, names)
    constants = [term.constants[n] for n in names]
    with np.errstate(all="ignore"):
        return value(distances, *constants) + 0 * distances, slope(distances, *constants) + 0 * distances


def pair_contributions(potential: Potential, geometry: Geometry) -> tuple[np.ndarray, np.ndarray]:
    """Per-pair energy V·fc (eV) and its derivative dE/dr (eV/Å), shape ``(n_pairs,)``."""
    energy = np.zeros(geometry.n_pairs)
    slope = np.zeros(geometry.n_pairs)
    for term in potential.terms:
        mask = geometry.pair_mask(term.species)
        distances = geometry.pair_distances if mask is None else geometry.pair_distances[mask]
        v, dv = pair_energy_and_slope(term, distances)
        fc, dfc = potential.cutoff.value_and_derivative(distances)
        with np.errstate(all="ignore"):
            e, de = v * fc, dv * fc + v * dfc
        if mask is None:
            energy += e
            slope += de
        else:
            energy[mask] += e
            slope[mask] += de
    return energy, slope


def reference_energy(potential: Potential, geometry: Geometry) -> np.ndarray:
    """(n_frames,) sum of the per-species reference energies of each frame's atoms."""
    per_species = np.array([potential.reference_energies.get(s, 0.0) for s in geometry.species])
    return geometry.species_counts @ per_species


def evaluate(potential: Potential, geometry: Geometry) -> Prediction:
    """Energies and forces of ``potential`` on every frame of ``geometry``."""
    energy, slope = pair_contributions(potential, geometry)
    energies = geometry.energy_scatter @ energy + reference_energy(potential, geometry)
    forces = (geometry.force_scatter @ slope).reshape(-1, 3)
    return Prediction(energies, forces)
