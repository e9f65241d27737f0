"""Safe parsing of formula strings into sympy expressions.

Formula strings come from files a user may not have written (potential JSON, search
spaces), so they are never handed to ``eval`` or ``sympify`` as they are. The string is
first tokenised with Python's own tokenizer and every token checked against a whitelist
(numbers, arithmetic operators, parentheses, commas, known function names and the
declared variable and constant names); only then does sympy's ``parse_expr`` build the
expression, with an empty ``__builtins__`` and a namespace holding nothing else.
"""

from __future__ import annotations

import functools
import io
import keyword
import tokenize

import sympy
from sympy.parsing.sympy_parser import parse_expr, standard_transformations

from evopot.errors import EvopotError

#: Functions a formula may call, by the name it is written with.
FUNCTIONS = {
    "exp": sympy.exp,
    "log": sympy.log,
    "sqrt": sympy.sqrt,
    "sin": sympy.sin,
    "cos": sympy.cos,
    "tanh": sympy.tanh,
    "Abs": sympy.Abs,
    "abs": sympy.Abs,
    "erf": sympy.erf,
    "pi": sympy.pi,
    "E": sympy.E,  # Euler's number, as sympy prints it (a constant rounded to infinity can leave it)
}
_OPERATORS = {"+", "-", "*", "/", "**", "(", ")", ","}
_SKIP = {tokenize.ENCODING, tokenize.NEWLINE, tokenize.NL, tokenize.ENDMARKER, tokenize.INDENT, tokenize.DEDENT}


def parse_formula(text: str, names: list[str] | tuple[str, ...], where: str = "formula") -> sympy.Expr:
    """Parse ``text`` into a sympy expression whose free symbols are among ``names``.

    ``where`` names the file and field for the error message. Raises
    :class:`EvopotError` for anything that is not plain arithmetic on the allowed names.
    """
    if not isinstance(text, str) or not text.strip():
        raise EvopotError(f"{where}: expected a formula string, got {text!r}")
    if len(text) > 10_000:
        raise EvopotError(f"{where}: formula is longer than 10,000 characters")
    allowed = set(names)
    bad_names = [
        n for n in allowed if not n.isidentifier() or keyword.iskeyword(n) or n.startswith("_") or n in FUNCTIONS
    ]
    if bad_names:
        raise EvopotError(f"{where}: {bad_names} cannot be used as variable or constant names")
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, IndentationError, SyntaxError) as exc:
        raise EvopotError(f"{where}: cannot read formula {text!r}: {exc}") from exc
    for tok in tokens:
        if tok.type in _SKIP:
            continue
        if tok.type == tokenize.NUMBER:
            if any(c in tok.string.lower() for c in "jxob_") and not _is_float(tok.string):
                raise EvopotError(f"{where}: number {tok.string!r} in {text!r} is not a plain decimal number")
            continue
        if tok.type == tokenize.NAME:
            if tok.string in FUNCTIONS or tok.string in allowed:
                continue
            raise EvopotError(
                f"{where}: unknown name {tok.string!r} in {text!r}; allowed are the variables and constants "
                f"{sorted(allowed)} and the functions {sorted(FUNCTIONS)}"
            )
        if tok.type == tokenize.OP and tok.string in _OPERATORS:
            continue
        raise EvopotError(
            f"{where}: {tok.string!r} is not allowed in a formula ({text!r}); use numbers, + - * / **, "
            f"parentheses and the allowed names"
        )
    _refuse_huge_powers(text, where)
    namespace = {
        "__builtins__": {},
        "Integer": sympy.Integer,
        "Float": sympy.Float,
        "Rational": sympy.Rational,
        "Symbol": sympy.Symbol,
    }
    namespace.update(FUNCTIONS)
    local = {n: sympy.Symbol(n) for n in allowed}
    try:
        expr = parse_expr(
            text, local_dict=local, global_dict=namespace, transformations=standard_transformations, evaluate=True
        )
    except Exception as exc:  # sympy raises many kinds for malformed arithmetic
        raise EvopotError(f"{where}: cannot parse formula {text!r}: {exc}") from exc
    if not isinstance(expr, sympy.Expr):
        raise EvopotError(f"{where}: {text!r} is not a formula")
    if expr.has(sympy.zoo, sympy.oo, -sympy.oo, sympy.nan):
        raise EvopotError(f"{where}: {text!r} is infinite or undefined everywhere (a division by zero?)")
    if expr.has(sympy.I):
        raise EvopotError(f"{where}: {text!r} has an imaginary part; a potential is real")
    return expr


def _refuse_huge_powers(text: str, where: str) -> None:
    """An error for a power of numbers beyond floating point (``9**9**9**9``,
    ``r*10**10**8``): sympy would compute it exactly, for hours. Walks Python's syntax
    tree of the formula, evaluating only its numbers-only parts, in floats."""
    import ast

    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError:
        return  # sympy's parser reports it

    def value(node):
        """The float value of a numbers-only subtree, or None."""
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return float(node.value)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            inner = value(node.operand)
            return None if inner is None else (-inner if isinstance(node.op, ast.USub) else inner)
        if isinstance(node, ast.BinOp):
            left, right = value(node.left), value(node.right)
            if left is None or right is None:
                return None
            try:
                if isinstance(node.op, ast.Pow):
                    if abs(left) not in (0.0, 1.0) and abs(right) > 1e4:
                        raise OverflowError
                    result = abs(left) ** right if left < 0 and right != int(right) else left**right
                elif isinstance(node.op, ast.Add):
                    result = left + right
                elif isinstance(node.op, ast.Sub):
                    result = left - right
                elif isinstance(node.op, ast.Mult):
                    result = left * right
                elif isinstance(node.op, ast.Div):
                    result = left / right if right else None
                else:
                    return None
            except (OverflowError, ZeroDivisionError):
                result = float("inf")
            if result is not None and isinstance(node.op, ast.Pow) and not abs(result) < 1e300:
                raise EvopotError(
                    f"{where}: {ast.unparse(node)} in {text!r} is a number beyond floating point (above 1e300); "
                    f"write the formula with smaller numbers"
                )
            return result
        return None

    for node in ast.walk(tree):
        if isinstance(node, ast.BinOp):
            value(node)


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return "_" not in text and "x" not in text.lower() and "j" not in text.lower()


def round_floats(expr: sympy.Expr, digits: int) -> sympy.Expr:
    """``expr`` with every number rounded to ``digits`` significant figures."""
    return expr.xreplace({f: sympy.Float(float(f"{float(f):.{digits}g}"), digits) for f in expr.atoms(sympy.Float)})


def formula_string(expr: sympy.Expr) -> str:
    """The plain-text form of ``expr`` that :func:`parse_formula` reads back exactly
    (floats written with 17 significant digits)."""
    return sympy.printing.str.StrPrinter({"full_prec": True}).doprint(expr)


@functools.lru_cache(maxsize=8192)
def tidy(expr: sympy.Expr, variable: sympy.Symbol) -> sympy.Expr:
    """One canonical spelling of exponentials and powers in ``variable`` (a distance,
    so positive): (r³)^b → r^(3b); c^f(r) → exp(f(r)·ln c); exp(a)·exp(b) → exp(a + b)
    with the argument collected in powers of r (exp(r)·exp(k·r) → exp(r·(k + 1))).
    Cached: a search asks again for the bases of trees its parents already had."""
    expr = sympy.powdenest(expr, force=True)
    expr = expr.replace(
        lambda e: e.is_Pow and variable not in e.base.free_symbols and variable in e.exp.free_symbols,
        lambda e: sympy.exp(e.exp * sympy.log(e.base)),
    )
    expr = sympy.powsimp(expr)
    return expr.replace(
        lambda e: isinstance(e, sympy.exp), lambda e: sympy.exp(sympy.collect(sympy.expand(e.args[0]), variable))
    )


def fold_numbers(expression: sympy.Expr) -> sympy.Expr:
    """``expression`` with every constant subexpression that is not a plain rational
    (``exp(-1)``, ``pi``, ``E``, ``sqrt(2)``, ``log(3)``) replaced by its float value:
    torch's functions take tensors, not Python numbers, so ``torch.exp(-1)`` would fail."""
    if expression.is_Rational or expression.is_Float:
        return expression
    if expression.is_number:
        try:
            value = complex(sympy.N(expression, 17))
        except TypeError:  # zoo, nan: no complex value
            value = complex(float("nan"))
        if value.imag != 0 or value.real != value.real or abs(value.real) == float("inf"):
            raise EvopotError(f"the constant {expression} in a formula is not a finite real number")
        return sympy.Float(value.real, 17)
    if not expression.args:
        return expression
    return expression.func(*(fold_numbers(a) for a in expression.args))
