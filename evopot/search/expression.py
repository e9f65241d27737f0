"""Between GP trees and formulas: the primitive set, tree → sympy, and the split of a
formula into linear coefficients and nonlinear basis functions.

A GP tree over ``r`` with ephemeral constants becomes a sympy expression; expanding it
over sums gives V(r) = Σ_k (constant factor)·b_k(r; θ). The constant factors become
free linear coefficients a_k (fitted exactly), the constants left inside the b_k are
the nonlinear θ (started from the tree's values). The fitted formula is
Σ_k a_k·b_k(r; θ), which is what gets reported, so complexity is counted on it.
"""

from __future__ import annotations

import functools
import random
import re
from dataclasses import dataclass

import sympy
from deap import gp

from evopot.errors import EvopotError
from evopot.search.primitives import OPERATORS
from evopot.search.space import SearchSpace

R = sympy.Symbol("r")
CONSTANT = "const"


def build_primitive_set(space: SearchSpace) -> gp.PrimitiveSet:
    """DEAP primitive set of the search space: operators, the variable ``r`` and an
    ephemeral constant drawn uniformly from the space's constant range."""
    pset = gp.PrimitiveSet("V", 1)
    pset.renameArguments(ARG0="r")
    for name in space.operators:
        op = OPERATORS[name]
        pset.addPrimitive(_placeholder(op.arity), op.arity, name=name)
    low, high = space.constants.low, space.constants.high
    pset.addEphemeralConstant(CONSTANT, functools.partial(_random_constant, low, high))
    return pset


def _random_constant(low: float, high: float) -> float:
    return round(random.uniform(low, high), 3)


def _placeholder(arity):
    # DEAP wants a callable per primitive; evopot never compiles trees with DEAP.
    return (lambda a: a) if arity == 1 else (lambda a, b: a)


def tree_to_sympy(tree: gp.PrimitiveTree) -> tuple[sympy.Expr, dict[sympy.Symbol, float]]:
    """The tree as a sympy expression in ``r``; each ephemeral constant becomes a
    symbol ``k<index>`` (its node index), returned with its value."""
    values: dict[sympy.Symbol, float] = {}
    stack: list[list] = []
    for index, node in enumerate(tree):
        stack.append([node, [], index])
        while stack and len(stack[-1][1]) == stack[-1][0].arity:
            node, args, position = stack.pop()
            if isinstance(node, gp.Primitive):
                expr = OPERATORS[node.name].build(*args)
            elif node.value == "r":
                expr = R
            else:
                symbol = sympy.Symbol(f"k{position}")
                values[symbol] = float(node.value)
                expr = symbol
            if stack:
                stack[-1][1].append(expr)
            else:
                return expr, values
    raise EvopotError(f"malformed tree {tree}")


@dataclass(frozen=True)
class Candidate:
    """V(r) = Σ_k a_k · bases[k](r; θ); ``parameters`` are θ, ``initial`` their start,
    ``sources`` the tree nodes (``k<index>``) each parameter came from."""

    bases: tuple[sympy.Expr, ...]
    parameters: tuple[sympy.Symbol, ...]
    initial: tuple[float, ...]
    sources: tuple[str, ...] = ()

    def formula(self, linear=None, nonlinear=None) -> sympy.Expr:
        """The formula with coefficients named ``a<k>`` and parameters ``b<k>``, or with
        the given values substituted."""
        a = sympy.symbols(f"a0:{len(self.bases)}") if linear is None else [sympy.Float(v) for v in linear]
        expr = sympy.Add(*[ak * bk for ak, bk in zip(a, self.bases)])
        if nonlinear is not None:
            expr = expr.subs({p: sympy.Float(v) for p, v in zip(self.parameters, nonlinear)})
        return expr

    @property
    def key(self) -> str:
        """Identity for caching fits: the structure plus the exact starting θ."""
        return sympy.srepr(self.bases) + repr(self.initial)


def decompose(expr: sympy.Expr, values: dict[sympy.Symbol, float]) -> Candidate:
    """Split ``expr`` into bases and nonlinear parameters (see the module docstring).

    Constant terms with no ``r`` become the basis 1; repeated bases merge; parameters
    are renamed ``b0, b1, …`` in order of appearance.
    """
    expanded = sympy.expand(expr, multinomial=False, log=False)
    bases: list[sympy.Expr] = []
    for term in sympy.Add.make_args(expanded):
        _, basis = term.as_independent(R, as_Add=False)
        if basis not in bases:
            bases.append(basis)
    bases = [b for b in bases if b != 0]
    symbols = []
    for basis in bases:
        for s in sorted(basis.free_symbols - {R}, key=lambda s: s.name):
            if s not in symbols:
                symbols.append(s)
    renamed = {s: sympy.Symbol(f"b{k}") for k, s in enumerate(symbols)}
    bases = tuple(sympy.sympify(b).xreplace(renamed) for b in bases)
    return Candidate(bases, tuple(renamed[s] for s in symbols), tuple(values[s] for s in symbols), tuple(s.name for s in symbols))


def complexity(expr: sympy.Expr) -> int:
    """Number of nodes of the expression tree (symbols, numbers and operations)."""
    return 1 + sum(complexity(arg) for arg in expr.args)


_TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def tree_from_string(text: str, pset: gp.PrimitiveSet) -> gp.PrimitiveTree:
    """Parse DEAP's prefix notation (``add(mul(r, 1.5), exp(r))``) without ``eval``:
    names must be primitives of ``pset`` or ``r``; numbers become ephemeral constants."""
    nodes = []
    ephemeral = pset.mapping[CONSTANT]
    for token in _TOKEN.findall(text):
        if token in pset.mapping and token != CONSTANT:
            nodes.append(pset.mapping[token])
        else:
            try:
                value = float(token)
            except ValueError:
                raise EvopotError(f"checkpoint: unknown primitive {token!r} in tree {text!r}") from None
            constant = ephemeral()
            constant.value = value
            nodes.append(constant)
    tree = gp.PrimitiveTree(nodes)
    if not nodes or str(tree).replace(" ", "") != text.replace(" ", ""):
        raise EvopotError(f"checkpoint: tree {text!r} does not parse with this search space")
    return tree
