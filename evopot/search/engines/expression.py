"""Between GP trees and formulas: the primitive set of a slot, tree → sympy, and trees
read back from checkpoint strings without ``eval``.

Each slot of a search-space term (V(r), g(cos θ), h(r), V3(r_ij, r_ik, cos θ), F(ρ),
f(r)) is its own tree over its own variables; :func:`evopot.search.candidate.decompose` turns
the sympy expressions of all slots into a candidate.
"""

from __future__ import annotations

import functools
import random
import re

import sympy
from deap import gp

from evopot.errors import EvopotError
from evopot.search.engines.primitives import OPERATORS

CONSTANT = "const"


def build_primitive_set(
    operators: list[str],
    variables: tuple[str, ...],
    low: float,
    high: float,
    name: str = "V",
    radius: float | None = None,
) -> gp.PrimitiveSet:
    """DEAP primitive set: the operators, the slot's variables and an ephemeral constant
    drawn uniformly from [low, high]; the terminal ``rc`` stands for ``radius``, which
    the context also holds for operators that need it (``vanish``)."""
    pset = gp.PrimitiveSet(name, len(variables))
    pset.renameArguments(**{f"ARG{k}": v for k, v in enumerate(variables)})
    for op_name in operators:
        op = OPERATORS[op_name]
        if (op.arity == 0 or op.needs_radius) and radius is None:
            raise EvopotError(f"operator {op_name!r} needs the term's cutoff radius")
        if op.needs_radius and tuple(variables) != ("r",):
            raise EvopotError(
                f"operator {op_name!r} works on a distance r; slot {name} has variables "
                f"{', '.join(variables)}: list it only for V, h or f slots"
            )
        if op.arity == 0:
            pset.addTerminal(float(radius), name=op_name)
        else:
            pset.addPrimitive(_placeholder(op.arity), op.arity, name=op_name)
        if op.needs_radius:
            pset.context["rc"] = float(radius)
    pset.addEphemeralConstant(CONSTANT, functools.partial(_random_constant, low, high))
    return pset


def _random_constant(low: float, high: float) -> float:
    return round(random.uniform(low, high), 3)


def _placeholder(arity):
    # DEAP wants a callable per primitive; evopot never compiles trees with DEAP.
    return (lambda a: a) if arity == 1 else (lambda a, b: a)


def tree_to_sympy(
    tree: gp.PrimitiveTree, tree_index: int = 0, named: dict[str, float] | None = None
) -> tuple[sympy.Expr, dict[sympy.Symbol, float]]:
    """The tree as a sympy expression in its variables; each ephemeral constant becomes
    a symbol ``k<tree_index>_<node>``, returned with its value. Named terminals (``rc``)
    become their fixed numbers from ``named`` (a primitive set's ``context``)."""
    named = {k: v for k, v in (named or {}).items() if isinstance(v, float)}
    values: dict[sympy.Symbol, float] = {}
    stack: list[list] = []
    for index, node in enumerate(tree):
        stack.append([node, [], index])
        while stack and len(stack[-1][1]) == stack[-1][0].arity:
            node, args, position = stack.pop()
            if isinstance(node, gp.Primitive):
                op = OPERATORS[node.name]
                if op.needs_radius and "rc" not in named:
                    raise EvopotError(
                        f"operator {node.name!r} needs the cutoff radius: pass the primitive set's context"
                    )
                expr = op.build(*args, sympy.Float(named["rc"])) if op.needs_radius else op.build(*args)
            elif isinstance(node.value, str):
                expr = sympy.Float(named[node.value]) if node.value in named else sympy.Symbol(node.value)
            else:
                symbol = sympy.Symbol(f"k{tree_index}_{position}")
                values[symbol] = float(node.value)
                expr = symbol
            if stack:
                stack[-1][1].append(expr)
            else:
                return expr, values
    raise EvopotError(f"malformed tree {tree}")


_NUMBER_PATTERN = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_NUMBER = re.compile(r"(?<![A-Za-z0-9_.])" + _NUMBER_PATTERN)
_TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|" + _NUMBER_PATTERN)


def tree_from_string(text: str, pset: gp.PrimitiveSet) -> gp.PrimitiveTree:
    """Parse DEAP's prefix notation (``add(mul(r, 1.5), exp(r))``) without ``eval``:
    names must be primitives or variables of ``pset``; numbers become ephemeral constants."""
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
    spelled = _NUMBER.sub(lambda m: repr(float(m.group())), text.replace(" ", ""))  # 1e-8 is printed 1e-08
    if not nodes or str(tree).replace(" ", "") != spelled:
        raise EvopotError(f"checkpoint: tree {text!r} does not parse with this search space")
    return tree
