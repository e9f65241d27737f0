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

:mod:`evopot.model.evaluate_torch` computes the same numbers by torch autograd, and the tests
hold the two together.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import scipy.sparse
import sympy

from evopot.data.dataset import unlabelled
from evopot.data.geometry import Geometry, build_geometry
from evopot.model.cutoff import Cutoff
from evopot.model.formula import fold_numbers
from evopot.model.potential import DENSITY_VARIABLES, TERM_VARIABLES, Potential, Term


@dataclass(frozen=True)
class Prediction:
    """``energies (n_frames,)`` eV and ``forces (n_atoms, 3)`` eV/Å."""

    energies: np.ndarray
    forces: np.ndarray


@lru_cache(maxsize=4096)
def compile_function(
    expression: sympy.Expr, variables: tuple[str, ...], constant_names: tuple[str, ...], module: str = "numpy"
):
    """The function ``value(*variables, *constants)`` of ``expression``."""
    args = [sympy.Symbol(v) for v in variables] + [sympy.Symbol(c) for c in constant_names]
    # torch's functions take tensors only: exp(-1) must reach torch as a number
    return sympy.lambdify(args, fold_numbers(expression) if module == "torch" else expression, modules=module, cse=True)


@lru_cache(maxsize=4096)
def compile_with_slopes(expression: sympy.Expr, variables: tuple[str, ...], constant_names: tuple[str, ...]):
    """One NumPy function of ``(*variables, *constants)`` returning the value and
    ∂/∂variable for each variable; their common subexpressions are computed once."""
    symbols = [sympy.Symbol(v) for v in variables]
    args = symbols + [sympy.Symbol(c) for c in constant_names]
    return sympy.lambdify(args, [expression] + [sympy.diff(expression, s) for s in symbols], modules="numpy", cse=True)


def _call(term: Term, expression: sympy.Expr, variables: tuple[str, ...], *arrays):
    """Value and partial derivatives of ``expression`` at ``arrays``, each shaped like them."""
    names = tuple(term.constants)
    function = compile_with_slopes(expression, variables, names)
    zero = 0 * arrays[0]
    with np.errstate(all="ignore"):
        value, *slopes = (part + zero for part in function(*arrays, *[term.constants[n] for n in names]))
    return value, slopes


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
    rho = np.bincount(geometry.pair_i, weight, geometry.n_atoms) + np.bincount(
        geometry.pair_j, weight, geometry.n_atoms
    )
    energy, (dF,) = _call(term, term.expression, TERM_VARIABLES["embedding"], rho)
    if term.species is not None:
        active = np.isin(np.array(geometry.species)[geometry.atom_species], term.species)
        energy, dF = energy * active, dF * active
    return energy, (dF[geometry.pair_i] + dF[geometry.pair_j]) * dweight


@dataclass(frozen=True)
class AngleTable:
    """The angles one three-body term acts on, with everything about them that does not
    depend on the term's formula; built once per geometry, cutoff and species pattern,
    since every candidate of a search needs it. ``r_ij``, ``r_ik`` (n_angles,) Å,
    ``cos_theta`` (n_angles,); ``cutoff_values`` (fc(r_ij), fc'(r_ij), fc(r_ik),
    fc'(r_ik)); ``frame`` (n_angles,) of each angle's centre; ``force_scatter`` sparse
    (3·n_atoms, 3·n_angles): ``force_scatter @ [∂W/∂r_ij; ∂W/∂r_ik; ∂W/∂cos θ]`` are the
    forces, flattened atom-major, with the bond geometry (unit vectors, ∂cos θ/∂bond)
    folded in."""

    r_ij: np.ndarray
    r_ik: np.ndarray
    cos_theta: np.ndarray
    cutoff_values: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
    frame: np.ndarray
    force_scatter: scipy.sparse.csc_matrix


def angle_table(geometry: Geometry, cutoff: Cutoff, species: tuple[str, ...] | None) -> AngleTable:
    """The :class:`AngleTable` of the angles within ``cutoff`` whose species match
    ``species`` (centre, then the two neighbours in either order; ``None``: all)."""
    return geometry.memo(("angles", cutoff, species), lambda: build_angle_table(geometry, cutoff, species))


def build_angle_table(geometry: Geometry, cutoff: Cutoff, species: tuple[str, ...] | None) -> AngleTable:
    """A new :class:`AngleTable` (:func:`angle_table` keeps one per geometry)."""
    t = geometry.triplets(cutoff.radius)
    bonds = geometry.bonds
    keep = slice(None) if species is None else np.nonzero(_triplet_species_mask(geometry, t, species))[0]
    center, b1, b2 = t.center[keep], t.bond_ij[keep], t.bond_ik[keep]
    r1, r2, c = t.r_ij[keep], t.r_ik[keep], t.cos_theta[keep]
    j, k = bonds.neighbor[b1], bonds.neighbor[b2]
    fc, dfc = geometry.cutoff_values(cutoff)
    p1, p2 = bonds.pair[b1], bonds.pair[b2]
    unit = geometry.pair_unit_vectors
    u1 = unit[p1] * bonds.sign[b1, None]
    u2 = unit[p2] * bonds.sign[b2, None]
    # ∂cos θ/∂(bond vector): what moving each neighbour does to the angle
    c1 = (u2 - c[:, None] * u1) / r1[:, None]
    c2 = (u1 - c[:, None] * u2) / r2[:, None]
    # the force on an atom is minus the gradient: the neighbour at the end of a bond
    # gets −∂W/∂bond, the centre the sum of +∂W/∂bond over its two bonds
    # one column per (quantity, angle), its entries listed atom by atom (x, y, z): laid
    # out column by column, the sparse matrix needs no sorting to build
    columns = [((center, u1), (j, -u1)), ((center, u2), (k, -u2)), ((center, c1 + c2), (j, -c1), (k, -c2))]
    rows = [np.hstack([3 * atoms[:, None] + np.arange(3) for atoms, _ in block]).ravel() for block in columns]
    values = [np.hstack([vectors for _, vectors in block]).ravel() for block in columns]
    n = len(center)
    per_column = np.repeat([3 * len(block) for block in columns], n)
    return AngleTable(
        r_ij=r1,
        r_ik=r2,
        cos_theta=c,
        cutoff_values=(fc[p1], dfc[p1], fc[p2], dfc[p2]),
        frame=geometry.atom_frame[center],
        force_scatter=scipy.sparse.csc_matrix(
            (np.concatenate(values), np.concatenate(rows), np.concatenate([[0], np.cumsum(per_column)])),
            shape=(3 * geometry.n_atoms, 3 * n),
        ),
    )


def threebody_prediction(cutoff: Cutoff, term: Term, geometry: Geometry) -> Prediction:
    """Energies ``(n_frames,)`` eV and forces ``(n_atoms, 3)`` eV/Å of one three-body
    term, each angle counted once."""
    a = angle_table(geometry, cutoff, term.species)
    energy, d_r1, d_r2, d_c = angle_energy_and_slopes(term, a.r_ij, a.r_ik, a.cos_theta, a.cutoff_values)
    forces = a.force_scatter @ np.concatenate([d_r1, d_r2, d_c])
    return Prediction(np.bincount(a.frame, energy, geometry.n_frames), forces.reshape(-1, 3))


def angle_energy_and_slopes(
    term: Term, r1: np.ndarray, r2: np.ndarray, c: np.ndarray, cutoff_values
) -> tuple[np.ndarray, ...]:
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
    if term.kind == "threebody":
        return threebody_prediction(cutoff, term, geometry)
    atom_energy, slope = embedding_contributions(cutoff, term, geometry)
    forces = (geometry.force_scatter @ slope).reshape(-1, 3)
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
