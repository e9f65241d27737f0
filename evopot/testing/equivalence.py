"""Is a found formula the true one? Symbolic equivalence up to constant precision.

Both expressions are brought to one spelling (:func:`evopot.model.formula.tidy`: c^r as
exp(r·ln c), nested powers flattened, exponentials combined) and expanded, then
compared as trees: operators and symbols must agree exactly, numbers to a relative
tolerance. Sums and products are matched as multisets, and a numeric coefficient that
one side lacks counts as 1 (or 0 for a sum's constant), so 1.0004·e^(−2r) matches
e^(−2r) at rtol 1e-3. This is the check the rediscovery tests and benchmarks use.
"""

from __future__ import annotations

import math

import sympy

from evopot.model.formula import tidy


def canonical(expr: sympy.Expr, variables) -> sympy.Expr:
    """Expanded, tidied in each variable, with numbers within 1e-6 of an integer made
    that integer (so a fitted exponent 1.00000006 reads as 1)."""

    def snap(e):
        return e.xreplace({f: sympy.Integer(round(f)) for f in e.atoms(sympy.Float) if abs(f - round(f)) < 1e-6})

    expr = snap(sympy.expand(expr))
    for v in variables:
        expr = tidy(expr, v)
    return sympy.expand(snap(sympy.powsimp(expr)))


def equivalent(found: sympy.Expr, truth: sympy.Expr, rtol: float = 1e-3, variables=("r",)) -> bool:
    """True when ``found`` and ``truth`` have the same form and constants within ``rtol``."""
    symbols = [sympy.Symbol(v) for v in variables]
    return _match(canonical(found, symbols), canonical(truth, symbols), rtol)


def _number(e) -> bool:
    return e.is_Number or (e.is_number and not e.free_symbols)


def _close(a, b, rtol) -> bool:
    try:
        x, y = complex(a), complex(b)
    except TypeError:
        return False
    return math.isclose(x.real, y.real, rel_tol=rtol, abs_tol=1e-12) and math.isclose(
        x.imag, y.imag, rel_tol=rtol, abs_tol=1e-12
    )


def _match(a, b, rtol) -> bool:
    if _number(a) and _number(b):
        return _close(a, b, rtol)
    if isinstance(a, sympy.Mul) or isinstance(b, sympy.Mul):
        ca, ra = a.as_coeff_Mul()
        cb, rb = b.as_coeff_Mul()
        if (ca, ra) != (1, a) or (cb, rb) != (1, b):
            return _close(ca, cb, rtol) and _match(ra, rb, rtol)
    if isinstance(a, sympy.Add) or isinstance(b, sympy.Add):
        ca, ra = a.as_coeff_Add()
        cb, rb = b.as_coeff_Add()
        if (ca, ra) != (0, a) or (cb, rb) != (0, b):
            return (_close(ca, cb, rtol) or (abs(float(ca)) < 1e-12 and abs(float(cb)) < 1e-12)) and _match(
                ra, rb, rtol
            )
    if a.func != b.func or len(a.args) != len(b.args):
        return False
    if not a.args:
        return a == b
    if a.is_commutative and isinstance(a, (sympy.Add, sympy.Mul)):
        return _match_multiset(list(a.args), list(b.args), rtol)
    return all(_match(x, y, rtol) for x, y in zip(a.args, b.args))


def _match_multiset(left, right, rtol) -> bool:
    if not left:
        return not right
    head, rest = left[0], left[1:]
    for k, candidate in enumerate(right):
        if _match(head, candidate, rtol) and _match_multiset(rest, right[:k] + right[k + 1 :], rtol):
            return True
    return False
