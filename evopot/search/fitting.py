"""Constant fitting: the linear coefficients by least squares, the rest by refinement.

A candidate (:mod:`evopot.search.candidate`) is a sum over its terms of linear coefficients
times basis terms, E = Σ_k a_k · E_k(θ). Energies and forces are linear in the
coefficients a (and in the per-species reference energies), so for any θ those are
solved exactly by linear least squares, each basis term's energies and forces forming
one column, computed by the evaluator; the nonlinear constants θ (inside
exponentials, powers, the three-body radial function, the density, …) are refined by
``scipy.optimize.least_squares`` on the residual left after that linear solve
(variable projection). Its Jacobian is by forward differences, like scipy's own, but a
step in one constant recomputes only the columns that depend on it (a three-body
constant leaves the pair columns alone). Rows are weighted so that the loss is

    w_F · mean(ΔF²) + w_E · mean((ΔE / n_atoms)²) + w_S · mean(Δσ²)

with forces in eV/Å, energies per atom in eV and the stress components σ in GPa (over
the frames that have a DFT stress; stresses are linear in the coefficients too, each
basis term's virials forming its column's stress rows). A fit that produces non-finite numbers
anywhere is reported as failed, never raised; so is one that leaves an embedding's F
infinite at ρ = 0, where an isolated atom must still have a finite energy (the frames'
atoms all have neighbours, so only this check sees it).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.optimize
import sympy
from ase import units

from evopot.data.dataset import Frames
from evopot.data.geometry import Geometry, build_geometry
from evopot.model.admissible import Limits, cancellation, cancelling, collapsed_dimer, inadmissible, oversized
from evopot.model.cutoff import Cutoff
from evopot.model.evaluate import term_prediction
from evopot.model.potential import Term
from evopot.model.properties import PropertyTarget
from evopot.search.candidate import Candidate


@dataclass(frozen=True)
class FitProblem:
    """A geometry with its DFT labels and the loss weights.

    ``energies (n_frames,)`` eV, ``forces (n_atoms, 3)`` eV/Å, weights dimensionless.
    """

    geometry: Geometry
    energies: np.ndarray
    forces: np.ndarray
    cutoff: Cutoff
    force_weight: float = 1.0
    energy_weight: float = 0.1
    #: per-species reference energies (eV, the geometry's species order) held fixed, or
    #: None: fitted with the formula's linear coefficients
    references: tuple[float, ...] | None = None
    #: crystal properties the archive steers the front towards (:mod:`evopot.model.properties`), or None
    properties: PropertyTarget | None = None
    #: the folder through which the search's processes share compiled functions
    #: (:mod:`evopot.model.compiled`), or None
    compiled: str | None = None
    #: ``(n_frames, 6)`` DFT stresses (eV/Å³, ASE's convention; NaN rows: none), or None
    stresses: np.ndarray | None = None
    #: weight of the mean squared stress error (GPa²); 0 leaves stresses out
    stress_weight: float = 0.0

    @classmethod
    def from_frames(
        cls,
        frames: Frames,
        cutoff: Cutoff,
        species,
        force_weight=1.0,
        energy_weight=0.1,
        references=None,
        stress_weight=0.0,
    ) -> FitProblem:
        """The problem of ``frames``; ``references`` maps species to fixed reference
        energies (every species of the geometry), or None to fit them."""
        geometry = build_geometry(frames, cutoff.radius, species)
        fixed = None if references is None else tuple(float(references[s]) for s in geometry.species)
        return cls(
            geometry,
            frames.energies,
            np.concatenate(frames.forces),
            cutoff,
            force_weight,
            energy_weight,
            fixed,
            stresses=frames.stresses,
            stress_weight=stress_weight,
        )

    @cached_property
    def stress_frames(self) -> np.ndarray:
        """The frames whose stresses are fitted: those with a DFT stress when the stress
        weight is positive, else none."""
        if self.stress_weight <= 0 or self.stresses is None:
            return np.zeros(0, dtype=int)
        return np.nonzero(np.all(np.isfinite(self.stresses), axis=1))[0]

    def reference_energies(self, fitted: np.ndarray) -> np.ndarray:
        """The reference energies of a fit whose reference coefficients are ``fitted``."""
        return np.array(self.references) if self.references is not None else fitted

    @cached_property
    def limits(self) -> Limits | None:
        """Where fitted formulas must be admissible (:mod:`evopot.model.admissible`)."""
        g = self.geometry
        return Limits(float(g.pair_distances.min()), self.cutoff.radius) if g.n_pairs else None

    @cached_property
    def volumes(self) -> np.ndarray:
        """(n_frames,) cell volumes (Å³)."""
        return np.abs(np.linalg.det(self.geometry.cells))

    @cached_property
    def row_scale(self) -> np.ndarray:
        """Weight of each residual row: energy rows first, then force components, then
        six virial components per frame of :attr:`stress_frames` (a virial in eV over
        the volume is the stress, in GPa here)."""
        g = self.geometry
        energy_rows = np.sqrt(self.energy_weight / g.n_frames) / g.atoms_per_frame
        force_rows = np.full(3 * g.n_atoms, np.sqrt(self.force_weight / (3 * g.n_atoms)))
        stressed = self.stress_frames
        stress_rows = np.repeat(
            np.sqrt(self.stress_weight / (6 * max(1, len(stressed)))) / (units.GPa * self.volumes[stressed]), 6
        )
        return np.concatenate([energy_rows, force_rows, stress_rows])

    @cached_property
    def target(self) -> np.ndarray:
        """Weighted targets: energies (less fixed reference energies), forces, virials."""
        energies = self.energies
        if self.references is not None:
            energies = energies - self.geometry.species_counts @ np.array(self.references)
        stressed = self.stress_frames
        virials = self.stresses[stressed] * self.volumes[stressed, None] if len(stressed) else np.zeros(0)
        return np.concatenate([energies, self.forces.ravel(), virials.ravel()]) * self.row_scale

    @cached_property
    def reference_columns(self) -> np.ndarray:
        """Columns of the per-species reference energies (they touch energy rows only)."""
        g = self.geometry
        cols = np.zeros((len(self.row_scale), 0 if self.references is not None else len(g.species)))
        if self.references is None:
            cols[: g.n_frames] = g.species_counts
        return cols * self.row_scale[:, None]

    def column(self, term: Term) -> np.ndarray:
        """The weighted design-matrix column of one term: energy, force and virial rows."""
        part = term_prediction(term, term.cutoff or self.cutoff, self.geometry)
        virials = part.virials[self.stress_frames].ravel() if len(self.stress_frames) else np.zeros(0)
        return np.concatenate([part.energies, part.forces.ravel(), virials]) * self.row_scale


@dataclass(frozen=True)
class FitResult:
    """Fitted constants and the weighted RMSE ``loss`` (sqrt of the loss above)."""

    ok: bool
    loss: float
    linear: np.ndarray
    nonlinear: np.ndarray
    reference_energies: np.ndarray
    message: str = ""
    #: Σ‖a_k c_k‖ / ‖Σ a_k c_k‖ of the term whose bases cancel most (evopot.model.admissible)
    cancellation: float = 1.0
    #: why an embedding term's dimer collapses (evopot.model.admissible.collapsed_dimer), or ""
    dimer: str = ""

    @property
    def refused(self) -> str | None:
        """Why the front refuses this fit, by the rules judged there (the dimer, the
        cancellation, the constants' size: evopot.model.admissible), or None."""
        return self.dimer or cancelling(self.cancellation) or oversized([*self.linear, *self.nonlinear])


FAILED = float("inf")

#: Relative finite-difference step of the Jacobian in θ (scipy's 2-point default).
_STEP = float(np.sqrt(np.finfo(float).eps))


#: Errors that mean "this formula cannot be evaluated", not "evopot is broken".
UNFIT = (
    NotImplementedError,
    TypeError,
    ValueError,
    ZeroDivisionError,
    OverflowError,
    FloatingPointError,
    KeyError,
    np.linalg.LinAlgError,
)


class VariableProjection:
    """The residual of ``candidate`` on ``problem`` as a function of its nonlinear
    constants θ alone, the linear coefficients solved exactly at every θ, and its
    Jacobian by forward differences. Where the residual is not finite it is a large
    constant ``penalty`` instead, so the refinement backs away from there."""

    def __init__(self, problem: FitProblem, candidate: Candidate):
        self.problem = problem
        self.candidate = candidate
        self.n = len(candidate.bases)
        self.penalty = np.full(len(problem.target), 1e3 * (np.abs(problem.target).max() + 1))
        self._columns: dict[bytes, list[np.ndarray]] = {}

    def columns(self, theta) -> list[np.ndarray]:
        """The weighted column of every basis at θ; those of the last θ are kept, since
        scipy asks for the Jacobian at the θ it has just evaluated."""
        key = np.asarray(theta, dtype=float).tobytes()
        if key not in self._columns:
            self._columns.clear()
            self._columns[key] = [self.problem.column(term) for term in self.candidate.basis_terms(theta)]
        return self._columns[key]

    def solve(self, theta, columns=None):
        """(coefficients, weighted residual) at θ (with ``columns``, when given), or
        (None, None) when anything is non-finite. The coefficients are the candidate's
        linear ones, then the reference energies."""
        problem = self.problem
        with np.errstate(all="ignore"):
            columns = self.columns(theta) if columns is None else columns
            matrix = np.column_stack(columns + [problem.reference_columns]) if columns else problem.reference_columns
            if np.iscomplexobj(matrix) or not np.all(np.isfinite(matrix)):
                return None, None
            norms = np.linalg.norm(matrix, axis=0)
            if not np.all(np.isfinite(norms)):
                return None, None
            norms[norms == 0] = 1.0
            coefficients, *_ = np.linalg.lstsq(matrix / norms, problem.target, rcond=None)
            coefficients = coefficients / norms
            return coefficients, matrix @ coefficients - problem.target

    def residual(self, theta, columns=None) -> np.ndarray:
        res = self.solve(theta, columns)[1]
        return self.penalty if res is None or not np.all(np.isfinite(res)) else res

    def jacobian(self, theta) -> np.ndarray:
        """∂(residual)/∂θ, (n_rows, n_θ), by forward differences with scipy's
        "2-point" steps; a step in θ_j recomputes only the columns that depend on θ_j
        (a three-body constant leaves the pair columns alone)."""
        theta = np.asarray(theta, dtype=float)
        columns = self.columns(theta)
        base = self.residual(theta, columns)
        jac = np.empty((len(base), len(theta)))
        for j in range(len(theta)):
            moved = theta.copy()
            moved[j] += _STEP * (1.0 if theta[j] >= 0 else -1.0) * max(1.0, abs(theta[j]))
            step = moved[j] - theta[j]
            dependent = [k for k in range(self.n) if j in self.candidate.basis_parameters[k]]
            shifted = list(columns)
            for k, term in zip(dependent, self.candidate.basis_terms(moved, only=set(dependent))):
                shifted[k] = self.problem.column(term)
            jac[:, j] = (self.residual(moved, shifted) - base) / step
        return jac


def fit_constants(problem: FitProblem, candidate: Candidate, max_evaluations: int = 60) -> FitResult:
    """Fit the candidate's constants to ``problem``.

    For any nonlinear θ the linear coefficients a (and the per-species reference
    energies) are solved exactly; θ is refined from ``candidate.initial`` by
    ``least_squares`` on what that leaves (``max_evaluations=0`` keeps θ fixed).
    Returns a, θ, the reference energies and the loss; ``ok`` is False when any
    number went non-finite, the formula cannot be evaluated, or F(0) is not finite.
    """
    n = len(candidate.bases)
    initial = np.asarray(candidate.initial, dtype=float)

    def failed(message: str) -> FitResult:
        return FitResult(False, FAILED, np.zeros(n), initial, np.zeros(len(problem.geometry.species)), message)

    expressions = [b for _, b in candidate.bases] + [c.shape for c in candidate.components if c.shape is not None]
    if any(e.has(sympy.zoo, sympy.oo, -sympy.oo, sympy.nan, sympy.I) for e in expressions) or not np.all(
        np.isfinite(initial)
    ):
        return failed("infinite or undefined expression")

    projection = VariableProjection(problem, candidate)
    theta = initial
    try:
        if len(theta) and max_evaluations > 0:
            with np.errstate(all="ignore"):
                opt = scipy.optimize.least_squares(
                    projection.residual,
                    theta,
                    jac=projection.jacobian,
                    method="trf",
                    x_scale="jac",
                    max_nfev=max_evaluations,
                )
            if np.all(np.isfinite(opt.x)):
                theta = opt.x
        coefficients, res = projection.solve(theta)
    except UNFIT as exc:  # a formula numpy cannot evaluate (unevaluated derivative, …)
        return failed(str(exc))
    if res is None or not np.all(np.isfinite(res)) or not np.all(np.isfinite(coefficients)):
        return failed("non-finite values")
    pieces = candidate.basis_terms(theta)
    for term in pieces:
        reason = term.spec.inadmissible(term)
        if reason:
            return failed(reason)
    limits, ratio, dimer = problem.limits, 1.0, None
    if limits is not None:
        reason = inadmissible(pieces, limits, coefficients[:n])
        if reason:
            return failed(f"inadmissible: {reason}")  # the GP engine counts these by rule
        ratio = _cancellation(candidate, coefficients[:n], projection.columns(theta))
        dimer = collapsed_dimer(pieces, limits, coefficients[:n])
    loss = float(np.sqrt(np.sum(res**2)))
    references = problem.reference_energies(coefficients[n:])
    return FitResult(True, loss, coefficients[:n], theta, references, "", ratio, dimer or "")


def _cancellation(candidate: Candidate, linear, columns: list[np.ndarray]) -> float:
    """The largest :func:`cancellation` of any term's bases on the data."""
    ratios = [1.0]
    for k in range(len(candidate.components)):
        mine = [i for i, (component, _) in enumerate(candidate.bases) if component == k]
        if mine:
            ratios.append(cancellation(linear[mine], [columns[i] for i in mine]))
    return max(ratios)
