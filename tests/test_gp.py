"""GP pieces, each alone: trees to formulas, decomposition, operators and limits."""

import json
import math
import random
import zlib

import numpy as np
import pytest
import sympy
from deap import gp

from evopot.errors import EvopotError
from evopot.search.candidate import Candidate, Component, TermShape, complexity, decompose
from evopot.search.engines.expression import build_primitive_set, tree_from_string, tree_to_sympy
from evopot.search.engines.gp import Archive, GPEngine, GPSettings
from evopot.search.engines.space import SearchSpace, load_search_space, resolve_search_space_path

r = sympy.Symbol("r")
OPERATORS = ["add", "sub", "mul", "div", "pow", "neg", "inv", "square", "cube", "exp", "nexp"]
SPACE = SearchSpace(name="t", operators=OPERATORS)
PAIR = TermShape("pair")


def pair_pset():
    return build_primitive_set(OPERATORS, ("r",), -3.0, 3.0)


def test_tree_becomes_the_formula_it_spells():
    pset = pair_pset()
    tree = tree_from_string("add(mul(2.5, inv(cube(square(r)))), nexp(mul(1.5, r)))", pset)
    expr, values = tree_to_sympy(tree)
    concrete = expr.subs(values)
    assert sympy.simplify(concrete - (2.5 / r**6 + sympy.exp(-1.5 * r))) == 0


def test_decomposition_frees_linear_coefficients_and_keeps_nonlinear_constants():
    k1, k2, k3 = sympy.symbols("k0_1 k0_2 k0_3")
    candidate = decompose(
        [[k3 * sympy.exp(k1 * r) * (1 + sympy.exp(r)) + k2 + (r**3) ** k1]], [PAIR], {k1: -1.5, k2: 2.0, k3: 3.0}
    )
    bases = [b for _, b in candidate.bases]
    assert len(bases) == 4 and sympy.Integer(1) in bases
    # exp(r)·exp(k1 r) becomes exp(b·r) with its own free parameter, started at k1 + 1
    assert any(abs(v + 0.5) < 1e-12 for v in candidate.initial)
    assert any(abs(v + 4.5) < 1e-12 for v in candidate.initial)  # (r³)^k1 = r^(3 k1)
    assert "0:1" in candidate.sources  # the plain constant k1 can take its fitted value back
    assert candidate.complexity == complexity(sympy.Add(*[sympy.Symbol(f"a{k}") * b for k, b in enumerate(bases)]))


def test_separable_threebody_keeps_h_as_a_shape_without_its_scale():
    rij, rik, c = sympy.symbols("rij rik costheta")
    k = sympy.symbols("k0_1 k0_3 k1_1 k1_2")
    shape = TermShape("threebody", "separable")
    g = k[0] * (c + k[1]) ** 2 + c
    h = k[2] * sympy.exp(k[3] / (r - 3.0))
    candidate = decompose([[g, h]], [shape], {k[0]: 2.0, k[1]: 0.3, k[2]: 5.0, k[3]: 1.2})
    (component,) = candidate.components
    b = {str(s): s for s in candidate.parameters}
    assert set(component.bases) == {(c + b["b0"]) ** 2, c}
    assert component.shape == sympy.exp(b["b1"] / (r - 3.0))
    assert candidate.initial == (0.3, 1.2) and candidate.sources == ("0:3", "1:2")
    term = component.expression((c + b["b0"]) ** 2)
    assert term.free_symbols == {c, rij, rik, b["b0"], b["b1"]}


def test_embedding_density_loses_its_scale_only_when_F_is_made_of_powers_of_rho():
    """F(s·ρ) with F = Σ a_k ρ^p_k is F with other coefficients, so a constant factor of
    f would be a flat direction of the fit (it wandered to 1e18 on Si); with any other
    basis in F (log ρ) the factor changes the energy and stays."""
    rho = sympy.Symbol("rho")
    k = sympy.symbols("k0_1 k0_2 k1_1 k1_2")
    embedding = TermShape("embedding")
    values = {k[0]: -2.0, k[1]: 0.5, k[2]: 3.0, k[3]: 1.5}
    f = k[2] * sympy.exp(-k[3] * r)
    powers = decompose([[k[0] * sympy.sqrt(rho) + rho ** k[1], f]], [embedding], values)
    (component,) = powers.components
    b = {str(s): s for s in powers.parameters}
    assert set(component.bases) == {sympy.sqrt(rho), rho ** b["b0"]}
    assert component.shape == sympy.exp(b["b1"] * r)  # no factor: 3.0 is gone (b1 = −k1_2)
    assert powers.initial == (0.5, -1.5)
    # the Si case: F linear in ρ and f a constant, so ρ is a (smooth) coordination number
    (coordination,) = decompose([[k[0] * rho, k[2]]], [embedding], values).components
    assert coordination.bases == (rho,) and coordination.shape == 1
    with_log = decompose([[sympy.log(rho) + rho, f]], [embedding], values)
    assert with_log.components[0].shape.free_symbols == {r, *with_log.parameters}
    assert len(with_log.parameters) == 2 and 3.0 in with_log.initial  # f keeps its scale
    # until the pruning drops log ρ: then the scale goes with it
    pruned = with_log.without([b for _, b in with_log.bases].index(sympy.log(rho)), with_log.initial)
    (rate,) = pruned.parameters
    assert pruned.components[0].bases == (rho,) and pruned.components[0].shape == sympy.exp(rate * r)
    assert pruned.initial == (-1.5,)


def test_candidate_without_a_basis_drops_its_parameters():
    c = Candidate(
        (Component(PAIR, (sympy.exp(sympy.Symbol("b0") * r), r**-6)),), (sympy.Symbol("b0"),), (-1.0,), ("0:3",)
    )
    smaller = c.without(0, [-2.0])
    assert [b for _, b in smaller.bases] == [r**-6] and smaller.parameters == ()
    assert Candidate.from_dict(c.to_dict()) == c


def test_a_constant_set_to_zero_simplifies_the_candidate_and_drops_what_vanishes():
    b0, b1, b2 = sympy.symbols("b0 b1 b2")
    shape = TermShape("threebody", "separable")
    c = sympy.Symbol("costheta")
    candidate = Candidate(
        (
            Component(PAIR, (b0 * r, r**-4, sympy.exp(b1 * r))),
            Component(shape, (c**2, c), (r - b2) / r * sympy.exp(b1 / (r - 3.0))),
        ),
        (b0, b1, b2),
        (1.0, 2.0, 2e-8),
        ("0:1", "0:2", "1:3"),
    )
    no_tiny_constant = candidate.with_constant(2, 0, [1.5, 2.5, 2e-8])
    assert no_tiny_constant.components[1].shape == sympy.exp(b1 / (r - 3.0))
    assert (
        no_tiny_constant.parameters == (b0, b1)
        and no_tiny_constant.initial == (1.5, 2.5)
        and no_tiny_constant.sources == ("0:1", "0:2")
    )
    assert no_tiny_constant.complexity < candidate.complexity
    no_linear_basis = candidate.with_constant(0, 0, [1.5, 2.5, 2e-8])
    assert [b for _, b in no_linear_basis.bases][:2] == [r**-4, sympy.exp(b1 * r)]
    no_stiffness = candidate.with_constant(1, 0, [1.5, 2.5, 2e-8])
    assert (
        no_stiffness.components[0].bases == (b0 * r, r**-4, sympy.Integer(1))
        and no_stiffness.components[1].shape == (r - b2) / r
    )
    assert Candidate((Component(PAIR, (1 / b0 * r,)),), (b0,), (1.0,), ("0:1",)).with_constant(0, 0, [1.0]) is None
    # a constant grown huge goes to infinity: what is left is its leading term
    huge = Candidate(
        (
            Component(PAIR, (r**2 / (r + b0) ** 3, sympy.exp(b1 * r))),
            Component(shape, (c**2,), (r - b2) * sympy.exp(b1 / (r - 3.0))),
        ),
        (b0, b1, b2),
        (9e9, 2.0, -8e33),
        ("0:1", "0:2", "1:3"),
    )
    rounded = huge.with_constant(2, -math.inf, [9e9, 2.5, -8e33])
    assert rounded.components[1].shape == sympy.exp(b1 / (r - 3.0)) and rounded.parameters == (b0, b1)
    assert huge.with_constant(0, math.inf, [9e9, 2.5, -8e33]).components[0].bases == (r**2, sympy.exp(b1 * r))
    assert huge.with_constant(1, math.inf, [9e9, 2.5, -8e33]) is None  # exp(b1·r) has no leading power
    # to first order: C·(exp(ε·r⁻⁴ + e) − exp(e)) with tiny ε keeps r⁻⁴·exp(e) beside exp(e)
    e = b1 / (r - 3.0)
    linearised = Candidate(
        (Component(PAIR, (sympy.exp(b0 / r**4 + e), sympy.exp(e))),), (b0, b1), (1e-5, 2.0), ("0:1", "0:2")
    )
    assert linearised.with_constant(0, 0, [1e-5, 2.0], first_order=True).components[0].bases == (
        sympy.exp(e),
        sympy.exp(e) / r**4,
    )
    assert linearised.with_constant(0, 0, [1e-5, 2.0]).components[0].bases == (sympy.exp(e),)


def test_tree_strings_round_trip_and_code_is_refused():
    pset = pair_pset()
    random.seed(1)
    for _ in range(50):
        tree = gp.PrimitiveTree(gp.genHalfAndHalf(pset, 1, 5))
        assert str(tree_from_string(str(tree), pset)) == str(tree)
    # numbers as people write them (DEAP prints 2.2e-08, 1.0)
    assert [n.value for n in tree_from_string("add(r, mul(2.2e-8, 1))", pset)[3:]] == [2.2e-8, 1.0]
    with pytest.raises(EvopotError):
        tree_from_string("add(__import__, r)", pset)


def _unfitted(candidate):
    """The linear, nonlinear constants and reference energies of a stand-in fit of ``candidate``
    (coefficients 0: no term to judge)."""
    return np.zeros(len(candidate.bases)), np.array(candidate.initial), np.zeros(1)


def _pair_and_separable_space():
    """Three slots (V, g, h), small trees."""
    return SearchSpace(
        name="t",
        operators=OPERATORS,
        terms=[{"kind": "pair"}, {"kind": "threebody", "form": "separable"}],
        limits={"max_height": 4, "max_nodes": 9, "init_max_height": 3},
    )


def test_variation_respects_the_size_limits():
    space = _pair_and_separable_space()
    engine = GPEngine(space, GPSettings(population=8, seed=0), score=None)
    assert [s.name for s in engine.slots] == ["V", "g", "h"]
    random.seed(0)

    def within(individual):
        return all(tree.height <= 4 and len(tree) <= 9 for tree in individual)

    for _ in range(300):
        a, b = engine.new_individual(), engine.new_individual()
        assert within(a) and within(b)
        for child in engine.mate(a, b):
            assert within(child)
            assert within(engine.mutate(child))


def test_crossover_also_swaps_a_whole_slot_between_parents():
    """A V found by one individual can meet the g and h of another: some crossovers
    hand over one slot's whole tree and leave the other slots alone."""
    from evopot.search.engines.gp import SLOT_SWAP

    space = _pair_and_separable_space()
    engine = GPEngine(space, GPSettings(population=8, seed=0), score=None)
    random.seed(1)
    swaps, trials = 0, 400
    for _ in range(trials):
        a, b = engine.new_individual(), engine.new_individual()
        before_a, before_b = [str(t) for t in a], [str(t) for t in b]
        if before_a == before_b:
            continue
        engine.mate(a, b)
        after_a, after_b = [str(t) for t in a], [str(t) for t in b]
        changed = [k for k in range(3) if after_a[k] != before_a[k]]
        if (
            len(changed) == 1
            and after_a[changed[0]] == before_b[changed[0]]
            and after_b[changed[0]] == before_a[changed[0]]
        ):
            swaps += 1
    assert abs(swaps / trials - SLOT_SWAP) < 0.1


def test_a_stalled_population_restarts_from_random_trees_and_keeps_the_archive(monkeypatch):
    """restart: n — when the best loss gains < 1 % in n generations the population is
    replaced by fresh random individuals; the archive (the front) is untouched, and a
    search that keeps improving, or sits at its target, never restarts."""
    from evopot.search.fitting import FitResult
    from evopot.search.scoring import Scored

    space = _pair_and_separable_space()

    def run(loss_of, settings):
        fits = []

        def score(candidate):
            fits.append(candidate)
            return Scored(
                candidate,
                FitResult(True, loss_of(len(fits)), *_unfitted(candidate)),
                len(candidate.structure) % 7 + 1,
            )

        engine = GPEngine(space, settings, score)
        fresh = []
        real_new = engine.new_individual
        monkeypatch.setattr(engine, "new_individual", lambda: fresh.append(1) or real_new())
        engine.initialise()
        restarts, archive = [], []
        for _ in range(10):
            fresh.clear()
            archive_before = dict(engine.archive.best)
            report = engine.step()
            if report.restarted:
                restarts.append(report.generation)
                assert len(fresh) >= settings.population  # a whole population of new trees
                assert all(engine.archive.best[k].loss <= v.loss for k, v in archive_before.items())
            archive.append(report.best_loss)
        assert archive == sorted(archive, reverse=True)  # the best loss never goes back up
        return restarts

    # every fit equally bad: stalled from the start, a restart every 3 generations
    assert run(lambda n: 1.0, GPSettings(population=8, seed=0, restart=3)) == [3, 6, 9]
    # each fit better than the last by far more than 1 %: never stalled
    assert run(lambda n: 0.5**n, GPSettings(population=8, seed=0, restart=3)) == []
    # stalled, but at the target error: no restart; and restart 0 switches it off
    assert run(lambda n: 1e-9, GPSettings(population=8, seed=0, restart=3, target_error=1e-8)) == []
    assert run(lambda n: 1.0, GPSettings(population=8, seed=0)) == []


def test_islands_evolve_apart_and_migrants_join_the_next_island():
    """islands: K — each island draws from its own generator (island 0's is the plain
    search's); an island's best formulas, received by another, survive its selection
    (nothing there dominates them) and the population keeps its size."""
    from evopot.search.engines.gp import emigrants
    from evopot.search.fitting import FitResult
    from evopot.search.scoring import Scored

    space = _pair_and_separable_space()

    def score(candidate):
        loss = 1 + zlib.crc32(candidate.structure.encode()) % 1000 / 1000  # a fixed loss per formula
        fit = FitResult(True, loss, *_unfitted(candidate))
        return Scored(candidate, fit, len(candidate.structure) % 7 + 1)

    def started(island):
        engine = GPEngine(space, GPSettings(population=8, seed=4, island=island), score)
        engine.initialise()
        return engine

    plain = GPEngine(space, GPSettings(population=8, seed=4), score)
    plain.initialise()
    first, second = started(0), started(1)
    assert json.dumps(first.state()) == json.dumps(plain.state())  # (json: the states hold NaN)
    assert {i.structure for i in first.population} != {i.structure for i in second.population}
    migrants = emigrants(first.state()["population"], 2)
    assert [m["fitness"] for m in migrants] == sorted(m["fitness"] for m in migrants)
    best = min(first.population, key=lambda ind: ind.fitness.values)
    assert migrants[0]["structure"] == best.structure
    second.receive(migrants)
    assert best.structure in {i.structure for i in second.population} and len(second.population) == 8


def test_archive_front_is_strictly_improving_with_complexity():
    from evopot.search.fitting import FitResult
    from evopot.search.scoring import Scored

    def scored(loss, size):
        return Scored(
            Candidate((Component(PAIR, (r,)),)), FitResult(True, loss, np.zeros(1), np.zeros(0), np.zeros(1)), size
        )

    archive = Archive()
    for loss, size in [(1.0, 3), (0.5, 5), (0.7, 7), (0.4, 9), (0.45, 4), (0.9, 3)]:
        archive.update(scored(loss, size))
    front = archive.front()
    assert [(m.complexity, m.loss) for m in front] == [(3, 0.9), (4, 0.45), (9, 0.4)]


def test_shipped_search_space_loads():
    space = load_search_space(resolve_search_space_path("pair"))
    assert "pow" in space.operators and space.terms[0].kind == "pair"


def test_rc_terminal_is_the_cutoff_radius_as_a_fixed_number():
    pset = build_primitive_set(["add", "sub", "div", "exp", "rc"], ("r",), -3.0, 3.0, radius=3.77118)
    tree = tree_from_string("exp(div(1.5, sub(r, rc)))", pset)
    expr, values = tree_to_sympy(tree, 0, pset.context)
    assert list(values) == [sympy.Symbol("k0_2")]  # the one ephemeral constant; rc is not fitted
    assert sympy.simplify(expr.subs(values) - sympy.exp(1.5 / (r - 3.77118))) == 0
    candidate = decompose([[expr]], [PAIR], values)
    assert candidate.initial == (1.5,)
    with pytest.raises(EvopotError, match="needs the term's cutoff radius"):
        build_primitive_set(["add", "rc"], ("r",), -3.0, 3.0)


def test_vanish_is_the_smooth_vanishing_at_the_cutoff_with_a_fitted_stiffness():
    pset = build_primitive_set(["add", "mul", "vanish"], ("r",), -3.0, 3.0, radius=3.77118)
    tree = tree_from_string("mul(vanish(2.1), r)", pset)
    expr, values = tree_to_sympy(tree, 0, pset.context)
    assert list(values) == [sympy.Symbol("k0_2")]
    assert sympy.simplify(expr.subs(values) - r * sympy.exp(4.41 / (r - 3.77118))) == 0
    candidate = decompose([[expr]], [PAIR], values)  # the stiffness is one constant, positive at the start
    assert len(candidate.parameters) == 1 and candidate.initial == pytest.approx((4.41,))
    negative, values = tree_to_sympy(tree_from_string("vanish(-2.1)", pset), 0, pset.context)
    assert sympy.simplify(negative.subs(values) - sympy.exp(4.41 / (r - 3.77118))) == 0
    with pytest.raises(EvopotError, match="needs the term's cutoff radius"):
        build_primitive_set(["add", "vanish"], ("r",), -3.0, 3.0)
    with pytest.raises(EvopotError, match="works on a distance r; slot g has variables costheta"):
        build_primitive_set(["add", "vanish"], ("costheta",), -3.0, 3.0, "g", radius=3.0)
    with pytest.raises(EvopotError, match="needs the cutoff radius"):
        tree_to_sympy(tree)


def test_envelope_multiplies_each_distance_slot_by_a_vanishing_with_a_fitted_stiffness(tmp_path):
    """``envelope: vanish``: V and h become tree × exp(s/(r − rc)), s one more nonlinear
    parameter started at rc/2; g (cos θ) is left alone. A general three-body term, which
    has no slot of one distance, is refused, naming the file and field."""
    space = SearchSpace(
        name="t",
        operators=OPERATORS,
        terms=[
            {"kind": "pair", "envelope": "vanish"},
            {"kind": "threebody", "form": "separable", "envelope": "vanish"},
        ],
    )
    engine = GPEngine(space, GPSettings(population=1), score=None, radius=3.5)
    pairs = [pset for pset in (s.pset for s in engine.slots)]
    trees = [
        tree_from_string(t, p) for t, p in zip(["add(pow(r, -4.0), 1.5)", "square(add(costheta, 0.3))", "2.0"], pairs)
    ]
    candidate = engine.candidate(trees)
    V, g, h = candidate.components[0].bases, candidate.components[1].bases, candidate.components[1].shape
    values = dict(zip(candidate.parameters, candidate.initial))
    envelope = sympy.exp(1.75 / (r - 3.5))
    assert len(V) == 2 and all(
        any(sympy.simplify(b.subs(values) - e) == 0 for b in V) for e in [envelope / r**4, envelope]
    )
    assert not any(b.has(sympy.exp) for b in g)
    assert sympy.simplify(h.subs(values) - envelope) == 0
    assert sorted(candidate.initial).count(1.75) == 2 and all(
        s == "" for p, s in zip(candidate.parameters, candidate.sources) if values[p] == 1.75
    )
    with pytest.raises(EvopotError, match="needs the cutoff radius"):
        GPEngine(space, GPSettings(population=1), score=None)
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\noperators: [add, mul]\nterms:\n  - kind: threebody\n    envelope: vanish\n")
    with pytest.raises(
        EvopotError, match=r"bad.yaml: field 'terms.0'.*general three-body term has none: use form: separable"
    ):
        load_search_space(bad)
