"""Compile a Potential into one generated torch function for energies, forces and stress.

The generated source is plain Python you can print (:attr:`Kernel.source`): one
function per term slot with its value and exact symbolic derivatives (sympy ``cse``
shares their common subexpressions, constants are inlined), the cutoff functions, and
one ``compute`` that makes a single pass over the bonds of a full neighbour list and
the angles built from them. No autograd at run time; the device and dtype are those
of the tensors passed in (float64 or float32, CPU or CUDA). ``torch.compile`` of
``compute`` is optional (:func:`compile_kernel` with ``optimize=True``); the first
call then costs tens of seconds, later calls reuse torch's compile cache.

``compute(d, center, neighbor, species, n_atoms)`` takes the bond vectors ``d``
(n_bonds, 3) Å from atom ``center`` to atom ``neighbor`` (every pair in both
directions) and per-atom species indices; it returns the energy (eV), the forces
(n_atoms, 3) eV/Å, and the virial W = Σ d ⊗ ∂E/∂d (3, 3) eV: the strain derivative
∂E/∂ε, so that W / volume is ASE's stress.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import sympy
from sympy.printing.pytorch import torch_code

from evopot.cutoff import PROFILES, Cutoff
from evopot.potential import DENSITY_VARIABLES, TERM_VARIABLES, Potential, Term

_S = sympy.Symbol("s")


@dataclass(frozen=True)
class Kernel:
    """A compiled potential: ``compute`` and the ``source`` it was made from."""

    potential: Potential
    source: str
    compute: Callable
    pair_radius: float  # Å, the largest cutoff of any term: the neighbour list's radius


def _function(name: str, variables: tuple[str, ...], expression: sympy.Expr, constants: dict[str, float], derivatives: bool = True) -> str:
    """Source of ``name(*variables) -> (value, d/dvariable…)`` with constants inlined."""
    symbols = [sympy.Symbol(v) for v in variables]
    expr = expression.xreplace({sympy.Symbol(k): sympy.Float(v, 17) for k, v in constants.items()})
    outputs = [expr] + ([sympy.diff(expr, s) for s in symbols] if derivatives else [])
    shared, reduced = sympy.cse(outputs, symbols=sympy.numbered_symbols("t"))
    lines = [f"def {name}({', '.join(variables)}):", f"    zero = {variables[0]} * 0"]
    lines += [f"    {s} = {torch_code(e)}" for s, e in shared]
    lines.append("    return (" + ", ".join(f"zero + {torch_code(e)}" for e in reduced) + ",)")
    return "\n".join(lines)


def _cutoff_function(name: str, cutoff: Cutoff) -> str:
    """Source of ``name(r) -> (fc, dfc/dr)``: the smooth cutoff of :mod:`evopot.cutoff`."""
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


def _species_mask(variable_names: list[str], species: tuple[str, ...] | None, order: tuple[str, ...], kind: str) -> str | None:
    """A torch expression selecting the bonds/angles/atoms a species-specific term acts on."""
    if species is None:
        return None
    index = [order.index(s) if s in order else -1 for s in species]
    if kind == "pair":
        a, b = index
        si, sj = variable_names
        return f"(({si} == {a}) & ({sj} == {b})) | (({si} == {b}) & ({sj} == {a}))"
    if kind == "threebody":
        c, a, b = index
        si, sj, sk = variable_names
        return f"({si} == {c}) & ((({sj} == {a}) & ({sk} == {b})) | (({sj} == {b}) & ({sk} == {a})))"
    return " | ".join(f"({variable_names[0]} == {k})" for k in index)


def _separable(term: Term) -> tuple[sympy.Expr, sympy.Expr] | None:
    """(h(r), g(cos θ)) when the three-body term is g(cos θ)·h(r_ij)·h(r_ik) with the same
    h for both bonds (constants inserted), else None."""
    rij, rik, cos = (sympy.Symbol(v) for v in TERM_VARIABLES["threebody"])
    r = sympy.Symbol("r")
    parts = sympy.separatevars(term.numeric(), symbols=[rij, rik, cos], dict=True)
    if not parts:
        return None
    h_ij, h_ik = parts.get(rij, sympy.Integer(1)), parts.get(rik, sympy.Integer(1))
    if h_ij.xreplace({rij: r}) != h_ik.xreplace({rik: r}) or not h_ij.free_symbols <= {rij}:
        return None
    return h_ij.xreplace({rij: r}), parts["coeff"] * parts.get(cos, sympy.Integer(1))


def generate_source(potential: Potential) -> str:
    """The Python source of the kernel for ``potential``."""
    from evopot.evaluate import _symmetric

    helpers, body = [], []
    cutoffs: dict[Cutoff, str] = {}

    def cutoff_name(term: Term) -> str:
        c = potential.cutoff_of(term)
        if c not in cutoffs:
            cutoffs[c] = f"cutoff_{len(cutoffs)}"
            helpers.append(_cutoff_function(cutoffs[c], c))
        return cutoffs[c]

    reach = max(potential.cutoff_of(t).radius for t in potential.terms)
    for k, term in enumerate(potential.terms):
        cutoff = potential.cutoff_of(term)
        smooth = cutoff.kind != "none"
        fc = cutoff_name(term) if smooth else None
        radius = cutoff.radius
        if term.kind == "pair":
            helpers.append(_function(f"pair_{k}", TERM_VARIABLES["pair"], term.expression, term.constants))
            mask = _species_mask(["species[center]", "species[neighbor]"], term.species, potential.species, "pair")
            select = " & ".join(([f"(r < {radius!r})"] if radius < reach else []) + ([f"({mask})"] if mask else []))
            lines = [f"# pair term {k}: V(r)·fc(r), half of each bond's value (every pair appears twice)"]
            if select:
                lines += [f"b = torch.nonzero({select}).squeeze(1)", f"v, dv = pair_{k}(r[b])"]
            else:
                lines += [f"v, dv = pair_{k}(r)"]
            if smooth:
                lines += [f"c, dc = {fc}(r[b])" if select else f"c, dc = {fc}(r)", "v, dv = v * c, dv * c + v * dc"]
            lines += ["energy = energy + 0.5 * v.sum()", "slope = slope.index_add(0, b, 0.5 * dv)" if select else "slope = slope + 0.5 * dv"]
            body.append("\n".join(lines))
        elif term.kind == "embedding":
            helpers.append(_function(f"density_{k}", DENSITY_VARIABLES, term.density, term.constants))
            helpers.append(_function(f"embedding_{k}", TERM_VARIABLES["embedding"], term.expression, term.constants))
            mask = _species_mask(["species"], term.species, potential.species, "embedding")
            lines = [f"# embedding term {k}: F(ρ_i), ρ_i = Σ_j f(r_ij)·fc(r_ij)", f"b = torch.nonzero(r < {radius!r}).squeeze(1)", f"f, df = density_{k}(r[b])"]
            if smooth:
                lines += [f"c, dc = {fc}(r[b])", "f, df = f * c, df * c + f * dc"]
            lines += [
                "rho = torch.zeros(n_atoms, dtype=r.dtype, device=r.device).index_add(0, center[b], f)",
                f"F, dF = embedding_{k}(rho)",
            ]
            if mask:
                lines += [f"active = ({mask}).to(r.dtype)", "F, dF = F * active, dF * active"]
            lines += ["energy = energy + F.sum()", "slope = slope.index_add(0, b, dF[center[b]] * df)"]
            body.append("\n".join(lines))
        else:
            mask = _species_mask(["species[center[t1]]", "species[neighbor[t1]]", "species[neighbor[t2]]"], term.species, potential.species, "threebody")
            lines = []
            separable = _separable(term)
            if separable is not None:
                # h per bond (cutoff folded in), then per angle only products: SW and mW are of this form
                radial, angular = separable
                helpers.append(_function(f"radial_{k}", ("r",), radial, {}))
                helpers.append(_function(f"angular_{k}", ("costheta",), angular, {}))
                lines += [f"# three-body term {k}: g(cos θ)·h(r_ij)·h(r_ik)·fc(r_ij)·fc(r_ik) per angle j–i–k",
                          f"h, dh = radial_{k}(torch.where(r < {radius!r}, r, r.new_tensor({radius / 2!r})))"]
                if smooth:
                    lines += [f"c, dc = {fc}(r)", "h, dh = h * c, dh * c + h * dc"]
            else:
                helpers.append(_function(f"angle_{k}", TERM_VARIABLES["threebody"], term.expression, term.constants))
                lines += [f"# three-body term {k}: V3(r_ij, r_ik, cos θ)·fc(r_ij)·fc(r_ik) per angle j–i–k"]
            lines += [f"t1, t2 = angle_pairs(center, r, {radius!r}, n_atoms)"]
            if mask:
                lines += [f"keep = torch.nonzero({mask}).squeeze(1)", "t1, t2 = t1[keep], t2[keep]"]
            lines += ["r1, r2 = r[t1], r[t2]", "u1, u2 = unit[t1], unit[t2]", "cos = (u1 * u2).sum(1)"]
            if separable is not None:
                lines += [f"g, dg = angular_{k}(cos)", "h1, h2, dh1, dh2 = h[t1], h[t2], dh[t1], dh[t2]",
                          "gh2 = g * h2", "v, v1, v2, vc = gh2 * h1, gh2 * dh1, g * h1 * dh2, dg * h1 * h2"]
            else:
                lines += [f"v, v1, v2, vc = angle_{k}(r1, r2, cos)"]
                if not _symmetric(term.expression):
                    lines += [f"w, w2, w1, wc = angle_{k}(r2, r1, cos)", "v, v1, v2, vc = 0.5 * (v + w), 0.5 * (v1 + w1), 0.5 * (v2 + w2), 0.5 * (vc + wc)"]
                if smooth:
                    lines += [f"c1, dc1 = {fc}(r1)", f"c2, dc2 = {fc}(r2)", "c12 = c1 * c2", "v1, v2, vc = (v1 * c1 + v * dc1) * c2, (v2 * c2 + v * dc2) * c1, vc * c12", "v = v * c12"]
            lines += [
                "energy = energy + v.sum()",
                "# ∂W/∂d1 = (∂W/∂r1 − ∂W/∂cos·cos/r1)·u1 + ∂W/∂cos/r1·u2: the u1 part is radial (a slope)",
                "a1, a2 = vc / r1, vc / r2",
                "slope = slope.index_add(0, t1, v1 - a1 * cos).index_add(0, t2, v2 - a2 * cos)",
                "gradient = gradient.index_add(0, t1, a1[:, None] * u2).index_add(0, t2, a2[:, None] * u1)",
            ]
            body.append("\n".join(lines))

    header = f'"""evopot kernel (generated) for: {potential.formula()}"""\n\nimport torch\n\nfrom evopot.neighbors import angle_pairs\n'
    compute = textwrap.dedent(f'''\
        def compute(d, center, neighbor, species, n_atoms):
            """Energy (eV), forces (n_atoms, 3) eV/Å and virial Σ d⊗∂E/∂d (3, 3) eV from bond
            vectors d (n_bonds, 3) of a full neighbour list sorted by center."""
            r = torch.linalg.norm(d, dim=1)
            # only bonds inside the largest cutoff ({reach!r} Å) matter; the list has a skin
            inside = torch.nonzero(r < {reach!r}).squeeze(1)
            d, center, neighbor, r = d[inside], center[inside], neighbor[inside], r[inside]
            unit = d / r[:, None]
            energy = r.new_zeros(())
            slope = torch.zeros_like(r)          # ∂E/∂r per bond, from radial terms
            gradient = torch.zeros_like(d)       # the rest of ∂E/∂d per bond, from angular terms

        ''')
    compute += textwrap.indent("\n\n".join(body), "    ") + "\n\n"
    compute += textwrap.indent(textwrap.dedent('''\
        gradient = gradient + slope[:, None] * unit
        # E depends on positions through d = x[neighbor] − x[center] (+ shift)
        forces = torch.zeros(n_atoms, 3, dtype=d.dtype, device=d.device).index_add(0, center, gradient).index_add(0, neighbor, -gradient)
        virial = d.T @ gradient
        return energy, forces, virial'''), "    ")
    return header + "\n\n" + "\n\n\n".join(helpers) + "\n\n\n" + compute + "\n"


@lru_cache(maxsize=32)
def _compiled(source: str, optimize: bool) -> Callable:
    import torch

    namespace: dict = {}
    exec(compile(source, "<evopot kernel>", "exec"), namespace)  # our own generated code, from safely parsed formulas
    compute = namespace["compute"]
    return torch.compile(compute, dynamic=True) if optimize else compute


def compile_kernel(potential: Potential, optimize: bool = False) -> Kernel:
    """Generate and compile the kernel of ``potential``; ``optimize`` wraps it in
    ``torch.compile`` (slow first call)."""
    source = generate_source(potential)
    return Kernel(potential, source, _compiled(source, optimize), potential.reach)
