"""Evaluator: energies per frame and forces per atom of a Potential on a Geometry.

Vectorised over all pairs, angles and atoms of the whole dataset at once (NumPy).
Forces come from exact symbolic derivatives of each term (sympy) through the chain
rule with the cutoff:

- pair: dE/dr = V'(r)·fc(r) + V(r)·fc'(r) per pair;
- embedding: E_i = F(ρ_i), ρ_i = Σ_j f(r_ij)·fc(r_ij), so per pair
  dE/dr = (F'(ρ_i) + F'(ρ_j))·(f·fc)'(r);
- three-body: W = V3(r_ij, r_ik, cos θ)·fc(r_ij)·fc(r_ik) per angle, with
  ∂cos θ/∂r_ij(vector) = (û_ik − cos θ·û_ij)/r_ij. A V3 that is not symmetric in
  r_ij ↔ r_ik is symmetrised, ½[V3(r_ij, r_ik, c) + V3(r_ik, r_ij, c)], so that every
  angle counts once whatever the order of its bonds.

:mod:`evopot.evaluate_torch` computes the same numbers by torch autograd, and the tests
hold the two together.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import sympy

from evopot.cutoff import Cutoff
from evopot.data import unlabelled
from evopot.geometry import Geometry, build_geometry
from evopot.potential import DENSITY_VARIABLES, TERM_VARIABLES, Potential, Term


@dataclass(frozen=True)
class Prediction:
    """``energies (n_frames,)`` eV and ``forces (n_atoms, 3)`` eV/Å."""

    energies: np.ndarray
    forces: np.ndarray


@lru_cache(maxsize=4096)
def compile_function(expression: sympy.Expr, variables: tuple[str, ...], constant_names: tuple[str, ...], module: str = "numpy"):
    """Functions ``(value, ∂/∂variable for each variable)`` of ``(*variables, *constants)``."""
    symbols = [sympy.Symbol(v) for v in variables]
    args = symbols + [sympy.Symbol(c) for c in constant_names]
    value = sympy.lambdify(args, expression, modules=module, cse=True)
    slopes = tuple(sympy.lambdify(args, sympy.diff(expression, s), modules=module, cse=True) for s in symbols)
    return value, slopes


def _call(term: Term, expression: sympy.Expr, variables: tuple[str, ...], *arrays):
    """Value and partial derivatives of ``expression`` at ``arrays``, each shaped like them."""
    names = tuple(term.constants)
    value, slopes = compile_function(expression, variables, names)
    constants = [term.constants[n] for n in names]
    zero = 0 * arrays[0]
    with np.errstate(all="ignore"):
        return value(*arrays, *constants) + zero, [s(*arrays, *constants) + zero for s in slopes]


def pair_energy_and_slope(term: Term, distances: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """V(r) (eV) and dV/dr (eV/Å) of one pair term, each shaped like ``distances``."""
    value, (slope,) = _call(term, term.expression, ("r",), distances)
    return value, slope


def applies_to_pair(term: Term, species_pair: tuple[str, str]) -> bool:
    """Whether pair term ``term`` acts between atoms of ``species_pair`` (either order)."""
    return term.species is None or sorted(term.species) == sorted(species_pair)


def applies_to_angle(term: Term, pattern: tuple[str, str, str]) -> bool:
    """Whether three-body ``term`` acts on angles with centre ``pattern[0]`` and
    neighbours ``pattern[1:]`` (in either order)."""
    s = term.species
    return s is None or (s[0] == pattern[0] and sorted(s[1:]) == sorted(pattern[1:]))


def pair_curve(potential: Potential, species_pair: tuple[str, str], r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Σ V(r)·fc(r) over the pair terms of ``potential`` acting on ``species_pair``, and
    its r-derivative: energies (eV) and dE/dr (eV/Å), each shaped like ``r`` (Å)."""
    energy, slope = np.zeros_like(r), np.zeros_like(r)
    for term in potential.terms:
        if term.kind == "pair" and applies_to_pair(term, species_pair):
            v, dv = pair_energy_and_slope(term, r)
            fc, dfc = potential.cutoff_of(term).value_and_derivative(r)
            energy, slope = energy + v * fc, slope + dv * fc + v * dfc
    return energy, slope


def density_curve(term: Term, cutoff: Cutoff, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """An embedding term's density contribution f(r)·fc(r) per neighbour and its
    r-derivative, each shaped like ``r`` (Å)."""
    f, (df,) = _call(term, term.density, DENSITY_VARIABLES, r)
    fc, dfc = cutoff.value_and_derivative(r)
    return f * fc, df * fc + f * dfc


def embedding_curve(term: Term, rho: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """F(ρ) (eV) and dF/dρ of an embedding term, each shaped like ``rho``."""
    value, (slope,) = _call(term, term.expression, TERM_VARIABLES["embedding"], rho)
    return value, slope


def _pair_selection(geometry: Geometry, term: Term):
    """The pairs a pair term acts on: a slice for all pairs (no copy), else indices."""
    mask = geometry.pair_mask(term.species) if term.kind == "pair" else None
    return slice(None) if mask is None else np.nonzero(mask)[0]


def embedding_contributions(cutoff: Cutoff, term: Term, geometry: Geometry) -> tuple[np.ndarray, np.ndarray]:
    """Per-atom energies F(ρ_i) (eV, shape ``(n_atoms,)``) and per-pair dE/dr (eV/Å)."""
    r = geometry.pair_distances
    f, (df,) = _call(term, term.density, DENSITY_VARIABLES, r)
    fc, dfc = geometry.cutoff_values(cutoff)
    weight, dweight = f * fc, df * fc + f * dfc
    rho = np.bincount(geometry.pair_i, weight, geometry.n_atoms) + np.bincount(geometry.pair_j, weight, geometry.n_atoms)
    energy, (dF,) = _call(term, term.expression, TERM_VARIABLES["embedding"], rho)
    if term.species is not None:
        active = np.isin(np.array(geometry.species)[geometry.atom_species], term.species)
        energy, dF = energy * active, dF * active
    return energy, (dF[geometry.pair_i] + dF[geometry.pair_j]) * dweight


def threebody_contributions(cutoff: Cutoff, term: Term, geometry: Geometry) -> tuple[np.ndarray, np.ndarray]:
    """Per-atom energies (eV, ``(n_atoms,)``, each angle given to its centre atom) and
    forces (eV/Å, ``(n_atoms, 3)``) of one three-body term."""
    t = geometry.triplets(cutoff.radius)
    bonds = geometry.bonds
    if term.species is not None:
        keep = _triplet_species_mask(geometry, t, term.species)
    else:
        keep = slice(None)
    center, b1, b2 = t.center[keep], t.bond_ij[keep], t.bond_ik[keep]
    r1, r2, c = t.r_ij[keep], t.r_ik[keep], t.cos_theta[keep]
    fc, dfc = geometry.cutoff_values(cutoff)
    f1, df1 = fc[bonds.pair[b1]], dfc[bonds.pair[b1]]
    f2, df2 = fc[bonds.pair[b2]], dfc[bonds.pair[b2]]
    energy, d_r1, d_r2, d_c = angle_energy_and_slopes(term, r1, r2, c, (f1, df1, f2, df2))
    unit = geometry.pair_unit_vectors
    u1 = unit[bonds.pair[b1]] * bonds.sign[b1, None]
    u2 = unit[bonds.pair[b2]] * bonds.sign[b2, None]
    # gradient of the angle energy with respect to each bond vector (neighbour − centre)
    g1 = d_r1[:, None] * u1 + (d_c / r1)[:, None] * (u2 - c[:, None] * u1)
    g2 = d_r2[:, None] * u2 + (d_c / r2)[:, None] * (u1 - c[:, None] * u2)
    forces = np.zeros((geometry.n_atoms, 3))
    for d in range(3):
        forces[:, d] += np.bincount(center, g1[:, d] + g2[:, d], geometry.n_atoms)
        forces[:, d] -= np.bincount(bonds.neighbor[b1], g1[:, d], geometry.n_atoms)
        forces[:, d] -= np.bincount(bonds.neighbor[b2], g2[:, d], geometry.n_atoms)
    return np.bincount(center, energy, geometry.n_atoms), forces


def angle_energy_and_slopes(term: Term, r1: np.ndarray, r2: np.ndarray, c: np.ndarray, cutoff_values) -> tuple[np.ndarray, ...]:
    """W = V3(r_ij, r_ik, cos θ)·fc(r_ij)·fc(r_ik) of a three-body term per angle (eV),
    with ∂W/∂r_ij, ∂W/∂r_ik (eV/Å) and ∂W/∂cos θ (eV); all shaped ``(n_angles,)``.
    ``cutoff_values`` is (fc(r_ij), fc'(r_ij), fc(r_ik), fc'(r_ik)). V3 is symmetrised
    in r_ij ↔ r_ik when it is not symmetric."""
    names = TERM_VARIABLES["threebody"]
    v, (v1, v2, vc) = _call(term, term.expression, names, r1, r2, c)
    if not _symmetric(term.expression):
        w, (w1, w2, wc) = _call(term, term.expression, names, r2, r1, c)
        v, v1, v2, vc = (v + w) / 2, (v1 + w2) / 2, (v2 + w1) / 2, (vc + wc) / 2
    f1, df1, f2, df2 = cutoff_values
    with np.errstate(all="ignore"):
        return v * f1 * f2, (v1 * f1 + v * df1) * f2, (v2 * f2 + v * df2) * f1, vc * f1 * f2


@lru_cache(maxsize=1024)
def _symmetric(expression: sympy.Expr) -> bool:
    rij, rik = sympy.symbols("rij rik")
    swapped = expression.xreplace({rij: rik, rik: rij})
    return swapped == expression or sympy.expand(swapped - expression) == 0


def _triplet_species_mask(geometry: Geometry, t, species: tuple[str, ...]) -> np.ndarray:
    """Angles whose centre is ``species[0]`` and whose two neighbours are
    ``species[1:]`` in either order."""
    index = {s: k for k, s in enumerate(geometry.species)}
    if any(s not in index for s in species):
        return np.zeros(len(t), dtype=bool)
    bonds = geometry.bonds
    centre = geometry.atom_species[t.center] == index[species[0]]
    a = geometry.atom_species[bonds.neighbor[t.bond_ij]]
    b = geometry.atom_species[bonds.neighbor[t.bond_ik]]
    x, y = index[species[1]], index[species[2]]
    return centre & (((a == x) & (b == y)) | ((a == y) & (b == x)))


def reference_energy(potential: Potential, geometry: Geometry) -> np.ndarray:
    """(n_frames,) sum of the per-species reference energies of each frame's atoms."""
    per_species = np.array([potential.reference_energies.get(s, 0.0) for s in geometry.species])
    return geometry.species_counts @ per_species


def term_prediction(term: Term, cutoff: Cutoff, geometry: Geometry) -> Prediction:
    """Energies ``(n_frames,)`` and forces ``(n_atoms, 3)`` of one term alone, with
    ``cutoff`` (the term's own or its potential's)."""
    if term.kind == "pair":
        distances = geometry.pair_distances
        selected = _pair_selection(geometry, term)
        v, dv = pair_energy_and_slope(term, distances[selected])
        fc, dfc = (a[selected] for a in geometry.cutoff_values(cutoff))
        energy, slope = np.zeros(geometry.n_pairs), np.zeros(geometry.n_pairs)
        with np.errstate(all="ignore"):
            energy[selected], slope[selected] = v * fc, dv * fc + v * dfc
        return Prediction(geometry.energy_scatter @ energy, (geometry.force_scatter @ slope).reshape(-1, 3))
    if term.kind == "embedding":
        atom_energy, slope = embedding_contributions(cutoff, term, geometry)
        forces = (geometry.force_scatter @ slope).reshape(-1, 3)
    else:
        atom_energy, forces = threebody_contributions(cutoff, term, geometry)
    return Prediction(np.bincount(geometry.atom_frame, atom_energy, geometry.n_frames), forces)


def evaluate_atoms(potential: Potential, atoms) -> tuple[float, np.ndarray]:
    """Energy (eV) and forces (eV/Å, ``(len(atoms), 3)``) of one ASE ``Atoms``."""
    prediction = evaluate(potential, build_geometry(unlabelled([atoms]), potential.cutoff.radius, potential.species))
    return float(prediction.energies[0]), prediction.forces


def evaluate(potential: Potential, geometry: Geometry) -> Prediction:
    """Energies and forces of ``potential`` on every frame of ``geometry``."""
    energies = reference_energy(potential, geometry)
    forces = np.zeros((geometry.n_atoms, 3))
    for term in potential.terms:
        part = term_prediction(term, potential.cutoff_of(term), geometry)
        energies = energies + part.energies
        forces += part.forces
    return Prediction(energies, forces)
