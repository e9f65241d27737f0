"""GP pieces, each alone: trees to formulas, decomposition, operators and limits."""

import random

import pytest
import sympy
from deap import gp

from evopot.errors import EvopotError
from evopot.engines.expression import Candidate, build_primitive_set, complexity, decompose, tree_from_string, tree_to_sympy
from evopot.engines.gp import Archive, GPEngine, GPSettings, creator
from evopot.engines.space import SearchSpace, load_search_space, resolve_search_space_path

r = sympy.Symbol("r")
SPACE = SearchSpace(name="t", operators=["add", "sub", "mul", "div", "pow", "neg", "inv", "square", "cube", "exp", "nexp"])


def test_tree_becomes_the_formula_it_spells():
    pset = build_primitive_set(SPACE)
    tree = tree_from_string("add(mul(2.5, inv(cube(square(r)))), nexp(mul(1.5, r)))", pset)
    expr, values = tree_to_sympy(tree)
    concrete = expr.subs(values)
    assert sympy.simplify(concrete - (2.5 / r**6 + sympy.exp(-1.5 * r))) == 0


def test_decomposition_frees_linear_coefficients_and_keeps_nonlinear_constants():
    k1, k2, k3 = sympy.symbols("k1 k2 k3")
    candidate = decompose(k3 * sympy.exp(k1 * r) * (1 + sympy.exp(r)) + k2 + (r**3) ** k1, {k1: -1.5, k2: 2.0, k3: 3.0})
    formula = candidate.formula()
    assert len(candidate.bases) == 4
    assert set(candidate.bases) >= {sympy.Integer(1)}
    assert complexity(formula) == complexity(candidate.formula())
    # exp(r)·exp(k1 r) becomes exp(b·r) with its own free parameter, started at k1 + 1
    starts = dict(zip([str(b) for b in candidate.bases], candidate.initial))
    assert any(abs(v + 0.5) < 1e-12 for v in candidate.initial)
    assert any(abs(v + 4.5) < 1e-12 for v in candidate.initial)  # (r³)^k1 = r^(3 k1)
    assert starts


def test_candidate_without_a_basis_drops_its_parameters():
    c = Candidate((sympy.exp(sympy.Symbol("b0") * r), r**-6), (sympy.Symbol("b0"),), (-1.0,), ("k3",))
    smaller = c.without(0, [-2.0])
    assert smaller.bases == (r**-6,) and smaller.parameters == ()
    assert Candidate.from_dict(c.to_dict()) == c


def test_tree_strings_round_trip_and_code_is_refused():
    pset = build_primitive_set(SPACE)
    random.seed(1)
    for _ in range(50):
        tree = gp.PrimitiveTree(gp.genHalfAndHalf(pset, 1, 5))
        assert str(tree_from_string(str(tree), pset)) == str(tree)
    with pytest.raises(EvopotError):
        tree_from_string("add(__import__, r)", pset)


def test_variation_respects_the_size_limits():
    space = SearchSpace(name="t", operators=SPACE.operators, limits={"max_height": 4, "max_nodes": 9, "init_max_height": 3})
    engine = GPEngine(space, GPSettings(population=8, seed=0), score=None)
    random.seed(0)
    for _ in range(300):
        a, b = engine.toolbox.individual(), engine.toolbox.individual()
        assert a.height <= 4 and len(a) <= 9
        for child in engine.toolbox.mate(a, b):
            assert child.height <= 4 and len(child) <= 9
            (mutant,) = engine.toolbox.mutate(child)
            assert mutant.height <= 4 and len(mutant) <= 9


def test_archive_front_is_strictly_improving_with_complexity():
    from evopot.scoring import Scored
    from evopot.fitting import FitResult
    import numpy as np

    def scored(loss, size):
        return Scored(Candidate((r,), (), ()), FitResult(True, loss, np.zeros(1), np.zeros(0), np.zeros(1)), size)

    archive = Archive()
    for loss, size in [(1.0, 3), (0.5, 5), (0.7, 7), (0.4, 9), (0.45, 4), (0.9, 3)]:
        archive.update(scored(loss, size))
    front = archive.front()
    assert [(m.complexity, m.loss) for m in front] == [(3, 0.9), (4, 0.45), (9, 0.4)]


def test_shipped_search_space_loads():
    space = load_search_space(resolve_search_space_path("pair"))
    assert "pow" in space.operators and space.terms[0].kind == "pair"
