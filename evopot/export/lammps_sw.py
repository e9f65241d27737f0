"""Stillinger–Weber-form terms → a LAMMPS ``.sw`` parameter file (``pair_style sw``).

LAMMPS's SW is
    φ₂(r) = A ε [B (σ/r)^p − (σ/r)^q] exp(σ/(r − aσ)),
    φ₃ = λ ε (cos θ − cos θ₀)² exp(γσ/(r_ij − aσ)) exp(γσ/(r_ik − aσ)).
A discovered three-body term maps onto it when, with its constants inserted, it is
G(cos θ)·exp(t/(r_ij − d))·exp(t/(r_ik − d)) with G a perfect square
λ(cos θ − c₀)², d the cutoff radius and cutoff function ``none`` (SW's exponentials
are its cutoff). The pair terms map when they are (c₁ r^e₁ + c₂ r^e₂)·exp(s/(r − d))
with the same d; otherwise the ``.sw`` file carries A = 0 and the pair terms go to a
table overlaid on it. ε is set to 1 (its product with A and λ is what counts). Every
mapping is checked numerically against the term before it is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product
from pathlib import Path

import numpy as np
import sympy

from evopot.errors import EvopotError
from evopot.model.potential import Potential, Term

R, RIJ, RIK, COS = sympy.symbols("r rij rik costheta")


class NotStillingerWeber(EvopotError):
    """The terms are not exactly of SW form (the message says why)."""


@dataclass(frozen=True)
class SWParameters:
    epsilon: float
    sigma: float
    a: float
    lam: float
    gamma: float
    cos0: float
    A: float
    B: float
    p: float
    q: float

    def fields(self) -> list[float]:
        return [self.epsilon, self.sigma, self.a, self.lam, self.gamma, self.cos0, self.A, self.B, self.p, self.q, 0.0]

    def pair_expression(self) -> sympy.Expr:
        s = self.sigma
        return (
            self.A * self.epsilon * (self.B * (s / R) ** self.p - (s / R) ** self.q) * sympy.exp(s / (R - self.a * s))
        )

    def angle_expression(self) -> sympy.Expr:
        s, d = self.sigma, self.a * self.sigma
        return (
            self.lam
            * self.epsilon
            * (COS - self.cos0) ** 2
            * sympy.exp(self.gamma * s / (RIJ - d))
            * sympy.exp(self.gamma * s / (RIK - d))
        )


def sw_parameters(potential: Potential) -> tuple[SWParameters, bool]:
    """SW parameters of ``potential``'s three-body term, and whether its pair terms are
    in them too (else they must be exported separately). Raises :class:`NotStillingerWeber`."""
    angles = [t for t in potential.terms if t.kind == "threebody"]
    if len(angles) != 1 or any(t.kind == "embedding" for t in potential.terms):
        raise NotStillingerWeber("SW needs exactly one three-body term and no embedding term")
    if any(t.species is not None for t in potential.terms) and len(potential.species) > 1:
        raise NotStillingerWeber("species-specific terms: the .sw export covers terms shared by all species")
    angle = angles[0]
    cutoff = potential.cutoff_of(angle)
    if cutoff.kind != "none":
        raise NotStillingerWeber(
            f"the three-body term uses cutoff function '{cutoff.kind}'; SW's own exponentials are its cutoff "
            f"(cutoff function none)"
        )
    d = cutoff.radius
    g, t = _separable_angle(angle, d)
    c2, c1, c0 = (float(g.coeff(COS, k)) for k in (2, 1, 0))
    if c2 == 0 or abs(c0 - c1**2 / (4 * c2)) > 1e-8 * max(abs(c0), abs(c1), abs(c2)):
        raise NotStillingerWeber(f"g(cos θ) = {sympy.sstr(g)} is not of the form λ(cos θ − cos θ₀)²")
    lam, cos0 = c2, -c1 / (2 * c2)
    try:
        sigma, A, B, p, q = _pair_parameters(potential, d)
        pair_included = True
    except NotStillingerWeber:
        sigma, A, B, p, q = 1.0, 0.0, 0.0, 0.0, 0.0
        pair_included = False
    params = SWParameters(1.0, sigma, d / sigma, lam, t / sigma, cos0, A, B, p, q)
    _check(params.angle_expression(), angle.numeric(), (RIJ, RIK, COS), d)
    if pair_included:
        _check(params.pair_expression(), _pair_sum(potential), (R,), d)
    return params, pair_included


def _separable_angle(term: Term, d: float) -> tuple[sympy.Poly, float]:
    """G(cos θ) as a polynomial and t, for a term G·exp(t/(r_ij − d) + t/(r_ik − d))."""
    expr = sympy.powsimp(sympy.expand(term.numeric()), combine="exp")
    radial = [e for e in expr.atoms(sympy.exp) if e.free_symbols & {RIJ, RIK}]
    if len(radial) != 1:
        raise NotStillingerWeber(
            "the three-body term is not one angular factor times exp(t/(r_ij − d))·exp(t/(r_ik − d))"
        )
    g = sympy.expand(sympy.simplify(expr / radial[0]))
    if not g.free_symbols <= {COS}:
        raise NotStillingerWeber("the angular factor of the three-body term depends on the bond lengths")
    t_ij = _pole_strength(radial[0].args[0], RIJ, d, "three-body")
    t_ik = _pole_strength(radial[0].args[0], RIK, d, "three-body")
    if abs(t_ij - t_ik) > 1e-9 * abs(t_ij):
        raise NotStillingerWeber("the three-body term's two radial factors differ")
    constant = sum(
        (a for a in sympy.Add.make_args(sympy.expand(radial[0].args[0])) if not a.free_symbols), sympy.Integer(0)
    )
    g = sympy.expand(g * sympy.exp(constant))
    try:
        poly = sympy.Poly(g, COS)
    except sympy.PolynomialError:
        raise NotStillingerWeber(f"g(cos θ) = {sympy.sstr(g)} is not a polynomial") from None
    if poly.degree() > 2:
        raise NotStillingerWeber(f"g(cos θ) = {sympy.sstr(g)} is of degree {poly.degree()}, SW's is 2")
    return sympy.Poly(g, COS).as_expr(), t_ij


def _pole_strength(argument: sympy.Expr, variable: sympy.Symbol, d: float, what: str) -> float:
    """t for the part t/(variable − d) of an exponent."""
    part = sympy.Add(*[a for a in sympy.Add.make_args(sympy.expand(argument)) if variable in a.free_symbols])
    numerator, denominator = sympy.fraction(sympy.together(part))
    try:
        den = sympy.Poly(denominator, variable)
    except sympy.PolynomialError:
        den = None
    if den is None or den.degree() != 1 or numerator.free_symbols:
        raise NotStillingerWeber(f"the {what} exponent {sympy.sstr(part)} is not t/({variable} − d)")
    alpha, beta = (float(c) for c in den.all_coeffs())
    pole = -beta / alpha
    if abs(pole - d) > 1e-9 * d:
        raise NotStillingerWeber(
            f"the {what} exponent has its pole at {pole:.6g} Å, not at the cutoff radius {d:.6g} Å"
        )
    return float(numerator) / alpha


def _pair_sum(potential: Potential) -> sympy.Expr:
    pairs = [t for t in potential.terms if t.kind == "pair"]
    if not pairs or any(potential.cutoff_of(t).kind != "none" for t in pairs):
        raise NotStillingerWeber("the pair terms use a cutoff function other than none")
    return sympy.Add(*[t.numeric() for t in pairs])


def _pair_parameters(potential: Potential, d: float) -> tuple[float, float, float, float, float]:
    """σ, A, B, p, q (ε = 1) of pair terms (c₁ r^e₁ + c₂ r^e₂)·exp(σ/(r − d))."""
    pair = sympy.powsimp(sympy.expand(_pair_sum(potential)), combine="exp")
    radial = list(pair.atoms(sympy.exp))
    if len(radial) != 1:
        raise NotStillingerWeber("the pair term is not a sum of powers times exp(σ/(r − aσ))")
    sigma = _pole_strength(radial[0].args[0], R, d, "pair")
    powers = sympy.expand(sympy.simplify(pair / radial[0]))
    terms = []
    for piece in sympy.Add.make_args(powers):
        e = sympy.simplify(R * sympy.diff(piece, R) / piece)  # r·V'/V is the exponent of a power
        if e.free_symbols:
            raise NotStillingerWeber(f"the pair prefactor {sympy.sstr(powers)} is not a sum of powers of r")
        terms.append((float(piece.subs(R, 1)), float(e)))
    if len(terms) == 1:
        ((c1, e1),) = terms
        return sigma, c1 / sigma ** (-e1), 2.0, -e1, -e1  # A(B − 1)(σ/r)^p with B = 2
    if len(terms) != 2:
        raise NotStillingerWeber(f"the pair prefactor {sympy.sstr(powers)} has {len(terms)} powers of r, SW has two")
    (c1, e1), (c2, e2) = sorted(terms, key=lambda term: term[1])  # p > q, as SW writes it
    p, q = -e1 + 0.0, -e2 + 0.0  # no negative zero in the file
    A = -c2 / sigma**q
    return sigma, A, c1 / (A * sigma**p), p, q


def _check(mapped: sympy.Expr, original: sympy.Expr, variables, d: float) -> None:
    """The mapped SW expression equals the term at 2,000 random points inside the cutoff."""
    rng = np.random.default_rng(0)
    points = [rng.uniform(-1, 1, 2000) if v == COS else rng.uniform(0.5 * d, 0.995 * d, 2000) for v in variables]
    with np.errstate(all="ignore"):
        a = sympy.lambdify(variables, mapped, "numpy")(*points) + 0 * points[0]
        b = sympy.lambdify(variables, original, "numpy")(*points) + 0 * points[0]
    if not np.allclose(a, b, rtol=1e-9, atol=1e-12 * max(1.0, float(np.max(np.abs(b))))):
        raise NotStillingerWeber("the SW parameters do not reproduce the term (checked at random points)")


def write_sw(potential: Potential, path: Path, params: SWParameters, header: list[str]) -> None:
    """One entry per element triplet (all the same: shared terms)."""
    lines = [f"# {line}" for line in header]
    lines.append("# element1 element2 element3 epsilon sigma a lambda gamma costheta0 A B p q tol")
    for triplet in product(potential.species, repeat=3):
        lines.append(" ".join(triplet) + " " + " ".join(f"{v:.16g}" for v in params.fields()))
    path.write_text("\n".join(lines) + "\n")
