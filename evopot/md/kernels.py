"""Compile a Potential into one generated torch function for energies, forces and stress.

The generated source is plain Python you can print (:attr:`Kernel.source`): one
function per term slot with its value and exact symbolic derivatives (sympy ``cse``
shares their common subexpressions, constants are inlined), the cutoff functions, and
one ``compute`` that makes a single pass over the bonds of a full neighbour list and
the angles built from them. A separable three-body term whose g(cos θ) is a polynomial
(Stillinger–Weber, mW) needs no angles at all: per-atom angular moments give the same
sum over pairs of bonds exactly (:func:`_moment_lines`), in time linear in the bonds.
Per-bond work is laid out component-major, (3, n_bonds), because scatters along the
last axis are the fast ones on the CPU. No autograd at run time; the device and dtype
are those of the tensors passed in (float64 or float32, CPU or CUDA). ``torch.compile``
of ``compute`` is optional (:func:`compile_kernel` with ``optimize=True``); the first
call then costs tens of seconds, later calls reuse torch's compile cache (on the CPU it
measured slower than the plain kernel: benchmarks/md_speed.py).

``compute(d, center, neighbor, species, n_atoms)`` takes the bond vectors ``d``
(n_bonds, 3) Å from atom ``center`` to atom ``neighbor`` (every pair in both
directions) and per-atom species indices; it returns the energy (eV), the forces
(n_atoms, 3) eV/Å, and the virial W = Σ d ⊗ ∂E/∂d (3, 3) eV: the strain derivative
∂E/∂ε, so that W / volume is ASE's stress.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import sympy
from sympy.printing.pytorch import torch_code

from evopot.model.cutoff import PROFILES, Cutoff
from evopot.model.formula import fold_numbers
from evopot.model.potential import DENSITY_VARIABLES, TERM_VARIABLES, Potential, Term

_S = sympy.Symbol("s")


@dataclass(frozen=True)
class Kernel:
    """A compiled potential: ``compute`` and the ``source`` it was made from."""

    potential: Potential
    source: str
    compute: Callable
    pair_radius: float  # Å, the largest cutoff of any term: the neighbour list's radius


def _function(
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


def _cutoff_function(name: str, cutoff: Cutoff) -> str:
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


def _species_mask(
    variable_names: list[str], species: tuple[str, ...] | None, order: tuple[str, ...], kind: str
) -> str | None:
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


def _polynomial(angular: sympy.Expr, degree: int = 4) -> list[float] | None:
    """Coefficients c_0…c_n of g(cos θ) = Σ c_n cosⁿ θ when g is a polynomial of degree
    ≤ ``degree`` with numeric coefficients, else None."""
    cos = sympy.Symbol(TERM_VARIABLES["threebody"][2])
    if not angular.free_symbols <= {cos}:
        return None
    try:
        poly = sympy.Poly(sympy.expand(angular), cos)
    except sympy.PolynomialError:
        return None
    if poly.degree() > degree or not all(c.is_number for c in poly.all_coeffs()):
        return None
    return [float(c) for c in reversed(poly.all_coeffs())]


def _moment_lines(coefficients: list[float]) -> list[str]:
    """Source of Σ_i Σ_{j<k} g(u_j·u_k)·h_j·h_k for g = Σ c_n cosⁿ without triplets (the
    angular-moment identity): (u_j·u_k)ⁿ = Σ_{|α|=n} n!/α! u_j^α u_k^α, so the sum over
    all ordered pairs of a centre's bonds is Σ_α w_α T_α² with T_α = Σ_j h_j u_j^α and
    w_α = c_n n!/α!; the pairs j = k (cos = 1) are taken out and the rest halved. Needs
    ``h``, ``dh`` (dh/dr) per bond; adds to energy, slope and per_bond."""
    ux, uy, uz = sympy.symbols("ux uy uz")
    monomials, weights = [], []
    for n, c in enumerate(coefficients):
        if c == 0:
            continue
        for a in range(n + 1):
            for b in range(n + 1 - a):
                monomials.append(ux**a * uy**b * uz ** (n - a - b))
                weights.append(
                    c * math.factorial(n) / (math.factorial(a) * math.factorial(b) * math.factorial(n - a - b))
                )
    weighted = [sympy.Symbol(f"wt[{m}]") for m in range(len(monomials))]
    total = sum(w * m for w, m in zip(weighted, monomials))
    slopes = [torch_code(sympy.diff(total, u)) for u in (ux, uy, uz)]
    rows = ["torch.ones_like(ux)" if m == 1 else torch_code(m) for m in monomials]
    return [
        "ux, uy, uz = unit",
        f"monomials = torch.stack(({', '.join(rows)},))",
        f"moments = r.new_zeros(({len(monomials)}, n_atoms)).index_add(1, center, monomials * h)  # T_α per atom",
        f"weights = r.new_tensor({tuple(weights)!r})[:, None]",
        f"energy = energy + 0.5 * (weights * moments * moments).sum() - {0.5 * sum(coefficients)!r} * (h * h).sum()",
        "wt = (weights * moments).index_select(1, center)  # w_α·T_α of each bond's centre",
        f"slope = slope + ((wt * monomials).sum(0) - {sum(coefficients)!r} * h) * dh",
        f"q = (h / r) * torch.stack(({', '.join(slopes)}))  # ∂E/∂u, over r",
        "per_bond = per_bond + torch.cat((-(q * unit).sum(0, keepdim=True), q))  # its part across the bond",
    ]


def generate_source(potential: Potential, moments: bool = True) -> str:
    """The Python source of the kernel for ``potential``; ``moments`` False keeps the
    triplet loop even where g(cos θ) is a polynomial (for comparisons)."""
    from evopot.model.evaluate import _symmetric

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
            lines += [
                "energy = energy + 0.5 * v.sum()",
                "slope = slope.index_add(0, b, 0.5 * dv)" if select else "slope = slope + 0.5 * dv",
            ]
            body.append("\n".join(lines))
        elif term.kind == "embedding":
            helpers.append(_function(f"density_{k}", DENSITY_VARIABLES, term.density, term.constants))
            helpers.append(_function(f"embedding_{k}", TERM_VARIABLES["embedding"], term.expression, term.constants))
            mask = _species_mask(["species"], term.species, potential.species, "embedding")
            lines = [
                f"# embedding term {k}: F(ρ_i), ρ_i = Σ_j f(r_ij)·fc(r_ij)",
                f"b = torch.nonzero(r < {radius!r}).squeeze(1)",
                f"f, df = density_{k}(r[b])",
            ]
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
            mask = _species_mask(
                ["species[center[t1]]", "species[neighbor[t1]]", "species[neighbor[t2]]"],
                term.species,
                potential.species,
                "threebody",
            )
            lines = []
            separable = _separable(term)
            if separable is not None:
                # h per bond (cutoff folded in), then per angle only products: SW and mW are of this form
                radial, angular = separable
                helpers.append(_function(f"radial_{k}", ("r",), radial, {}))
                lines += [
                    f"# three-body term {k}: g(cos θ)·h(r_ij)·h(r_ik)·fc(r_ij)·fc(r_ik) per angle j–i–k",
                    f"h, dh = radial_{k}(torch.where(r < {radius!r}, r, r.new_tensor({radius / 2!r})))",
                ]
                if smooth:
                    lines += [f"c, dc = {fc}(r)", "h, dh = h * c, dh * c + h * dc"]
                coefficients = None if mask or not moments else _polynomial(angular)
                if coefficients is not None:
                    # g is a polynomial in cos θ: per-atom angular moments instead of triplets
                    if radius < reach:
                        lines += [f"near = (r < {radius!r}).to(r.dtype)", "h, dh = h * near, dh * near"]
                    lines += [
                        f"# g(cos θ) = "
                        f"{' + '.join(f'{c!r}·cos^{n}' for n, c in enumerate(coefficients) if c)}: no "
                        f"triplets, per-atom angular moments"
                    ]
                    body.append("\n".join(lines + _moment_lines(coefficients)))
                    continue
                helpers.append(_function(f"angular_{k}", ("costheta",), angular, {}))
            else:
                helpers.append(_function(f"angle_{k}", TERM_VARIABLES["threebody"], term.expression, term.constants))
                lines += [f"# three-body term {k}: V3(r_ij, r_ik, cos θ)·fc(r_ij)·fc(r_ik) per angle j–i–k"]
            lines += [f"t1, t2 = angle_pairs(center, r, {radius!r}, n_atoms)"]
            if mask:
                lines += [
                    f"keep = torch.nonzero({mask}).squeeze(1)",
                    "t1, t2 = t1.index_select(0, keep), t2.index_select(0, keep)",
                ]
            # each per-bond quantity the angle needs, gathered for both bonds (contiguous columns)
            columns = "r, unit[0], unit[1], unit[2]" + (", h, dh" if separable is not None else "")
            names = "r{s}, x{s}, y{s}, z{s}" + (", h{s}, dh{s}" if separable is not None else "")
            lines += [
                f"{names.format(s=1)} = (column.index_select(0, t1) for column in ({columns}))",
                f"{names.format(s=2)} = (column.index_select(0, t2) for column in ({columns}))",
                "cos = x1 * x2 + y1 * y2 + z1 * z2",
            ]
            if separable is not None:
                lines += [
                    f"g, dg = angular_{k}(cos)",
                    "gh2 = g * h2",
                    "v, v1, v2, vc = gh2 * h1, gh2 * dh1, g * h1 * dh2, dg * h1 * h2",
                ]
            else:
                lines += [f"v, v1, v2, vc = angle_{k}(r1, r2, cos)"]
                if not _symmetric(term.expression):
                    lines += [
                        f"w, w2, w1, wc = angle_{k}(r2, r1, cos)",
                        "v, v1, v2, vc = 0.5 * (v + w), 0.5 * (v1 + w1), 0.5 * (v2 + w2), 0.5 * (vc + wc)",
                    ]
                if smooth:
                    lines += [
                        f"c1, dc1 = {fc}(r1)",
                        f"c2, dc2 = {fc}(r2)",
                        "c12 = c1 * c2",
                        "v1, v2, vc = (v1 * c1 + v * dc1) * c2, (v2 * c2 + v * dc2) * c1, vc * c12",
                        "v = v * c12",
                    ]
            lines += [
                "energy = energy + v.sum()",
                "# ∂W/∂d1 = (∂W/∂r1 − ∂W/∂cos·cos/r1)·u1 + ∂W/∂cos/r1·u2: the u1 part is radial (a slope)",
                "a1, a2 = vc / r1, vc / r2",
                "per_bond = per_bond.index_add(1, t1, torch.stack((v1 - a1 * cos, a1 * x2, a1 * y2, a1 * z2)))",
                "per_bond = per_bond.index_add(1, t2, torch.stack((v2 - a2 * cos, a2 * x1, a2 * y1, a2 * z1)))",
            ]
            body.append("\n".join(lines))

    header = (
        f'"""evopot kernel (generated) for: {potential.formula()}"""\n\nimport torch\n\nfrom '
        f"evopot.data.neighbors import angle_pairs\n"
    )
    compute = textwrap.dedent(f'''\
        def compute(d, center, neighbor, species, n_atoms):
            """Energy (eV), forces (n_atoms, 3) eV/Å and virial Σ d⊗∂E/∂d (3, 3) eV from bond
            vectors d (n_bonds, 3) of a full neighbour list sorted by center."""
            r = torch.linalg.norm(d, dim=1)
            # only bonds inside the largest cutoff ({reach!r} Å) matter; the list has a skin
            inside = torch.nonzero(r < {reach!r}).squeeze(1)
            d, r = d.index_select(0, inside), r.index_select(0, inside)
            center, neighbor = center.index_select(0, inside), neighbor.index_select(0, inside)
            unit = (d / r[:, None]).T.contiguous()  # (3, n_bonds)
            energy = r.new_zeros(())
            slope = torch.zeros_like(r)          # ∂E/∂r per bond, from radial terms
            # from angular terms, per bond, component-major (scatters along the last axis are
            # the fast ones on the CPU): row 0 adds to the slope, rows 1–3 are the rest of ∂E/∂d
            per_bond = r.new_zeros((4, len(r)))

        ''')
    compute += textwrap.indent("\n\n".join(body), "    ") + "\n\n"
    compute += textwrap.indent(
        textwrap.dedent("""\
        gradient = per_bond[1:] + (slope + per_bond[0]) * unit   # ∂E/∂d, (3, n_bonds)
        # E depends on positions through d = x[neighbor] − x[center] (+ shift)
        forces = gradient.new_zeros((3, n_atoms)).index_add(1, center, gradient).index_add(1, neighbor, -gradient)
        virial = d.T @ gradient.T
        return energy, forces.T.contiguous(), virial"""),
        "    ",
    )
    return header + "\n\n" + "\n\n\n".join(helpers) + "\n\n\n" + compute + "\n"


@lru_cache(maxsize=32)
def _compiled(source: str, optimize: bool) -> Callable:
    import torch

    namespace: dict = {}
    exec(compile(source, "<evopot kernel>", "exec"), namespace)  # our own generated code, from safely parsed formulas
    compute = namespace["compute"]
    return torch.compile(compute, dynamic=True) if optimize else compute


def compile_kernel(potential: Potential, optimize: bool = False, moments: bool = True) -> Kernel:
    """Generate and compile the kernel of ``potential``; ``optimize`` wraps it in
    ``torch.compile`` (slow first call); ``moments`` as in :func:`generate_source`."""
    source = generate_source(potential, moments)
    return Kernel(potential, source, _compiled(source, optimize), potential.reach)
