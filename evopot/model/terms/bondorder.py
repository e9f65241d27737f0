"""Bond-order terms (Tersoff, Brenner): the strength of each bond depends on its
neighbourhood.

    E = ½ Σ_i Σ_{j≠i} fc(r_ij)·V(r_ij, ζ_ij),   ζ_ij = Σ_{k≠i,j} fc(r_ik)·ξ(r_ij, r_ik, cos θ_ijk)

The term holds two expressions: V in ``r`` and ``zeta`` (the bond's energy given its
bond-order argument ζ) and, as its ``density``, ξ in ``rij``, ``rik``, ``costheta`` (what
neighbour k adds to ζ_ij). Tersoff's potential is

    V = A·exp(−λ₁r) − B·exp(−λ₂r)·(1 + (βζ)ⁿ)^(−1/2n)
    ξ = γ·(1 + c²/d² − c²/(d² + (cos θ − h)²))·exp(λ₃ᵐ(r_ij − r_ik)ᵐ)

with Tersoff's cutoff, which is evopot's ``cosine`` cutoff from R − D to R + D
(:func:`tersoff_term` builds it; :mod:`evopot.export.lammps_tersoff` reads and writes
LAMMPS ``.tersoff`` files).

A search fills the term in one of two forms: ``general`` searches V(r, ζ) itself;
``tersoff`` searches V = b·V_A(r), an attraction V_A(r) weakened by the bond order
b = (1 + ζⁿ)^(−1/2n) (Tersoff's b_ij, his β folded into ξ's scale, n a fitted constant
of the form), beside a pair term that holds Tersoff's repulsion: the search then grows
two functions of one distance, as for Stillinger–Weber, instead of a deep tree in r and
ζ. Both search ξ as a shape, its scale kept (it sets how fast b falls with coordination).

Forces: with w_b = ½ fc(r_b)·∂V/∂ζ per bond, each angle passes w through ξ's
derivatives to both its bonds and its angle.
"""

from __future__ import annotations

import numpy as np
import sympy

from evopot.errors import EvopotError
from evopot.model.terms.base import (
    Bonds,
    Curve,
    Prediction,
    Slot,
    TermKind,
    angles_per_atom,
    bond_angles,
    bonds_per_atom,
    compile_function,
    expression_operations,
    inside,
    torch_values,
    values_and_slopes,
)
from evopot.model.terms.codegen import ANGLE_FORCE_LINES
from evopot.model.terms.threebody import angle_table

#: Tersoff's parameters, as the constants of a term built by :func:`tersoff_term`
TERSOFF_PARAMETERS = ("A", "B", "lambda1", "lambda2", "lambda3", "beta", "n", "gamma", "c", "d", "h")
#: ζ of a bond without neighbours: V's ζ-derivative in sympy's form n·(βζ)ⁿ/ζ must not be 0/0
TINY = 1e-300
_r, _zeta, _rij, _rik, _cos = sympy.symbols("r zeta rij rik costheta")
_p = {name: sympy.Symbol(name) for name in TERSOFF_PARAMETERS}


def bond_order(n: sympy.Expr) -> sympy.Expr:
    """Tersoff's bond order b = (1 + ζⁿ)^(−1/2n) (his β folded into ξ's scale)."""
    return (1 + _zeta**n) ** (-1 / (2 * n))


def tersoff_expressions(m: int) -> tuple[sympy.Expr, sympy.Expr]:
    """Tersoff's V(r, ζ) and ξ(r_ij, r_ik, cos θ) in the named parameters, for the
    exponent ``m`` (1 or 3, as LAMMPS allows)."""
    if m not in (1, 3):
        raise EvopotError(f"Tersoff's exponent m must be 1 or 3, got {m}")
    p = _p
    v = p["A"] * sympy.exp(-p["lambda1"] * _r) - p["B"] * sympy.exp(-p["lambda2"] * _r) * (
        1 + (p["beta"] * _zeta) ** p["n"]
    ) ** (-1 / (2 * p["n"]))
    g = p["gamma"] * (1 + p["c"] ** 2 / p["d"] ** 2 - p["c"] ** 2 / (p["d"] ** 2 + (_cos - p["h"]) ** 2))
    xi = g * sympy.exp(p["lambda3"] ** m * (_rij - _rik) ** m)
    return v, xi


class BondOrder(TermKind):
    name = "bondorder"
    variables = ("r", "zeta")
    label = "V(r, zeta)"
    latex_label = r"V(r, \zeta)"
    density_variables = ("rij", "rik", "costheta")
    density_label = "xi(rij, rik, costheta)"
    density_latex = r"\xi(r_{ij}, r_{ik}, \cos\theta)"
    forms = ("general", "tersoff")

    def slots(self, form):
        if form == "tersoff":
            return (Slot("VA", ("r",), True), Slot("xi", self.density_variables, False))
        return (Slot("V", self.variables, True), Slot("xi", self.density_variables, False))

    def form_constants(self, form):
        return {"n": 1.0} if form == "tersoff" else {}

    def from_slots(self, form, linear, shape, constants=()):
        if form == "tersoff":
            (n,) = constants
            return linear * bond_order(n), shape
        return linear, shape

    def check_species(self, species, where):
        if species is not None:
            raise EvopotError(f"{where}: a bondorder term acts on all species (species: null); got {list(species)}")

    def curves(self, term, cutoff, r, r0):
        angles = np.linspace(-1, 1, 300)
        fc = cutoff.value(r)
        with np.errstate(all="ignore"):
            bond = {f"ζ = {z:g}": self._v(term, r, z) * fc for z in (0.0, 1.0, 3.0)}
            xi, _ = values_and_slopes(
                term, term.density, self.density_variables, 0 * angles + r0, 0 * angles + r0, angles
            )
        return [
            Curve("bond-order term: a bond", "r (Å)", "fc(r)·V(r, ζ) (eV)", r, bond),
            Curve("what a neighbour adds to ζ", "cos θ", f"ξ({r0:.2f}, {r0:.2f}, cos θ)", angles, {"": xi}),
        ]

    def _v(self, term, r, zeta):
        return values_and_slopes(term, term.expression, self.variables, r, 0 * r + max(zeta, TINY))[0]

    def _angles(self, term, cutoff, geometry):
        """Per angle: both bonds, their fc and fc', and ξ with its slopes both ways round."""
        t = geometry.triplets(cutoff.radius)
        bonds = geometry.bonds
        fc, dfc = geometry.cutoff_values(cutoff)
        p1, p2 = bonds.pair[t.bond_ij], bonds.pair[t.bond_ik]
        forward = values_and_slopes(term, term.density, self.density_variables, t.r_ij, t.r_ik, t.cos_theta)
        backward = values_and_slopes(term, term.density, self.density_variables, t.r_ik, t.r_ij, t.cos_theta)
        return t, (fc[p1], dfc[p1], fc[p2], dfc[p2]), forward, backward

    def operations(self, term, cutoff, geometry):
        # V once per bond (each pair both ways), ξ both ways round at every angle
        return expression_operations(term.expression) * bonds_per_atom(
            geometry, cutoff.radius
        ) + 2 * expression_operations(term.density) * angles_per_atom(geometry, cutoff.radius, None)

    def prediction(self, term, cutoff, geometry):
        bonds = geometry.bonds
        t, (c1, dc1, c2, dc2), (q12, (q12_1, q12_2, q12_c)), (q21, (q21_1, q21_2, q21_c)) = self._angles(
            term, cutoff, geometry
        )
        n_bonds = len(bonds.center)
        with np.errstate(all="ignore"):
            zeta = np.bincount(t.bond_ij, c2 * q12, n_bonds) + np.bincount(t.bond_ik, c1 * q21, n_bonds)
            zeta[zeta == 0] = TINY
            r = geometry.pair_distances[bonds.pair]
            near = r < cutoff.radius
            fc, dfc = (a[bonds.pair] * near for a in geometry.cutoff_values(cutoff))
            v, (v_r, v_z) = values_and_slopes(
                term, term.expression, self.variables, np.where(near, r, 0.5 * cutoff.radius), zeta
            )
            energy = 0.5 * fc * v
            slope = np.bincount(bonds.pair, 0.5 * (dfc * v + fc * v_r), geometry.n_pairs)
            w = 0.5 * fc * v_z  # ∂E/∂ζ per bond
            w1, w2 = w[t.bond_ij], w[t.bond_ik]
            d_r1 = w1 * c2 * q12_1 + w2 * (dc1 * q21 + c1 * q21_2)
            d_r2 = w2 * c1 * q21_1 + w1 * (dc2 * q12 + c2 * q12_2)
            d_c = w1 * c2 * q12_c + w2 * c1 * q21_c
        table, slopes = angle_table(geometry, cutoff, None), np.concatenate([d_r1, d_r2, d_c])
        forces = (geometry.force_scatter @ slope + table.force_scatter @ slopes).reshape(-1, 3)
        frames = np.bincount(geometry.atom_frame[bonds.center], energy, geometry.n_frames)
        return Prediction(frames, forces, ((geometry.virial_scatter, slope), (table.virial_scatter, slopes)))

    def atom_energies(self, term, cutoff, bonds: Bonds):
        import torch

        near, r = inside(bonds, cutoff)
        fc = torch.where(near, cutoff.value(r, "torch"), 0 * r)
        t1, t2, r1, r2, cos = bond_angles(bonds, cutoff.radius)
        forward = torch_values(term, term.density, self.density_variables, r1, r2, cos)
        backward = torch_values(term, term.density, self.density_variables, r2, r1, cos)
        zeta = r.new_zeros(len(r)).index_add(0, t1, fc[t2] * forward).index_add(0, t2, fc[t1] * backward)
        zeta = torch.where(zeta == 0, torch.full_like(zeta, TINY), zeta)
        energy = 0.5 * fc * torch_values(term, term.expression, self.variables, r, zeta)
        return bonds.r.new_zeros(bonds.n_atoms).index_add(0, bonds.center, energy)

    def kernel(self, term, cutoff, k, context):
        fc = context.cutoff(cutoff)
        radius = cutoff.radius
        xi = context.function(f"xi_{k}", self.density_variables, term.density, term.constants)
        v = context.function(f"bond_{k}", self.variables, term.expression, term.constants)
        lines = [f"# bond-order term {k}: ½ Σ_bonds fc(r)·V(r, ζ), ζ_ij = Σ_k fc(r_ik)·ξ(r_ij, r_ik, cos θ)"]
        if fc:
            lines += [f"c, dc = {fc}(r)"]
        else:
            lines += [f"c, dc = (r < {radius!r}).to(r.dtype), torch.zeros_like(r)"]
        lines += [
            f"t1, t2 = angle_pairs(center, r, {radius!r}, n_atoms)",
            "columns = (r, unit[0], unit[1], unit[2], c, dc)",
            "r1, x1, y1, z1, c1, dc1 = (column.index_select(0, t1) for column in columns)",
            "r2, x2, y2, z2, c2, dc2 = (column.index_select(0, t2) for column in columns)",
            "cos = x1 * x2 + y1 * y2 + z1 * z2",
            f"q12, q12_1, q12_2, q12_c = {xi}(r1, r2, cos)",
            f"q21, q21_1, q21_2, q21_c = {xi}(r2, r1, cos)",
            "zeta = r.new_zeros(len(r)).index_add(0, t1, c2 * q12).index_add(0, t2, c1 * q21)",
            f"zeta = torch.where(zeta == 0, zeta.new_tensor({TINY!r}), zeta)  # a lone bond: ζ = 0⁺",
            f"v, v_r, v_z = {v}(torch.where(r < {radius!r}, r, r.new_tensor({radius / 2!r})), zeta)",
            "energy = energy + 0.5 * (c * v).sum()",
            "slope = slope + 0.5 * (dc * v + c * v_r)",
            "w = 0.5 * c * v_z  # ∂E/∂ζ per bond",
            "w1, w2 = w.index_select(0, t1), w.index_select(0, t2)",
            "v1 = w1 * c2 * q12_1 + w2 * (dc1 * q21 + c1 * q21_2)",
            "v2 = w2 * c1 * q21_1 + w1 * (dc2 * q12 + c2 * q12_2)",
            "vc = w1 * c2 * q12_c + w2 * c1 * q21_c",
            *ANGLE_FORCE_LINES,
        ]
        return "\n".join(lines)


BONDORDER = BondOrder()


def tersoff_term(parameters: dict[str, float], m: int = 3):
    """A :class:`~evopot.model.potential.Term` of Tersoff's form with ``parameters``
    (:data:`TERSOFF_PARAMETERS`; ``h`` is LAMMPS's cos θ₀) and exponent ``m``."""
    from evopot.model.potential import Term

    missing = sorted(set(TERSOFF_PARAMETERS) - set(parameters))
    if missing:
        raise EvopotError(f"Tersoff term: parameters {missing} missing")
    v, xi = tersoff_expressions(m)
    return Term(BONDORDER.name, v, {k: float(parameters[k]) for k in TERSOFF_PARAMETERS}, None, xi)


def tersoff_parameters(term) -> tuple[dict[str, float], int] | None:
    """(parameters, m) when ``term`` is Tersoff's form with named parameters (checked on
    values, not on how the formula is written), else None."""
    if term.kind != BONDORDER.name or not set(TERSOFF_PARAMETERS) <= set(term.constants):
        return None
    values = {k: term.constants[k] for k in TERSOFF_PARAMETERS}
    rng = np.random.default_rng(0)
    r, zeta = rng.uniform(1.5, 4.0, 64), rng.uniform(0.0, 4.0, 64)
    rij, rik, cos = rng.uniform(1.5, 4.0, 64), rng.uniform(1.5, 4.0, 64), rng.uniform(-1.0, 1.0, 64)
    names = tuple(term.constants)
    for m in (3, 1):
        reference = tersoff_expressions(m)
        ours, theirs = [], []
        for expression, template, args in (
            (term.expression, reference[0], (r, zeta)),
            (term.density, reference[1], (rij, rik, cos)),
        ):
            variables = ("r", "zeta") if len(args) == 2 else ("rij", "rik", "costheta")
            ours.append(_values(expression, variables, names, args, [term.constants[n] for n in names]))
            theirs.append(_values(template, variables, TERSOFF_PARAMETERS, args, list(values.values())))
        if all(np.allclose(a, b, rtol=1e-12, atol=1e-300) for a, b in zip(ours, theirs)):
            return values, m
    return None


def _values(expression, variables, names, args, constants):
    with np.errstate(all="ignore"):
        return np.asarray(compile_function(expression, tuple(variables), tuple(names))(*args, *constants)) + 0 * args[0]
