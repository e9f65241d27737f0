"""Constant fitting: the linear coefficients by least squares, the rest by refinement.

A candidate pair function is a sum of basis functions, V(r) = Σ_k a_k · b_k(r; θ).
Energies and forces are linear in the outer coefficients a (and the per-species
reference energies), so for any θ those are solved exactly by linear least squares;
the nonlinear constants θ (inside exponentials, powers, …) are refined by
``scipy.optimize.least_squares`` on the residual left after that linear solve
(variable projection). Rows are weighted so that the loss is

    w_F · mean(ΔF²) + w_E · mean((ΔE / n_atoms)²)

with forces in eV/Å and energies per atom in eV. A fit that produces non-finite numbers
anywhere is reported as failed, never raised.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np
import scipy.optimize
import sympy

from evopot.cutoff import Cutoff
from evopot.data import Frames
from evopot.geometry import Geometry, build_geometry


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

    @classmethod
    def from_frames(cls, frames: Frames, cutoff: Cutoff, species, force_weight=1.0, energy_weight=0.1) -> "FitProblem":
        geometry = build_geometry(frames, cutoff.radius, species)
        return cls(geometry, frames.energies, np.concatenate(frames.forces), cutoff, force_weight, energy_weight)

    @cached_property
    def row_scale(self) -> np.ndarray:
        """Weight of each residual row: energy rows first, then force components."""
        g = self.geometry
        energy_rows = np.sqrt(self.energy_weight / g.n_frames) / g.atoms_per_frame
        force_rows = np.full(3 * g.n_atoms, np.sqrt(self.force_weight / (3 * g.n_atoms)))
        return np.concatenate([energy_rows, force_rows])

    @cached_property
    def target(self) -> np.ndarray:
        return np.concatenate([self.energies, self.forces.ravel()]) * self.row_scale

    @cached_property
    def cutoff_values(self) -> tuple[np.ndarray, np.ndarray]:
        return self.cutoff.value_and_derivative(self.geometry.pair_distances)

    @cached_property
    def reference_columns(self) -> np.ndarray:
        """Columns of the per-species reference energies (they touch energy rows only)."""
        g = self.geometry
        cols = np.zeros((g.n_frames + 3 * g.n_atoms, len(g.species)))
        cols[: g.n_frames] = g.species_counts
        return cols * self.row_scale[:, None]

    def basis_columns(self, values: np.ndarray, slopes: np.ndarray) -> np.ndarray:
        """Design-matrix columns for per-pair basis values and slopes of shape
        ``(n_pairs, n_basis)``: energy rows then force rows, weighted."""
        fc, dfc = self.cutoff_values
        g = self.geometry
        energy = g.energy_scatter @ (values * fc[:, None])
        forces = g.force_scatter @ (slopes * fc[:, None] + values * dfc[:, None])
        return np.vstack([energy, forces]) * self.row_scale[:, None]


@dataclass(frozen=True)
class FitResult:
    """Fitted constants and the weighted RMSE ``loss`` (sqrt of the loss above)."""

    ok: bool
    loss: float
    linear: np.ndarray
    nonlinear: np.ndarray
    reference_energies: np.ndarray
    message: str = ""


FAILED = float("inf")


@lru_cache(maxsize=4096)
def compile_basis(bases: tuple[sympy.Expr, ...], parameters: tuple[sympy.Symbol, ...]):
    """One NumPy function ``(r, θ) -> (values, slopes)`` for all bases at once (with cse)."""
    r = sympy.Symbol("r")
    exprs = list(bases) + [sympy.diff(b, r) for b in bases]
    return sympy.lambdify([r, list(parameters)], exprs, modules="numpy", cse=True)


def fit_constants(problem: FitProblem, bases: tuple[sympy.Expr, ...], parameters: tuple[sympy.Symbol, ...], initial: np.ndarray, max_evaluations: int = 60) -> FitResult:
    """Fit V(r) = Σ_k a_k b_k(r; θ) to ``problem``.

    ``bases`` are sympy expressions in ``r`` and ``parameters`` (θ), ``initial`` the
    starting θ (``max_evaluations=0`` keeps θ fixed and solves only the linear part).
    Returns the linear coefficients a, the refined θ, the per-species reference
    energies and the loss; ``ok`` is False when any number went non-finite.
    """
    r = problem.geometry.pair_distances
    n = len(bases)
    no_references = np.zeros(len(problem.geometry.species))
    if any(b.has(sympy.zoo, sympy.oo, -sympy.oo, sympy.nan, sympy.I) for b in bases) or not np.all(np.isfinite(initial)):
        return FitResult(False, FAILED, np.zeros(n), np.asarray(initial, float), no_references, "infinite or undefined expression")
    function = compile_basis(tuple(bases), tuple(parameters))

    def design(theta):
        if n == 0:
            return problem.reference_columns
        with np.errstate(all="ignore"):
            out = function(r, list(theta))
        values = np.column_stack([np.broadcast_to(o, r.shape) for o in out[:n]])
        slopes = np.column_stack([np.broadcast_to(o, r.shape) for o in out[n:]])
        if np.iscomplexobj(values) or np.iscomplexobj(slopes) or not (np.all(np.isfinite(values)) and np.all(np.isfinite(slopes))):
            return None
        return np.hstack([problem.basis_columns(values, slopes), problem.reference_columns])

    def solve(theta):
        matrix = design(theta)
        if matrix is None:
            return None, None
        with np.errstate(all="ignore"):
            norms = np.linalg.norm(matrix, axis=0)
            if not np.all(np.isfinite(norms)):
                return None, None
            norms[norms == 0] = 1.0
            coefficients, *_ = np.linalg.lstsq(matrix / norms, problem.target, rcond=None)
            coefficients = coefficients / norms
            return coefficients, matrix @ coefficients - problem.target

    theta = np.asarray(initial, dtype=float)
    if len(theta) and max_evaluations > 0:
        penalty = np.full(len(problem.target), 1e3 * (np.abs(problem.target).max() + 1))

        def residual(t):
            _, res = solve(t)
            return penalty if res is None or not np.all(np.isfinite(res)) else res

        try:
            with np.errstate(all="ignore"):
                opt = scipy.optimize.least_squares(residual, theta, method="trf", x_scale="jac", max_nfev=max_evaluations)
            if np.all(np.isfinite(opt.x)):
                theta = opt.x
        except (ValueError, np.linalg.LinAlgError, FloatingPointError, OverflowError) as exc:
            return FitResult(False, FAILED, np.zeros(n), theta, no_references, str(exc))
    try:
        coefficients, res = solve(theta)
    except np.linalg.LinAlgError as exc:
        return FitResult(False, FAILED, np.zeros(n), theta, no_references, str(exc))
    if res is None or not np.all(np.isfinite(res)) or not np.all(np.isfinite(coefficients)):
        return FitResult(False, FAILED, np.zeros(n), theta, no_references, "non-finite values")
    loss = float(np.sqrt(np.sum(res**2)))
    return FitResult(True, loss, coefficients[:n], theta, coefficients[n:])
