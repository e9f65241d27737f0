"""The constant fitter recovers known constants, linear and nonlinear, and never crashes."""

import numpy as np
import pytest
import sympy
from conftest import GENERAL_THREEBODY, periodic_cell, unlabelled

from evopot.data.dataset import Frames
from evopot.data.geometry import build_geometry
from evopot.model.cutoff import Cutoff
from evopot.model.evaluate import evaluate
from evopot.model.formula import parse_formula
from evopot.model.potential import Potential, Term
from evopot.search.candidate import Candidate, Component, TermShape
from evopot.search.fitting import FitProblem, VariableProjection, fit_constants

r, b0, b1 = sympy.symbols("r b0 b1")
PAIR = TermShape("pair")


def pair_candidate(bases, parameters=(), initial=()):
    return Candidate((Component(PAIR, tuple(bases)),), tuple(parameters), tuple(initial), ("",) * len(parameters))


def labelled_by(potential, n=4):
    atoms = [periodic_cell(seed=s) for s in range(n)]
    prediction = evaluate(potential, build_geometry(unlabelled(atoms), potential.cutoff.radius, potential.species))
    offsets = np.cumsum([0] + [len(a) for a in atoms])
    forces = [prediction.forces[offsets[k] : offsets[k + 1]] for k in range(n)]
    return Frames(atoms, prediction.energies, forces, ["x"] * n)


@pytest.fixture(scope="module")
def morse_problem():
    cutoff = Cutoff(5.0, 4.0)
    truth = Potential(
        (Term("pair", parse_formula("300*exp(-2.6*r) - 2*exp(-1.1*r)", ["r"])),), cutoff, ("Si",), {"Si": -4.5}
    )
    return FitProblem.from_frames(labelled_by(truth), cutoff, ("Si",))


def test_linear_coefficients_and_reference_energy_are_exact(morse_problem):
    result = fit_constants(morse_problem, pair_candidate([sympy.exp(-2.6 * r), sympy.exp(-1.1 * r)]))
    assert result.ok and result.loss < 1e-10
    np.testing.assert_allclose(result.linear, [300.0, -2.0], rtol=1e-8)
    np.testing.assert_allclose(result.reference_energies, [-4.5], rtol=1e-10)


def test_nonlinear_constants_are_refined_from_a_rough_start(morse_problem):
    result = fit_constants(
        morse_problem, pair_candidate([sympy.exp(b0 * r), sympy.exp(b1 * r)], (b0, b1), (-2.0, -0.5)), 100
    )
    assert result.ok and result.loss < 1e-8
    np.testing.assert_allclose(sorted(result.nonlinear), [-2.6, -1.1], rtol=1e-6)


def test_a_fit_with_non_finite_numbers_fails_without_raising(morse_problem):
    for bases in [
        (1 / (r - r),),
        (sympy.log(-r),),
        (sympy.exp(1000 * r),),
        (sympy.zoo * r,),
        (sympy.Derivative(sympy.Function("u")(r), r),),
    ]:
        result = fit_constants(morse_problem, pair_candidate(bases))
        assert not result.ok and result.loss == float("inf")
    result = fit_constants(morse_problem, pair_candidate([sympy.exp(b0 * r)], (b0,), (400.0,)))
    assert not result.ok or np.isfinite(result.loss)


def test_energy_weight_zero_fits_forces_only():
    cutoff = Cutoff(5.0, 4.0)
    truth = Potential((Term("pair", parse_formula("50/r**6", ["r"])),), cutoff, ("Si",))
    frames = labelled_by(truth)
    shifted = Frames(frames.atoms, frames.energies + 100.0 * np.arange(len(frames)), frames.forces, frames.config_types)
    problem = FitProblem.from_frames(shifted, cutoff, ("Si",), force_weight=1.0, energy_weight=0.0)
    result = fit_constants(problem, pair_candidate([r**-6]))
    assert result.loss < 1e-10 and result.linear[0] == pytest.approx(50.0, rel=1e-9)


def _theta(*names):
    return sympy.symbols(names)


@pytest.mark.parametrize("kind", ["pair and separable three-body", "pair and embedding"])
def test_the_jacobian_of_the_projected_residual_is_its_finite_difference_slope(kind):
    """The fitter's Jacobian, which redoes only the columns that depend on each
    constant (the shape h or density f for all of its term's bases), equals central
    differences of the whole residual, linear coefficients refitted at every step."""
    problem = FitProblem.from_frames(labelled_by(GENERAL_THREEBODY, n=3), GENERAL_THREEBODY.cutoff, ("Si",))
    c0, c1, c2, c3 = _theta("b0", "b1", "b2", "b3")
    rho, costheta = sympy.symbols("rho costheta")
    pair = Component(PAIR, (sympy.exp(c0 * r), r**c1))
    if kind == "pair and embedding":
        other = Component(TermShape("embedding"), (sympy.sqrt(rho), rho**c2), sympy.exp(c3 * r))
        theta = np.array([-1.3, -4.0, 1.7, -0.8])
    else:
        other = Component(TermShape("threebody", "separable"), ((costheta + c2) ** 2, costheta), sympy.exp(c3 * r))
        theta = np.array([-1.3, -4.0, 0.2, -0.8])
    projection = VariableProjection(problem, Candidate((pair, other), (c0, c1, c2, c3), tuple(theta), ("",) * 4))
    numeric = np.zeros((len(problem.target), len(theta)))
    for j in range(len(theta)):
        step = np.zeros(len(theta))
        step[j] = 1e-5
        numeric[:, j] = (projection.residual(theta + step) - projection.residual(theta - step)) / 2e-5
    analytic = projection.jacobian(theta)
    assert np.linalg.norm(projection.residual(theta)) > 1e-3
    np.testing.assert_allclose(analytic, numeric, atol=1e-5 * np.abs(numeric).max())


def test_rounding_removes_two_tiny_constants_that_cancel_at_the_noise_floor(morse_problem):
    """r^ε·(r − δ)/r with ε = 1e-9, δ = −1.5e-9: the two nearly cancel, so either alone
    set to zero raises the loss tenfold (from 1e-11); both set to zero give the exact
    formula. Rounding keeps such a zeroing (the rise is far below the data's size), so
    the formula without both comes back."""
    from evopot.search.scoring import Scorer

    b2, b3 = sympy.symbols("b2 b3")
    bloated = pair_candidate(
        [sympy.exp(b0 * r) * r**b2 * (r - b3) / r, sympy.exp(b1 * r)], (b0, b1, b2, b3), (-2.6, -1.1, 1e-9, -1.5e-9)
    )
    scorer = Scorer(morse_problem)
    scored = scorer.score_candidate(bloated, max_evaluations=0)
    assert scored.loss < 1e-10
    clean = [
        s for s in scorer.prune(scored) if [b for _, b in s.candidate.bases] == [sympy.exp(b0 * r), sympy.exp(b1 * r)]
    ]
    assert clean and clean[0].loss < 1e-12


def test_a_large_constant_is_rounded_to_infinity_when_it_only_sets_a_scale(morse_problem):
    """(r + c)·exp(−2.6 r) with c = 9.7e5 (a Stillinger–Weber run left h = (r + 9.7e5)·e):
    over a 5 Å cutoff it is c·exp(−2.6 r) to 5e-6, so the formula with c → ∞, exp(−2.6 r)
    alone, fits as well and comes back from the pruning."""
    from evopot.search.scoring import Scorer

    b2 = sympy.Symbol("b2")
    near = pair_candidate([sympy.exp(b0 * r) * (r + b2), sympy.exp(b1 * r)], (b0, b1, b2), (-2.6, -1.1, 9.7e5))
    scorer = Scorer(morse_problem)
    scored = scorer.score_candidate(near, max_evaluations=0)
    assert scored.loss < 1e-4
    clean = [
        s for s in scorer.prune(scored) if [b for _, b in s.candidate.bases] == [sympy.exp(b0 * r), sympy.exp(b1 * r)]
    ]
    assert clean and clean[0].loss < 1e-10


def test_an_embedding_that_diverges_for_an_isolated_atom_does_not_fit():
    """F must be finite at ρ = 0 (an atom with no neighbours): F = a·log ρ + c·ρ fits
    the frames (every atom has neighbours) but fails, and so does ρ^b held at b < 0;
    the refinement may pass through b < 0 (the frames' ρ is never 0) and, from there,
    finds Finnis–Sinclair's b = 1/2."""
    rho = sympy.Symbol("rho")
    cutoff = Cutoff(5.0, 4.0)
    names = ["r", "rho"]
    truth = Potential(
        (
            Term("pair", parse_formula("300*exp(-2.6*r)", names)),
            Term("embedding", parse_formula("-sqrt(rho)", names), density=parse_formula("exp(-1.5*r)", names)),
        ),
        cutoff,
        ("Si",),
    )
    problem = FitProblem.from_frames(labelled_by(truth), cutoff, ("Si",))
    pair = Component(PAIR, (sympy.exp(-2.6 * r),))

    def fit(bases, shape=sympy.exp(-1.5 * r), start=(), evaluations=100):
        embedding = Component(TermShape("embedding"), bases, shape)
        parameters = (b0, b1)[: len(start)]
        return fit_constants(problem, Candidate((pair, embedding), parameters, start, ("",) * len(start)), evaluations)

    exact = fit((sympy.sqrt(rho),), sympy.exp(b0 * r), (-1.2,))
    assert exact.ok and exact.loss < 1e-6 and exact.nonlinear[0] == pytest.approx(-1.5, rel=1e-4)
    with_log = fit((sympy.log(rho), rho))
    assert not with_log.ok and with_log.loss == float("inf")
    held = fit((rho**b0,), start=(-0.3,), evaluations=0)
    assert not held.ok and "isolated atom" in held.message
    power = fit((rho**b0,), start=(-0.3,))
    assert power.ok and power.loss < 1e-6 and power.nonlinear[0] == pytest.approx(0.5, rel=1e-4)


def test_fixed_reference_energies_are_used_not_fitted(morse_problem):
    """reference_energies: the isolated-atom energies are subtracted from the energies
    and kept; the fit sees cohesive energies and cannot move them."""
    import dataclasses

    bases = [sympy.exp(-2.6 * r), sympy.exp(-1.1 * r)]
    right = dataclasses.replace(morse_problem, references=(-4.5,))
    result = fit_constants(right, pair_candidate(bases))
    assert result.ok and result.loss < 1e-10
    np.testing.assert_allclose(result.linear, [300.0, -2.0], rtol=1e-8)
    assert result.reference_energies.tolist() == [-4.5]
    wrong = fit_constants(dataclasses.replace(morse_problem, references=(0.0,)), pair_candidate(bases))
    assert wrong.reference_energies.tolist() == [0.0] and wrong.loss > 1e-3  # the 4.5 eV/atom is not absorbed


def test_the_archive_breaks_a_tie_by_the_cheaper_formula_and_only_a_tie(morse_problem):
    """A linear embedding F = a·ρ with f = e^(−r) is the pair term 2a·e^(−r): the same
    fit to the last digits, at twice the pair's cost and more (F per atom, f per bond).
    At one complexity the archive keeps the pair, whichever came first; a loss lower by
    more than the tie tolerance still wins, whatever it costs."""
    from dataclasses import replace

    from evopot.search.engines.gp import TIE_TOLERANCE, Archive
    from evopot.search.scoring import Scorer

    scorer = Scorer(morse_problem)
    rho = sympy.Symbol("rho")
    pair = scorer.score_candidate(pair_candidate([sympy.exp(-r)]))
    embedded = scorer.score_candidate(
        Candidate((Component(TermShape("embedding"), (rho,), sympy.exp(-r)),), (), (), ())
    )
    assert pair.fit.ok and embedded.fit.ok
    assert pair.loss > 0.01 and embedded.loss == pytest.approx(pair.loss, rel=TIE_TOLERANCE / 10)
    assert scorer.operations(embedded) > 2 * scorer.operations(pair) > 0
    pair, embedded = replace(pair, complexity=7), replace(embedded, complexity=7)
    for first, second in [(pair, embedded), (embedded, pair)]:
        archive = Archive(cost=scorer.operations)
        archive.update(first)
        archive.update(second)
        assert archive.best[7] is pair
    # without a cost, or with a clearly lower loss, the score decides as before
    worse = replace(pair, fit=replace(pair.fit, loss=pair.loss + 1e-3))
    archive = Archive(cost=scorer.operations)
    archive.update(worse)
    archive.update(embedded)
    assert archive.best[7] is embedded
    archive = Archive()
    archive.update(embedded)
    assert not archive.improves(replace(pair, fit=replace(pair.fit, loss=embedded.loss)))
