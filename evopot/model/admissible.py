"""Physical admissibility of a fitted potential: the checks a materials scientist makes
before running a formula, whatever its fit to the data.

A fitted set of terms is admissible when

1. **finite and smooth**: every expression of a distance (V, h, f, V3 of rij, rik, cos θ)
   and its slope are finite from the inner limit (:data:`INNER_FRACTION` of the
   shortest training distance, the export's own inner limit) to the cutoff, cos θ over
   [−1, 1]; F(ρ) finite at ρ = 0 (the kind's own rule, :meth:`TermKind.inadmissible`);
2. **repulsive core**: each pair term (and each bond-order term's bond V(r, ζ) plus the
   pair terms, at the ζ of :data:`CORE_ZETAS`) falls monotonically (V' < 0) from the
   inner limit to the shortest training distance, by at least :data:`CORE_RISE` eV, so
   an atom pushed closer than the data went is pushed back (not drawn in by a formula
   that turns over or flattens where no data constrained it);
   **a dimer that stands**: with embedding terms, the dimer (the pair terms plus
   2·F(f(r)), per embedded species), whose bond may be shorter than any in the data,
   falls at the inner limit and lies there at least :data:`CORE_RISE` eV above its
   lowest point up to the shortest training distance: an F(ρ) that plunges as a close
   neighbour's density grows would collapse it;
3. **no catastrophic cancellation**: the fit's linear parts do not cancel. With a_k·c_k
   the weighted contribution of basis k to the fitted energies and forces (the design
   column the fit solved), Σ_k ‖a_k c_k‖ / ‖Σ_k a_k c_k‖ ≤ :data:`MAX_CANCELLATION` over
   the data, per term: 10 means the parts are at most ten times larger than what they
   add up to (Lennard-Jones on its data: about 2–3; the 1.3e160/(r + 20)^118 members of
   old fronts: beyond 10⁵);
4. **constants of sane size**: every fitted constant, linear or not, is at most
   :data:`MAX_CONSTANT` in size, and so is every number of the formula as it is read,
   the fitted values inserted (e^b·r⁻⁶ with b = 86 fitted reads 2.8·10³⁷·r⁻⁶).

The search's fit applies rules 1 and 2 (:func:`inadmissible`, in
:func:`evopot.search.fitting.fit_constants`): such a candidate scores as failed, with
its rule as the reason. The dimer (:func:`collapsed_dimer`) and rules 3 and 4 are
applied where a formula would enter the archive (the front): a formula that breaks them
is often one rounding away from a good one (h = (r − 8·10³³)·e is e), so it is still
pruned and rounded, and what comes out of that enters if it passes; and the dimer lies
off the data (shorter than its bonds, with one neighbour), so a formula whose dimer
falls in stays a stepping stone of the search, never a member of its front.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evopot.model.potential import Term
from evopot.model.terms.base import values_and_slopes

#: the inner limit as a share of the shortest training distance (as evopot.export's)
INNER_FRACTION = 0.8
#: least rise (eV) of a pair term from the shortest training distance to the inner limit
CORE_RISE = 0.01
#: bond-order arguments at which a bond-order term's V(r, ζ) must be repulsive: a lone bond
#: (the dimer), and one with a neighbour's or four neighbours' worth of ζ
CORE_ZETAS = (0.0, 1.0, 4.0)
#: largest Σ‖a_k c_k‖ / ‖Σ a_k c_k‖ of a term's bases over the data
MAX_CANCELLATION = 10.0
#: largest size of a fitted constant
MAX_CONSTANT = 1e8
#: grid points per variable
POINTS = 48
DISTANCES = ("r", "rij", "rik")


@dataclass(frozen=True)
class Limits:
    """Where a potential is checked: the shortest training pair distance and the cutoff (Å)."""

    shortest: float
    radius: float

    @property
    def inner(self) -> float:
        return INNER_FRACTION * self.shortest


def inadmissible(terms: list[Term], limits: Limits, coefficients=None) -> str | None:
    """The first of rules 1 and 2 the fitted ``terms`` break (a short reason naming
    it), or None. With ``coefficients`` the terms are a fit's additive pieces (its
    basis terms) and the term they stand for is Σ coefficient·piece over the pieces of
    one kind and species: the pieces' compiled functions are the fit's own, so the check
    costs no new compilation."""
    groups = _groups(terms, coefficients)
    # a bond's energy is its bond-order V(r, ζ) and the pair terms between its atoms
    pairs = [part for key, parts in groups.items() if key[:2] == ("pair", None) for part in parts]
    for (kind, *_), parts in groups.items():
        for _, term in parts:
            reason = term.spec.inadmissible(term) or _not_finite(term, limits)
            if reason:
                return reason
        if kind in ("pair", "bondorder"):
            reason = _soft_core(parts + pairs if kind == "bondorder" else parts, limits)
            if reason:
                return reason
    return None


def collapsed_dimer(terms: list[Term], limits: Limits, coefficients=None) -> str | None:
    """The reason when an embedding term of ``terms`` (as :func:`inadmissible` takes
    them) collapses the dimer it makes with the pair terms between its species, else
    None. A dimer's bond is shorter than a crystal's (Cu₂ 2.22 Å, Sutton–Chen's 2.09,
    bcc Mo's neighbours 2.72 against Mo₂'s 1.94): its minimum may lie below the data,
    but a wall must stand at the inner limit."""
    groups = _groups(terms, coefficients)
    pair_species = sorted({key[1][0] for key in groups if key[0] == "pair" and key[1]})
    for (kind, species, *_), parts in groups.items():
        if kind != "embedding":
            continue
        for s in species or pair_species or [None]:
            beside = [p for key, ps in groups.items() if key[0] == "pair" and key[1] in (None, (s, s)) for p in ps]
            reason = _soft_core(parts + beside, limits)
            if reason:
                return reason
    return None


def _groups(terms: list[Term], coefficients) -> dict[tuple, list[tuple[float, Term]]]:
    """(coefficient, piece) pairs by the term they add up to: kind, species, cutoff, density."""
    if coefficients is None:
        coefficients = [1.0] * len(terms)
    groups: dict[tuple, list[tuple[float, Term]]] = {}
    for a, term in zip(coefficients, terms):
        groups.setdefault((term.kind, term.species, term.cutoff, term.density), []).append((float(a), term))
    return groups


def oversized(constants) -> str | None:
    """Rule 4: the reason when a constant of ``constants`` is beyond
    :data:`MAX_CONSTANT` in size (or not finite), else None."""
    for value in constants:
        if not abs(value) <= MAX_CONSTANT:
            return f"constant: a fitted constant {value:.3g} is beyond ±{MAX_CONSTANT:g}"
    return None


def cancelling(ratio: float) -> str | None:
    """Rule 3: the reason when a fit's :func:`cancellation` is beyond
    :data:`MAX_CANCELLATION`, else None."""
    if ratio > MAX_CANCELLATION:
        return f"cancellation: a term's parts are {ratio:.3g} times what they add up to on the data"
    return None


def cancellation(coefficients: np.ndarray, columns: list[np.ndarray]) -> float:
    """Σ_k ‖a_k c_k‖ / ‖Σ_k a_k c_k‖ of bases with coefficients a_k and columns c_k."""
    parts = [a * c for a, c in zip(coefficients, columns)]
    total = float(np.linalg.norm(np.sum(parts, axis=0))) if parts else 0.0
    size = sum(float(np.linalg.norm(p)) for p in parts)
    return size / total if total > 0 else (1.0 if size == 0 else float("inf"))


def _grid(variables: tuple[str, ...], limits: Limits) -> list[np.ndarray] | None:
    axes = []
    for name in variables:
        if name in DISTANCES:
            # up to the cutoff, not at it: a vanishing exp(s/(r − rc)) is 0/0 there in floating point
            axes.append(np.linspace(limits.inner, limits.radius, POINTS if len(variables) == 1 else 12, endpoint=False))
        elif name == "costheta":
            axes.append(np.linspace(-1.0, 1.0, 13))
        else:
            return None  # ρ, ζ: the kind's own rule checks them
    mesh = np.meshgrid(*axes, indexing="ij")
    return [m.ravel() for m in mesh]


def _not_finite(term: Term, limits: Limits) -> str | None:
    spec = term.spec
    pairs = [(term.expression, spec.variables)]
    if term.density is not None:
        pairs.append((term.density, spec.density_variables))
    for expression, variables in pairs:
        grid = _grid(tuple(variables), limits)
        if grid is None:
            continue
        with np.errstate(all="ignore"):
            value, slopes = values_and_slopes(term, expression, tuple(variables), *grid)
        arrays = [np.asarray(value, dtype=complex), *(np.asarray(s, dtype=complex) for s in slopes)]
        if not all(np.all(np.isfinite(a)) and not np.any(a.imag) for a in arrays):
            return (
                f"finite: {spec.name} term not finite or not smooth between the inner limit {limits.inner:.3g} Å and "
                f"the cutoff"
            )
    return None


def _soft_core(parts: list[tuple[float, Term]], limits: Limits) -> str | None:
    """Rule 2 for the pair term Σ a·part of ``parts``, for a bond-order term's bond
    V(r, ζ) at each of :data:`CORE_ZETAS`, and the dimer of an embedding term, pair
    terms plus 2·F(f(r)) (with the pair terms ``parts`` holds after the first kind's).
    The cutoff is taken as 1 there, below its onset."""
    kind = parts[0][1].kind
    r = np.linspace(limits.inner, limits.shortest, POINTS)
    for zeta in CORE_ZETAS if kind == "bondorder" else (None,):
        value, slope = np.zeros_like(r), np.zeros_like(r)
        with np.errstate(all="ignore"):
            for a, term in parts:
                v, dv = _bond_energy(term, r, zeta)
                value, slope = value + a * np.real(v), slope + a * np.real(dv)
            if kind == "embedding":  # a wall at the inner limit, above everything out to the data
                repulsive = slope[0] < 0 and value[0] - np.min(value) >= CORE_RISE
            else:
                repulsive = np.all(slope < 0) and value[0] - value[-1] >= CORE_RISE
        if not repulsive:
            if kind == "embedding":
                return (
                    f"dimer: pair terms + 2·F(f(r)) not repulsive at the inner limit {limits.inner:.3g} Å "
                    f"(must fall there and lie ≥ {CORE_RISE:g} eV above its lowest point up to {limits.shortest:.3g} Å)"
                )
            where = "pair term" if zeta is None else f"bond-order term's bond V(r, ζ = {zeta:g})"
            return (
                f"core: {where} not repulsive below the shortest training distance ({limits.inner:.3g}–"
                f"{limits.shortest:.3g} Å: V must fall by ≥ {CORE_RISE:g} eV)"
            )
    return None


def _bond_energy(term: Term, r: np.ndarray, zeta: float | None) -> tuple[np.ndarray, np.ndarray]:
    """What ``term`` adds to the energy of two atoms at distances ``r`` with nothing else
    near (a bond-order term at ``zeta``), and its r-derivative."""
    variables = term.spec.variables
    if term.kind == "embedding":  # each atom embedded in the other's density
        f, (df,) = values_and_slopes(term, term.density, term.spec.density_variables, r)
        F, (dF,) = values_and_slopes(term, term.expression, variables, 0 * r + f)
        return 2 * F, 2 * dF * df
    args = (r,) if term.kind == "pair" else (r, 0 * r + zeta)
    v, (dv, *_) = values_and_slopes(term, term.expression, variables, *args)
    return v, dv
