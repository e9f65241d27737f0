"""Candidates: a formula as the fitter sees it, linear coefficients and nonlinear shape.

A search engine proposes one sympy expression per *slot* of each term of the search
space (pair: V(r); separable three-body: g(cos θ) and h(r); general three-body:
V3(r_ij, r_ik, cos θ); embedding: F(ρ) and f(r)). :func:`decompose` turns them into a
:class:`Candidate`:

- a *linear* slot is expanded over sums, V = Σ_k (constant factor)·b_k; the constant
  factors become free coefficients a_k, fitted exactly by least squares, since energies
  and forces are linear in them;
- a *shape* slot (h, f) keeps its form, without a constant overall factor for h
  (that is already in g's coefficients), nor for f when every basis of F is a power
  of ρ: F(s·ρ) = Σ_k a_k s^p_k ρ^p_k is then F with other coefficients, so f's scale
  would be a flat direction of the fit, free to wander to 1e18 with F's coefficient
  to 1e-21 and print an unreadable formula;
- inside every basis and shape, each largest sub-expression of constants alone
  (``k1 + 1``, ``2*k3/k4``) becomes one free nonlinear parameter ``b<n>``, so accidental
  ties between a tree's constants do not constrain the fit.

The fitted formula, term by term, is what gets reported, so complexity is counted on it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property

import sympy

from evopot.model.cutoff import Cutoff
from evopot.model.formula import formula_string, parse_formula, tidy
from evopot.model.potential import Term, symbol_names
from evopot.model.terms import Slot, TermKind, term_kind

R, RIJ, RIK, COS, RHO = sympy.symbols("r rij rik costheta rho")


@dataclass(frozen=True)
class TermShape:
    """One term of a search space: its kind, form, species and own cutoff."""

    kind: str
    form: str = "general"
    species: tuple[str, ...] | None = None
    cutoff: Cutoff | None = None

    @property
    def spec(self) -> TermKind:
        return term_kind(self.kind)

    @property
    def slots(self) -> tuple[Slot, ...]:
        """The expressions a search fills for this term: its kind's slots in its form."""
        return self.spec.slots(self.form)

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "form": self.form,
            "species": list(self.species) if self.species else None,
            "cutoff": self.cutoff.to_dict() if self.cutoff else None,
        }

    @classmethod
    def from_dict(cls, data: dict) -> TermShape:
        return cls(
            data["kind"],
            data["form"],
            tuple(data["species"]) if data["species"] else None,
            Cutoff(**data["cutoff"]) if data["cutoff"] else None,
        )


@dataclass(frozen=True)
class Component:
    """One term of a candidate: linear ``bases`` and, for h and f, a ``shape``; the
    parameter symbols of the constants its form adds (:meth:`TermKind.form_constants`:
    the tersoff form's bond-order exponent) in ``form_parameters``."""

    shape_of: TermShape
    bases: tuple[sympy.Expr, ...]
    shape: sympy.Expr | None = None
    form_parameters: tuple[sympy.Symbol, ...] = ()

    def expression(self, basis: sympy.Expr) -> sympy.Expr:
        """The term expression a single basis stands for (g·h(r_ij)·h(r_ik) for separable
        three-body terms, the basis itself otherwise): the kind decides."""
        return self.shape_of.spec.from_slots(self.shape_of.form, basis, self.shape, self.form_parameters)[0]

    def term(self, expression: sympy.Expr, constants: dict[str, float]) -> Term:
        """A :class:`Term` for ``expression`` (linear part already combined)."""
        return self.shaped(expression).term(constants)

    def shaped(self, expression: sympy.Expr) -> _TermTemplate:
        """What a :class:`Term` of ``expression`` is but its constants' values (the
        kind's density of it and the constants it uses: sympy work, done once per
        basis, not at every evaluation of a fit)."""
        s = self.shape_of
        density = s.spec.from_slots(s.form, expression, self.shape, self.form_parameters)[1]
        used = symbol_names(expression) | (symbol_names(density) if density is not None else frozenset())
        return _TermTemplate(s, expression, density, used)


@dataclass(frozen=True)
class _TermTemplate:
    """A :class:`Term` waiting for its constants' values (:meth:`Component.shaped`)."""

    shape_of: TermShape
    expression: sympy.Expr
    density: sympy.Expr | None
    used: frozenset[str]

    def term(self, constants: dict[str, float]) -> Term:
        s = self.shape_of
        mine = {k: v for k, v in constants.items() if k in self.used}
        return Term(s.kind, self.expression, mine, s.species, self.density, s.cutoff)


@dataclass(frozen=True)
class Candidate:
    """Components with Σ_k a_k·(basis k) each; ``parameters`` are the nonlinear θ,
    ``initial`` their start and ``sources`` the tree constant each came from
    (``"<tree>:<node>"``, or ``""`` for a combination of constants)."""

    components: tuple[Component, ...]
    parameters: tuple[sympy.Symbol, ...] = ()
    initial: tuple[float, ...] = ()
    sources: tuple[str, ...] = ()

    @cached_property
    def bases(self) -> tuple[tuple[int, sympy.Expr], ...]:
        """Every linear basis as (component index, basis), in coefficient order."""
        return tuple((k, b) for k, c in enumerate(self.components) for b in c.bases)

    def _combined(self, coefficients):
        """Per component, (component, Σ_k a_k·b_k) with ``coefficients`` as the a_k."""
        index = 0
        for c in self.components:
            yield c, sympy.Add(*[coefficients[index + k] * b for k, b in enumerate(c.bases)])
            index += len(c.bases)

    def describe(self, linear=None, nonlinear=None) -> str:
        """The candidate slot by slot, e.g. ``V(r) = a0/r**b0; g(costheta) = …; h(r) = …``,
        coefficients named ``a<k>`` or given values."""
        a = sympy.symbols(f"a0:{len(self.bases)}") if linear is None else [sympy.Float(v, 6) for v in linear]
        values = {} if nonlinear is None else {p: sympy.Float(v, 6) for p, v in zip(self.parameters, nonlinear)}
        parts = []
        for c, combined in self._combined(a):
            slots = c.shape_of.slots
            parts.append(f"{slots[0].name}({', '.join(slots[0].variables)}) = {sympy.sstr(combined.xreplace(values))}")
            if c.shape is not None:
                parts.append(
                    f"{slots[1].name}({', '.join(slots[1].variables)}) = {sympy.sstr(c.shape.xreplace(values))}"
                )
        return "; ".join(parts)

    @property
    def complexity(self) -> int:
        """Nodes of the fitted formula: every component's Σ a_k·b_k plus its shape once."""
        return sum(
            complexity(combined) + (complexity(c.shape) if c.shape is not None else 0)
            for c, combined in self._combined(sympy.symbols(f"a0:{len(self.bases)}"))
        )

    def terms(self, linear, nonlinear) -> list[Term]:
        """The fitted terms, constants named ``a<k>`` (linear) and ``b<k>`` (nonlinear)."""
        constants = {f"a{k}": float(v) for k, v in enumerate(linear)}
        constants.update({p.name: float(v) for p, v in zip(self.parameters, nonlinear)})
        return [
            c.term(c.expression(combined), constants)
            for c, combined in self._combined(sympy.symbols(f"a0:{len(self.bases)}"))
            if combined != 0
        ]

    def basis_terms(self, nonlinear, only=None) -> list[Term]:
        """One term per linear basis, coefficient 1: the design-matrix columns (those
        with index in ``only``, when given)."""
        constants = {p.name: float(v) for p, v in zip(self.parameters, nonlinear)}
        return [t.term(constants) for i, t in enumerate(self._basis_templates) if only is None or i in only]

    @cached_property
    def _basis_templates(self) -> tuple[_TermTemplate, ...]:
        return tuple(self.components[k].shaped(self.components[k].expression(b)) for k, b in self.bases)

    @cached_property
    def basis_parameters(self) -> tuple[frozenset[int], ...]:
        """For each linear basis, the indices of the nonlinear parameters its column
        depends on (its own and those of its component's shape)."""
        index = {p.name: j for j, p in enumerate(self.parameters)}
        out = []
        for k, b in self.bases:
            component = self.components[k]
            shape = component.shape
            names = symbol_names(b) | (symbol_names(shape) if shape is not None else frozenset())
            names |= {p.name for p in component.form_parameters}
            out.append(frozenset(index[n] for n in names if n in index))
        return tuple(out)

    def without(self, index: int, values) -> Candidate:
        """This candidate less linear basis ``index``, parameters started at ``values``
        (parameters no longer used go too)."""
        target, basis = self.bases[index]
        components = tuple(
            Component(
                c.shape_of, tuple(b for b in c.bases if not (k == target and b == basis)), c.shape, c.form_parameters
            )
            for k, c in enumerate(self.components)
        )
        return self._with_components(components, values)

    def with_constant(self, index: int, value: float, values, first_order: bool = False) -> Candidate | None:
        """This candidate with parameter ``index`` replaced by the number ``value`` in
        every basis and shape, the others started at ``values``: bases that vanish go,
        numeric factors of bases and shapes are dropped (the coefficients and g carry
        the scale), parameters no longer used go too. ``value`` ±inf keeps the leading
        term as the constant grows: (r − 8·10³³)·e → e. ``first_order`` keeps, beside
        each basis b at ``value``, its slope ∂b/∂constant there as a basis of its own:
        a fit that made C·(exp(ε·r⁻⁴)·e − e) out of a huge C and a tiny ε, C·ε·r⁻⁴·e in
        the limit, becomes the bases e and r⁻⁴·e. None when the substitution makes a
        term undefined or removes one entirely."""
        symbol = self.parameters[index]
        if any(symbol in c.form_parameters for c in self.components):
            return None  # a form's own constant (the bond-order exponent) is the form: never rounded away
        components = []
        for c in self.components:
            bases = []
            for b in c.bases:
                pieces = [b, sympy.diff(b, symbol)] if first_order and symbol in b.free_symbols else [b]
                for piece in pieces:
                    new = _substituted(piece, symbol, value)
                    if new is None or _undefined(new):
                        return None
                    factor, rest = new.as_coeff_Mul()
                    if factor != 0 and rest not in bases:
                        bases.append(rest)
            shape = c.shape
            if shape is not None:
                shape = _substituted(shape, symbol, value)
                if shape is None or _undefined(shape) or shape == 0:
                    return None
                shape = shape.as_coeff_Mul()[1] if c.shape_of.kind == "threebody" else shape
            if c.bases and not bases:
                return None
            components.append(Component(c.shape_of, tuple(bases), shape, c.form_parameters))
        return self._with_components(tuple(components), values)

    def _with_components(self, components: tuple[Component, ...], values) -> Candidate:
        """A candidate of ``components`` keeping only the parameters they still use,
        started at their entries of ``values`` (a shape counts while its term has bases)."""
        # a term left without bases contributes nothing: its shape goes too
        components = tuple(_scale_free(c) if c.bases else Component(c.shape_of, (), None) for c in components)
        used = set()
        for c in components:
            for e in list(c.bases) + ([c.shape] if c.shape is not None else []):
                used |= e.free_symbols
            used |= set(c.form_parameters)
        keep = [k for k, p in enumerate(self.parameters) if p in used]
        return Candidate(
            components,
            tuple(self.parameters[k] for k in keep),
            tuple(float(values[k]) for k in keep),
            tuple(self.sources[k] for k in keep),
        )

    def with_initial(self, values) -> Candidate:
        return Candidate(self.components, self.parameters, tuple(float(v) for v in values), self.sources)

    @cached_property
    def structure(self) -> str:
        """The formula's shape, whatever its constants."""
        parts = []
        for c in self.components:
            part = (c.shape_of.kind, c.shape_of.form, c.bases, c.shape)
            # a form's own constants only where there are any: other terms' structures read as before
            parts.append(part + (c.form_parameters,) if c.form_parameters else part)
        return sympy.srepr(tuple(parts))

    @property
    def key(self) -> str:
        """Identity for caching fits: the structure plus the exact starting θ."""
        return self.structure + repr(self.initial)

    def to_dict(self) -> dict:
        return {
            "components": [
                {
                    "term": c.shape_of.to_dict(),
                    "bases": [formula_string(b) for b in c.bases],
                    "shape": formula_string(c.shape) if c.shape is not None else None,
                    "form_parameters": [p.name for p in c.form_parameters],
                }
                for c in self.components
            ],
            "parameters": [p.name for p in self.parameters],
            "initial": list(self.initial),
            "sources": list(self.sources),
        }

    @classmethod
    def from_dict(cls, data: dict) -> Candidate:
        components = []
        for c in data["components"]:
            shape_of = TermShape.from_dict(c["term"])
            names = [v for slot in shape_of.slots for v in slot.variables] + list(data["parameters"])
            bases = tuple(parse_formula(b, names, where="checkpoint basis") for b in c["bases"])
            # (older checkpoints kept the shape of a term left without bases)
            shape = (
                parse_formula(c["shape"], names, where="checkpoint shape") if c["shape"] is not None and bases else None
            )
            form_parameters = tuple(sympy.Symbol(n) for n in c.get("form_parameters", ()))
            components.append(Component(shape_of, bases, shape, form_parameters))
        return cls(
            tuple(components),
            tuple(sympy.Symbol(n) for n in data["parameters"]),
            tuple(data["initial"]),
            tuple(data["sources"]),
        )


def complexity(expr: sympy.Expr) -> int:
    """Number of nodes of the expression tree (symbols, numbers and operations)."""
    return 1 + sum(complexity(arg) for arg in expr.args)


@dataclass
class _Parameters:
    symbols: dict[sympy.Expr, sympy.Symbol] = field(default_factory=dict)
    starts: dict[sympy.Symbol, float] = field(default_factory=dict)  # of the forms' own constants

    def form_constant(self, name: str, start: float) -> sympy.Symbol:
        """A parameter for a constant a term's form adds (no tree holds it: its source
        is "", it starts at ``start``)."""
        marker = sympy.Symbol(f"{name}_form{len(self.symbols)}")
        self.starts[marker] = start
        self.symbols[marker] = sympy.Symbol(f"b{len(self.symbols)}")
        return self.symbols[marker]

    def free(self, expr: sympy.Expr, variables: set) -> sympy.Expr:
        """Replace each largest constant sub-expression holding a tree constant by a
        parameter. In a sum or product that contains a variable, the constant operands
        together form one sub-expression (``2*k1*r`` → ``b0*r``)."""
        if not (expr.free_symbols & variables):
            if not expr.free_symbols:
                return expr
            if expr not in self.symbols:
                self.symbols[expr] = sympy.Symbol(f"b{len(self.symbols)}")
            return self.symbols[expr]
        if not expr.args:
            return expr
        if isinstance(expr, (sympy.Add, sympy.Mul)):
            constant = [a for a in expr.args if not (a.free_symbols & variables)]
            varying = [self.free(a, variables) for a in expr.args if a.free_symbols & variables]
            if any(a.free_symbols for a in constant):
                return expr.func(self.free(expr.func(*constant), variables), *varying)
            return expr.func(*constant, *varying)
        return expr.func(*[self.free(arg, variables) for arg in expr.args])


def _undefined(expr: sympy.Expr) -> bool:
    return expr.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo)


def _substituted(expr: sympy.Expr, symbol: sympy.Symbol, value: float) -> sympy.Expr | None:
    """``expr`` with ``symbol`` = ``value``; for ±inf the coefficient of the leading
    power as ``symbol`` grows ((r + c)·e → e, r²/(r + c)³ → r²), None where there is no
    such power (exp(c·r))."""
    if symbol not in expr.free_symbols:
        return expr
    if not math.isinf(value):
        return expr.xreplace({symbol: sympy.Integer(value) if float(value).is_integer() else sympy.Float(value)})
    small = sympy.Dummy("small", positive=True)
    try:
        coefficient, _ = expr.xreplace({symbol: math.copysign(1, value) / small}).leadterm(small)
    except (ValueError, NotImplementedError, TypeError, sympy.PoleError):
        return None
    return None if coefficient.has(small) else coefficient


def decompose(parts: list[list[sympy.Expr]], shapes: list[TermShape], values: dict[sympy.Symbol, float]) -> Candidate:
    """Build a candidate from one expression per slot of each term (``parts[t][s]``),
    tree constants as symbols with starting ``values`` (symbol names ``k<tree>_<node>``)."""
    params = _Parameters()
    components = []
    for expressions, term in zip(parts, shapes):
        bases, shape = (), None
        for expr, slot in zip(expressions, term.slots):
            variables = {sympy.Symbol(v) for v in slot.variables}
            if slot.linear:
                bases = _linear_bases(expr, variables, params)
            else:
                shape = _shape(
                    expr, variables, params, drop_factor=term.kind == "threebody" or _density_scale_free(term, bases)
                )
        constants = term.spec.form_constants(term.form) if bases else {}
        form_parameters = tuple(params.form_constant(name, start) for name, start in constants.items())
        components.append(Component(term, bases, shape, form_parameters))
    symbols = list(params.symbols)
    values = {**values, **params.starts}
    initial = tuple(_real_value(sub, values) for sub in symbols)
    sources = tuple(_source(sub) for sub in symbols)
    return Candidate(tuple(components), tuple(params.symbols.values()), initial, sources)


def _tidy(expr: sympy.Expr, variables: set) -> sympy.Expr:
    for v in sorted(variables, key=str):
        expr = tidy(expr, v)
    return expr


def _linear_bases(expr, variables, params) -> tuple[sympy.Expr, ...]:
    expanded = sympy.expand(expr, multinomial=False, log=False)
    bases: list[sympy.Expr] = []
    for term in sympy.Add.make_args(expanded):
        _, basis = term.as_independent(*variables, as_Add=False)
        if basis != 0 and basis not in bases:
            bases.append(basis)
    freed = [params.free(_tidy(b, variables), variables) for b in bases]
    return tuple(dict.fromkeys(freed))


def _power_of(expr: sympy.Expr, variable: sympy.Symbol) -> bool:
    """``expr`` is ``variable``**p for a p free of it (1, ρ, √ρ, ρ^b0)."""
    base, exponent = expr.as_base_exp()
    return expr == 1 or (base == variable and variable not in exponent.free_symbols)


def _density_scale_free(term: TermShape, bases) -> bool:
    """An embedding whose F ``bases`` are all powers of ρ: F(s·ρ) is then F with other
    coefficients, so a constant factor of f would be a flat direction of the fit."""
    return term.kind == "embedding" and all(_power_of(b, RHO) for b in bases)


def _scale_free(component: Component) -> Component:
    """``component`` without a constant factor in f once its F is made of powers of ρ
    (as :func:`decompose` builds it): dropping F's one other basis must not leave
    f's scale to wander."""
    if component.shape is None or not _density_scale_free(component.shape_of, component.bases):
        return component
    shape = component.shape.as_independent(R, as_Add=False)[1]
    return Component(component.shape_of, component.bases, shape, component.form_parameters)


def _shape(expr, variables, params, drop_factor: bool) -> sympy.Expr:
    expr = _tidy(expr, variables)
    if drop_factor:
        _, expr = expr.as_independent(*variables, as_Add=False)
    return params.free(expr, variables)


def _real_value(expr: sympy.Expr, values: dict) -> float:
    """Value of a constant sub-expression in double precision; NaN when it is complex,
    overflows or is undefined (the fit then fails and the candidate gets the worst
    fitness). Not sympy's evalf: exp(exp(exp(5))) would run for minutes at arbitrary
    precision."""
    try:
        # evaluated node by node in floats: substituting sympy Floats first would let
        # sympy evaluate 2.5**(3.1**9) eagerly at arbitrary precision
        value = _float(expr, values)
    except (TypeError, ValueError, OverflowError, ZeroDivisionError, KeyError):
        return float("nan")
    return value if isinstance(value, float) and math.isfinite(value) else float("nan")


_FLOAT_FUNCTIONS = {
    sympy.exp: math.exp,
    sympy.log: math.log,
    sympy.sin: math.sin,
    sympy.cos: math.cos,
    sympy.tanh: math.tanh,
    sympy.Abs: abs,
    sympy.erf: math.erf,
}


def _float(expr: sympy.Expr, values: dict) -> float:
    if expr.is_Symbol:
        return float(values[expr])
    if expr.is_Number or expr in (sympy.pi, sympy.E):
        return float(expr)
    args = [_float(a, values) for a in expr.args]
    if isinstance(expr, sympy.Add):
        return math.fsum(args)
    if isinstance(expr, sympy.Mul):
        return math.prod(args)
    if isinstance(expr, sympy.Pow):
        value = args[0] ** args[1]
        if isinstance(value, complex):
            raise ValueError("complex power")
        return float(value)
    function = _FLOAT_FUNCTIONS.get(expr.func)
    if function is None:
        raise TypeError(f"cannot evaluate {expr.func} in double precision")
    return float(function(*args))


def _source(expr: sympy.Expr) -> str:
    if isinstance(expr, sympy.Symbol) and expr.name.startswith("k"):
        tree, node = expr.name[1:].split("_")
        return f"{tree}:{node}"
    return ""
