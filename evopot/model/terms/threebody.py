"""Three-body terms: V3(r_ij, r_ik, cos θ) per angle j–i–k, each angle once.

W = V3·fc(r_ij)·fc(r_ik) per angle, with ∂cos θ/∂r_ij(vector) = (û_ik − cos θ·û_ij)/r_ij.
A V3 that is not symmetric in r_ij ↔ r_ik is symmetrised, ½[V3(r_ij, r_ik, c) +
V3(r_ik, r_ij, c)], so that every angle counts once whatever the order of its bonds. A
species-specific term names the centre, then the two neighbours (in either order).

Search forms: ``general`` fills V3 whole; ``separable`` fills g(cos θ) (linear) and
h(r) (a shape), V3 = g(cos θ)·h(r_ij)·h(r_ik) (Stillinger–Weber, mW). In the MD kernel
a separable term whose g is a polynomial needs no angles at all: per-atom angular
moments give the same sum over pairs of bonds exactly (:func:`moment_lines`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import scipy.sparse
import sympy

from evopot.data.geometry import virial_matrix, voigt_outer
from evopot.model.terms.base import (
    Bonds,
    Curve,
    Prediction,
    Slot,
    TermKind,
    angles_per_atom,
    bond_angles,
    expression_operations,
    per_bond,
    swap_symmetric,
    values_and_slopes,
)
from evopot.model.terms.codegen import ANGLE_FORCE_LINES, torch_code

RIJ, RIK, COS, R = sympy.symbols("rij rik costheta r")


@dataclass(frozen=True)
class AngleTable:
    """The angles one three-body term acts on, with everything about them that does not
    depend on the term's formula; built once per geometry, cutoff and species pattern,
    since every candidate of a search needs it. ``r_ij``, ``r_ik`` (n_angles,) Å,
    ``cos_theta`` (n_angles,); ``cutoff_values`` (fc(r_ij), fc'(r_ij), fc(r_ik),
    fc'(r_ik)); ``frame`` (n_angles,) of each angle's centre; ``force_scatter`` sparse
    (3·n_atoms, 3·n_angles): ``force_scatter @ [∂W/∂r_ij; ∂W/∂r_ik; ∂W/∂cos θ]`` are the
    forces, flattened atom-major, with the bond geometry (unit vectors, ∂cos θ/∂bond)
    folded in; ``virial_scatter`` sparse (6·n_frames, 3·n_angles) the same for the
    frames' virials (:attr:`~evopot.data.geometry.Geometry.virial_scatter`)."""

    r_ij: np.ndarray
    r_ik: np.ndarray
    cos_theta: np.ndarray
    cutoff_values: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
    frame: np.ndarray
    force_scatter: scipy.sparse.csc_matrix
    virial_scatter: scipy.sparse.csc_matrix


def angle_table(geometry, cutoff, species: tuple[str, ...] | None) -> AngleTable:
    """The :class:`AngleTable` of the angles within ``cutoff`` whose species match
    ``species`` (centre, then the two neighbours in either order; ``None``: all)."""
    return geometry.memo(("angles", cutoff, species), lambda: build_angle_table(geometry, cutoff, species))


def build_angle_table(geometry, cutoff, species: tuple[str, ...] | None) -> AngleTable:
    """A new :class:`AngleTable` (:func:`angle_table` keeps one per geometry)."""
    t = geometry.triplets(cutoff.radius)
    bonds = geometry.bonds
    keep = slice(None) if species is None else np.nonzero(triplet_species_mask(geometry, t, species))[0]
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
    # the virial Σ over both bonds b of b ⊗ ∂W/∂b, per (quantity, angle) column
    frame = geometry.atom_frame[center]
    virial_values = np.concatenate(
        [
            voigt_outer(u1, u1) * r1[:, None],
            voigt_outer(u2, u2) * r2[:, None],
            voigt_outer(u1, c1) * r1[:, None] + voigt_outer(u2, c2) * r2[:, None],
        ]
    )
    return AngleTable(
        r_ij=r1,
        r_ik=r2,
        cos_theta=c,
        cutoff_values=(fc[p1], dfc[p1], fc[p2], dfc[p2]),
        frame=frame,
        force_scatter=scipy.sparse.csc_matrix(
            (np.concatenate(values), np.concatenate(rows), np.concatenate([[0], np.cumsum(per_column)])),
            shape=(3 * geometry.n_atoms, 3 * n),
        ),
        virial_scatter=virial_matrix(np.tile(frame, 3), virial_values, geometry.n_frames),
    )


@lru_cache(maxsize=1024)
def symmetric(expression: sympy.Expr) -> bool:
    """Whether ``expression`` is unchanged by swapping r_ij and r_ik."""
    return swap_symmetric(expression, RIJ, RIK)


def triplet_species_mask(geometry, t, species: tuple[str, ...]) -> np.ndarray:
    """Angles of triplets ``t`` whose centre is ``species[0]`` and whose two neighbours
    are ``species[1:]`` in either order."""
    index = {s: k for k, s in enumerate(geometry.species)}
    if any(s not in index for s in species):
        return np.zeros(len(t), dtype=bool)
    bonds = geometry.bonds
    centre = geometry.atom_species[t.center] == index[species[0]]
    a = geometry.atom_species[bonds.neighbor[t.bond_ij]]
    b = geometry.atom_species[bonds.neighbor[t.bond_ik]]
    x, y = index[species[1]], index[species[2]]
    return centre & (((a == x) & (b == y)) | ((a == y) & (b == x)))


def separable(term) -> tuple[sympy.Expr, sympy.Expr] | None:
    """(h(r), g(cos θ)) when the three-body term is g(cos θ)·h(r_ij)·h(r_ik) with the same
    h for both bonds (constants inserted), else None."""
    parts = sympy.separatevars(term.numeric(), symbols=[RIJ, RIK, COS], dict=True)
    if not parts:
        return None
    h_ij, h_ik = parts.get(RIJ, sympy.Integer(1)), parts.get(RIK, sympy.Integer(1))
    if h_ij.xreplace({RIJ: R}) != h_ik.xreplace({RIK: R}) or not h_ij.free_symbols <= {RIJ}:
        return None
    return h_ij.xreplace({RIJ: R}), parts["coeff"] * parts.get(COS, sympy.Integer(1))


def polynomial(angular: sympy.Expr, degree: int = 4) -> list[float] | None:
    """Coefficients c_0…c_n of g(cos θ) = Σ c_n cosⁿ θ when g is a polynomial of degree
    ≤ ``degree`` with numeric coefficients, else None."""
    if not angular.free_symbols <= {COS}:
        return None
    try:
        poly = sympy.Poly(sympy.expand(angular), COS)
    except sympy.PolynomialError:
        return None
    if poly.degree() > degree or not all(c.is_number for c in poly.all_coeffs()):
        return None
    return [float(c) for c in reversed(poly.all_coeffs())]


def moment_lines(coefficients: list[float]) -> list[str]:
    """Source of Σ_i Σ_{j<k} g(u_j·u_k)·h_j·h_k for g = Σ c_n cosⁿ without triplets (the
    angular-moment identity): (u_j·u_k)ⁿ = Σ_{|α|=n} n!/α! u_j^α u_k^α, so the sum over
    all ordered pairs of a centre's bonds is Σ_α w_α T_α² with T_α = Σ_j h_j u_j^α and
    w_α = c_n n!/α!; the pairs j = k (cos = 1) are taken out and the rest halved. Needs
    ``h``, ``dh`` (dh/dr) per bond; adds to energy, slope and per_bond."""
    ux, uy, uz = sympy.symbols("ux uy uz")
    monomials, weights = [], []
    for n, c in enumerate(coefficients):
        if c == 0:
            continue
        for a in range(n + 1):
            for b in range(n + 1 - a):
                monomials.append(ux**a * uy**b * uz ** (n - a - b))
                weights.append(
                    c * math.factorial(n) / (math.factorial(a) * math.factorial(b) * math.factorial(n - a - b))
                )
    if not monomials:  # g = 0: nothing to add
        return []
    weighted = [sympy.Symbol(f"wt[{m}]") for m in range(len(monomials))]
    total = sum(w * m for w, m in zip(weighted, monomials))

    def per_bond_code(expr: sympy.Expr) -> str:
        # a constant (g of degree 0 has ∂/∂u = 0) still needs a tensor to stack
        return f"torch.full_like(ux, {float(expr)!r})" if expr.is_number else torch_code(expr)

    slopes = [per_bond_code(sympy.diff(total, u)) for u in (ux, uy, uz)]
    rows = [per_bond_code(m) for m in monomials]
    return [
        "ux, uy, uz = unit",
        f"monomials = torch.stack(({', '.join(rows)},))",
        f"moments = r.new_zeros(({len(monomials)}, n_atoms)).index_add(1, center, monomials * h)  # T_α per atom",
        f"weights = r.new_tensor({tuple(weights)!r})[:, None]",
        f"energy = energy + 0.5 * (weights * moments * moments).sum() - {0.5 * sum(coefficients)!r} * (h * h).sum()",
        "wt = (weights * moments).index_select(1, center)  # w_α·T_α of each bond's centre",
        f"slope = slope + ((wt * monomials).sum(0) - {sum(coefficients)!r} * h) * dh",
        f"q = (h / r) * torch.stack(({', '.join(slopes)}))  # ∂E/∂u, over r",
        "per_bond = per_bond + torch.cat((-(q * unit).sum(0, keepdim=True), q))  # its part across the bond",
    ]


class ThreeBody(TermKind):
    name = "threebody"
    variables = ("rij", "rik", "costheta")
    label = "V3(rij, rik, costheta)"
    latex_label = r"V_3(r_{ij}, r_{ik}, \cos\theta)"
    species_count = 3
    forms = ("general", "separable")

    def slots(self, form):
        if form == "separable":
            return (Slot("g", ("costheta",), True), Slot("h", ("r",), False))
        return (Slot("V3", self.variables, True),)

    def from_slots(self, form, linear, shape, constants=()):
        if form == "separable":
            return linear * shape.xreplace({R: RIJ}) * shape.xreplace({R: RIK}), None
        return linear, None

    def applies(self, term, pattern) -> bool:
        """Whether ``term`` acts on angles with centre ``pattern[0]`` and neighbours
        ``pattern[1:]`` (in either order)."""
        s = term.species
        return s is None or (s[0] == pattern[0] and sorted(s[1:]) == sorted(pattern[1:]))

    def angle_energy_and_slopes(self, term, r1, r2, c, cutoff_values) -> tuple[np.ndarray, ...]:
        """W = V3(r_ij, r_ik, cos θ)·fc(r_ij)·fc(r_ik) per angle (eV), with ∂W/∂r_ij,
        ∂W/∂r_ik (eV/Å) and ∂W/∂cos θ (eV); all shaped ``(n_angles,)``.
        ``cutoff_values`` is (fc(r_ij), fc'(r_ij), fc(r_ik), fc'(r_ik))."""
        v, (v1, v2, vc) = values_and_slopes(term, term.expression, self.variables, r1, r2, c)
        if not symmetric(term.expression):
            w, (w1, w2, wc) = values_and_slopes(term, term.expression, self.variables, r2, r1, c)
            v, v1, v2, vc = (v + w) / 2, (v1 + w2) / 2, (v2 + w1) / 2, (vc + wc) / 2
        f1, df1, f2, df2 = cutoff_values
        with np.errstate(all="ignore"):
            return v * f1 * f2, (v1 * f1 + v * df1) * f2, (v2 * f2 + v * df2) * f1, vc * f1 * f2

    def curves(self, term, cutoff, r, r0):
        angles = np.linspace(-1, 1, 300)
        fc0 = float(cutoff.value(np.array([r0]))[0])
        with np.errstate(all="ignore"):
            angular, _ = values_and_slopes(
                term, term.expression, self.variables, 0 * angles + r0, 0 * angles + r0, angles
            )
            radial, _ = values_and_slopes(term, term.expression, self.variables, r, 0 * r + r0, 0 * r - 1 / 3)
        return [
            Curve("three-body term: angular", "cos θ", f"V3({r0:.2f}, {r0:.2f}, cos θ) (eV)", angles, {"": angular}),
            Curve(
                "radial",
                "r_ij (Å)",
                f"V3·fc·fc at r_ik = {r0:.2f}, cos θ = −1/3",
                r,
                {"": radial * cutoff.value(r) * fc0},
            ),
        ]

    def operations(self, term, cutoff, geometry):
        # a V3 not symmetric in r_ij ↔ r_ik is evaluated both ways round
        times = 1 if symmetric(term.expression) else 2
        return times * expression_operations(term.expression) * angles_per_atom(geometry, cutoff.radius, term.species)

    def prediction(self, term, cutoff, geometry):
        a = angle_table(geometry, cutoff, term.species)
        energy, d_r1, d_r2, d_c = self.angle_energy_and_slopes(term, a.r_ij, a.r_ik, a.cos_theta, a.cutoff_values)
        slopes = np.concatenate([d_r1, d_r2, d_c])
        return Prediction(
            np.bincount(a.frame, energy, geometry.n_frames),
            (a.force_scatter @ slopes).reshape(-1, 3),
            ((a.virial_scatter, slopes),),
        )

    def slot_energies(self, form, slots, cutoff, species, bonds: Bonds):

        t1, t2, r1, r2, cos = bond_angles(bonds, cutoff.radius)
        if form == "separable":
            # h(r)·fc(r) is a function of the bond: once per bond, then per angle only products
            radial = per_bond(bonds, lambda r: slots("h", r) * cutoff.value(r, "torch"), bonds.r < cutoff.radius)
            energy = slots("g", cos) * radial[t1] * radial[t2]
        else:
            energy = slots("V3", r1, r2, cos)
            if not slots.symmetric("V3"):  # every angle once, whatever the order of its bonds
                energy = (energy + slots("V3", r2, r1, cos)) / 2
            energy = energy * cutoff.value(r1, "torch") * cutoff.value(r2, "torch")
        if species is not None:
            c, x, y = (bonds.index(s) for s in species)
            a, b = bonds.species[bonds.neighbor[t1]], bonds.species[bonds.neighbor[t2]]
            energy = energy * ((bonds.species[bonds.center[t1]] == c) & (((a == x) & (b == y)) | ((a == y) & (b == x))))
        return bonds.r.new_zeros(bonds.n_atoms).index_add(0, bonds.center[t1], energy)

    def kernel(self, term, cutoff, k, context):
        if term.expression == 0:  # pruning can leave a term with no bases
            return f"# three-body term {k}: V3 = 0"
        fc = context.cutoff(cutoff)
        radius = cutoff.radius
        mask = None
        if term.species is not None:
            c, a, b = context.species_index(term.species)
            si, sj, sk = "species[center[t1]]", "species[neighbor[t1]]", "species[neighbor[t2]]"
            mask = f"({si} == {c}) & ((({sj} == {a}) & ({sk} == {b})) | (({sj} == {b}) & ({sk} == {a})))"
        lines = []
        parts = separable(term)
        if parts is not None:
            # h per bond (cutoff folded in), then per angle only products: SW and mW are of this form
            radial, angular = parts
            h = context.function(f"radial_{k}", ("r",), radial, {})
            lines += [
                f"# three-body term {k}: g(cos θ)·h(r_ij)·h(r_ik)·fc(r_ij)·fc(r_ik) per angle j–i–k",
                f"h, dh = {h}(torch.where(r < {radius!r}, r, r.new_tensor({radius / 2!r})))",
            ]
            if fc:
                lines += [f"c, dc = {fc}(r)", "h, dh = h * c, dh * c + h * dc"]
            coefficients = None if mask or not context.moments else polynomial(angular)
            if coefficients is not None:
                # g is a polynomial in cos θ: per-atom angular moments instead of triplets
                if radius < context.reach:
                    lines += [f"near = (r < {radius!r}).to(r.dtype)", "h, dh = h * near, dh * near"]
                terms = " + ".join(f"{c!r}·cos^{n}" for n, c in enumerate(coefficients) if c)
                lines += [f"# g(cos θ) = {terms}: no triplets, per-atom angular moments"]
                return "\n".join(lines + moment_lines(coefficients))
            g = context.function(f"angular_{k}", ("costheta",), angular, {})
        else:
            v3 = context.function(f"angle_{k}", self.variables, term.expression, term.constants)
            lines += [f"# three-body term {k}: V3(r_ij, r_ik, cos θ)·fc(r_ij)·fc(r_ik) per angle j–i–k"]
        lines += [f"t1, t2 = angle_pairs(center, r, {radius!r}, n_atoms)"]
        if mask:
            lines += [
                f"keep = torch.nonzero({mask}).squeeze(1)",
                "t1, t2 = t1.index_select(0, keep), t2.index_select(0, keep)",
            ]
        # each per-bond quantity the angle needs, gathered for both bonds (contiguous columns)
        columns = "r, unit[0], unit[1], unit[2]" + (", h, dh" if parts is not None else "")
        names = "r{s}, x{s}, y{s}, z{s}" + (", h{s}, dh{s}" if parts is not None else "")
        lines += [
            f"{names.format(s=1)} = (column.index_select(0, t1) for column in ({columns}))",
            f"{names.format(s=2)} = (column.index_select(0, t2) for column in ({columns}))",
            "cos = x1 * x2 + y1 * y2 + z1 * z2",
        ]
        if parts is not None:
            lines += [
                f"g, dg = {g}(cos)",
                "gh2 = g * h2",
                "v, v1, v2, vc = gh2 * h1, gh2 * dh1, g * h1 * dh2, dg * h1 * h2",
            ]
        else:
            lines += [f"v, v1, v2, vc = {v3}(r1, r2, cos)"]
            if not symmetric(term.expression):
                lines += [
                    f"w, w2, w1, wc = {v3}(r2, r1, cos)",
                    "v, v1, v2, vc = 0.5 * (v + w), 0.5 * (v1 + w1), 0.5 * (v2 + w2), 0.5 * (vc + wc)",
                ]
            if fc:
                lines += [
                    f"c1, dc1 = {fc}(r1)",
                    f"c2, dc2 = {fc}(r2)",
                    "c12 = c1 * c2",
                    "v1, v2, vc = (v1 * c1 + v * dc1) * c2, (v2 * c2 + v * dc2) * c1, vc * c12",
                    "v = v * c12",
                ]
        lines += [
            "energy = energy + v.sum()",
            "# ∂W/∂d1 = (∂W/∂r1 − ∂W/∂cos·cos/r1)·u1 + ∂W/∂cos/r1·u2: the u1 part is radial (a slope)",
            *ANGLE_FORCE_LINES,
        ]
        return "\n".join(lines)


THREEBODY = ThreeBody()
