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
from evopot.formula import formula_string, parse_formula, tidy
from evopot.engines.primitives import OPERATORS
from evopot.engines.space import SearchSpace

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

    def without(self, index: int, values) -> "Candidate":
        """This candidate less basis ``index``, parameters started at ``values``
        (parameters used only by the dropped basis go too)."""
        bases = self.bases[:index] + self.bases[index + 1:]
        used = set().union(*(b.free_symbols for b in bases)) if bases else set()
        keep = [k for k, p in enumerate(self.parameters) if p in used]
        return Candidate(bases, tuple(self.parameters[k] for k in keep), tuple(float(values[k]) for k in keep), tuple(self.sources[k] for k in keep))

    def to_dict(self) -> dict:
        return {"bases": [formula_string(b) for b in self.bases], "parameters": [p.name for p in self.parameters], "initial": list(self.initial), "sources": list(self.sources)}

    @classmethod
    def from_dict(cls, data: dict) -> "Candidate":
        names = ["r"] + list(data["parameters"])
        bases = tuple(parse_formula(b, names, where="checkpoint basis") for b in data["bases"])
        return cls(bases, tuple(sympy.Symbol(n) for n in data["parameters"]), tuple(data["initial"]), tuple(data["sources"]))

    @property
    def structure(self) -> str:
        """The formula's shape, whatever its constants."""
        return sympy.srepr(self.bases)

    @property
    def key(self) -> str:
        """Identity for caching fits: the structure plus the exact starting θ."""
        return self.structure + repr(self.initial)


def decompose(expr: sympy.Expr, values: dict[sympy.Symbol, float]) -> Candidate:
    """Split ``expr`` into bases and nonlinear parameters (see the module docstring).

    Constant terms with no ``r`` become the basis 1; repeated bases merge. Inside each
    basis, every largest sub-expression made of constants alone (``k1 + 1``,
    ``2*k3/k4``) becomes one free parameter, so the tree's accidental ties between
    constants do not constrain the fit; parameters are named ``b0, b1, …`` in order
    of appearance. ``sources`` gives, per parameter, the tree constant it is (for
    writing fitted values back), or ``""`` when it stands for a combination.
    """
    expanded = sympy.expand(expr, multinomial=False, log=False)
    bases: list[sympy.Expr] = []
    for term in sympy.Add.make_args(expanded):
        _, basis = term.as_independent(R, as_Add=False)
        if basis != 0 and basis not in bases:
            bases.append(basis)
    parameters: dict[sympy.Expr, sympy.Symbol] = {}
    bases = tuple(_free_constants(tidy(b, R), parameters) for b in bases)
    merged = tuple(dict.fromkeys(bases))
    initial = tuple(_real_value(sub, values) for sub in parameters)
    sources = tuple(sub.name if isinstance(sub, sympy.Symbol) else "" for sub in parameters)
    return Candidate(merged, tuple(parameters.values()), initial, sources)


def _real_value(expr: sympy.Expr, values: dict) -> float:
    """Value of a constant sub-expression; NaN when it is complex or undefined (the fit
    then fails and the candidate gets the worst fitness)."""
    try:
        value = complex(expr.evalf(subs=values))
    except (TypeError, ValueError, OverflowError):
        return float("nan")
    return value.real if value.imag == 0 else float("nan")


def _free_constants(expr: sympy.Expr, parameters: dict) -> sympy.Expr:
    """Replace each largest constant sub-expression holding a tree constant by a parameter.

    In a sum or product that contains ``r``, the constant operands together form one
    sub-expression (``2*k1*r`` → ``b0*r``)."""
    if R not in expr.free_symbols:
        if not expr.free_symbols:
            return expr
        if expr not in parameters:
            parameters[expr] = sympy.Symbol(f"b{len(parameters)}")
        return parameters[expr]
    if not expr.args:
        return expr
    if isinstance(expr, (sympy.Add, sympy.Mul)):
        constant = [a for a in expr.args if R not in a.free_symbols]
        varying = [_free_constants(a, parameters) for a in expr.args if R in a.free_symbols]
        if any(a.free_symbols for a in constant):
            return expr.func(_free_constants(expr.func(*constant), parameters), *varying)
        return expr.func(*constant, *varying)
    return expr.func(*[_free_constants(arg, parameters) for arg in expr.args])


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
