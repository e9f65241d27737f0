"""Shared pieces of the generated MD kernel's source: one function per formula with its
exact derivatives, the smooth cutoff, and species selections. The kernel itself
(:mod:`evopot.md.kernels`) asks each term kind for its lines."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field

import sympy

from evopot.model.cutoff import PROFILES, Cutoff
from evopot.model.formula import fold_numbers

_S = sympy.Symbol("s")


def torch_code(expression: sympy.Expr) -> str:
    """``expression`` as torch code (sympy's printer imports torch: only when a kernel is made,
    not in every process that imports the term kinds, such as a search's workers)."""
    from sympy.printing.pytorch import torch_code as code

    return code(expression)


@dataclass
class KernelContext:
    """What a term kind's kernel lines may use: the species ``order`` of the species
    indices, the ``reach`` (Å) the bonds were cut at, whether separable polynomial
    three-body terms use angular ``moments``, and the ``helpers`` (function sources)
    emitted so far."""

    order: tuple[str, ...]
    reach: float
    moments: bool = True
    helpers: list[str] = field(default_factory=list)
    _cutoffs: dict[Cutoff, str] = field(default_factory=dict)

    def cutoff(self, cutoff: Cutoff) -> str | None:
        """The name of the generated ``fc(r) -> (fc, dfc/dr)`` of ``cutoff`` (one per
        distinct cutoff), or ``None`` for a sharp one."""
        if cutoff.kind == "none":
            return None
        if cutoff not in self._cutoffs:
            self._cutoffs[cutoff] = f"cutoff_{len(self._cutoffs)}"
            self.helpers.append(cutoff_source(self._cutoffs[cutoff], cutoff))
        return self._cutoffs[cutoff]

    def function(self, name: str, variables: tuple[str, ...], expression: sympy.Expr, constants: dict) -> str:
        """Emit :func:`function_source` as a helper and return ``name``."""
        self.helpers.append(function_source(name, variables, expression, constants))
        return name

    def species_index(self, species: tuple[str, ...]) -> list[int]:
        return [self.order.index(s) if s in self.order else -1 for s in species]


#: Kernel lines that pass each angle's ∂W/∂r1 (v1), ∂W/∂r2 (v2) and ∂W/∂cos θ (vc) to its
#: two bonds: ∂W/∂d1 = (∂W/∂r1 − ∂W/∂cos·cos/r1)·u1 + ∂W/∂cos/r1·u2, the u1 part radial
ANGLE_FORCE_LINES = [
    "a1, a2 = vc / r1, vc / r2",
    "per_bond = per_bond.index_add(1, t1, torch.stack((v1 - a1 * cos, a1 * x2, a1 * y2, a1 * z2)))",
    "per_bond = per_bond.index_add(1, t2, torch.stack((v2 - a2 * cos, a2 * x1, a2 * y1, a2 * z1)))",
]


def function_source(
    name: str, variables: tuple[str, ...], expression: sympy.Expr, constants: dict[str, float], derivatives: bool = True
) -> str:
    """Source of ``name(*variables) -> (value, d/dvariable…)`` with constants inlined."""
    symbols = [sympy.Symbol(v) for v in variables]
    expr = expression.xreplace({sympy.Symbol(k): sympy.Float(v, 17) for k, v in constants.items()})
    outputs = [fold_numbers(e) for e in [expr] + ([sympy.diff(expr, s) for s in symbols] if derivatives else [])]
    shared, reduced = sympy.cse(outputs, symbols=sympy.numbered_symbols("t"))
    # an output free of the variables (a constant) is broadcast to their shape by adding zero
    constant = [not (full.free_symbols & set(symbols)) for full in outputs]
    lines = [f"def {name}({', '.join(variables)}):"] + ([f"    zero = {variables[0]} * 0"] if any(constant) else [])
    lines += [f"    {s} = {torch_code(e)}" for s, e in shared]
    lines.append(
        "    return (" + ", ".join(("zero + " if c else "") + torch_code(e) for c, e in zip(constant, reduced)) + ",)"
    )
    return "\n".join(lines)


def cutoff_source(name: str, cutoff: Cutoff) -> str:
    """Source of ``name(r) -> (fc, dfc/dr)``: the smooth cutoff of :mod:`evopot.model.cutoff`."""
    profile = PROFILES[cutoff.kind][0]
    r = sympy.Symbol("r")
    switch = cutoff.switch_expr(r)
    value = torch_code(profile)
    slope = torch_code(sympy.diff(profile, _S) * sympy.diff(switch, r))
    return textwrap.dedent(f"""\
        def {name}(r):
            zero = r * 0
            s = ({torch_code(switch)}).clamp(0.0, 1.0)
            inside = (s > 0) & (s < 1)
            return zero + {value}, torch.where(inside, zero + {slope}, zero)""")
