"""What every term kind provides, and the helpers the kinds share.

A term kind (pair, three-body, embedding, …) is one :class:`TermKind` object in the
registry of :mod:`evopot.model.terms`. It owns everything about the kind: the variables
its formula is written in, the slots a search fills, its label, which species it acts
on, its energies and exact forces over a NumPy :class:`~evopot.data.geometry.Geometry`,
its per-atom energies in torch over a full neighbour list (:class:`Bonds`: the torch
evaluator, the correction network's inputs), and the source lines of the generated MD
kernel. Every consumer loops over the registry; adding a kind is one module.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, ClassVar, Protocol

import numpy as np
import sympy

from evopot.errors import EvopotError
from evopot.model import compiled
from evopot.model.formula import fold_numbers, round_floats

if TYPE_CHECKING:
    import torch

    from evopot.data.geometry import Geometry
    from evopot.model.cutoff import Cutoff
    from evopot.model.potential import Term
    from evopot.model.terms.codegen import KernelContext


@dataclass(frozen=True)
class Prediction:
    """``energies (n_frames,)`` eV, ``forces (n_atoms, 3)`` eV/Å and, where the
    evaluator gives them, :attr:`virials`. ``virial_parts`` are (sparse scatter,
    slopes) pairs whose products sum to the virials: kept, so that a fit without
    stresses never pays for them."""

    energies: np.ndarray
    forces: np.ndarray
    virial_parts: tuple = ()

    @property
    def virials(self) -> np.ndarray | None:
        """``(n_frames, 6)`` W = ∂E/∂ε in eV (Voigt order xx yy zz yz xz xy), whose ratio
        to the cell's volume is ASE's stress (eV/Å³, positive when tensile); None when
        not available."""
        if not self.virial_parts:
            return None
        return sum(scatter @ slopes for scatter, slopes in self.virial_parts).reshape(-1, 6)


@dataclass(frozen=True)
class Curve:
    """One panel of a term's figure in a report: ``x`` and named ``lines`` (label → y)."""

    title: str
    xlabel: str
    ylabel: str
    x: np.ndarray
    lines: dict[str, np.ndarray]


@dataclass(frozen=True)
class Slot:
    """One expression a search fills: its name, variables, and whether it is linear
    (expanded over sums into least-squares coefficients) or a shape (kept whole)."""

    name: str
    variables: tuple[str, ...]
    linear: bool


@dataclass(frozen=True)
class Bonds:
    """A full neighbour list (every pair in both directions) sorted by ``center``, in
    torch: bond vectors ``d`` (n_bonds, 3) Å from ``center`` to ``neighbor``, their
    lengths ``r``, per-atom ``species`` indices into ``order`` (the species names), and
    ``n_atoms``. Bonds may reach past a term's cutoff: each kind keeps its own. Built
    from a half list of pairs, they also hold each bond's ``pair`` index and the pairs'
    lengths ``pair_r``, so that a function of r is evaluated once per pair
    (:func:`per_bond`)."""

    d: torch.Tensor
    r: torch.Tensor
    center: torch.Tensor
    neighbor: torch.Tensor
    species: torch.Tensor
    n_atoms: int
    order: tuple[str, ...]
    pair: torch.Tensor | None = None
    pair_r: torch.Tensor | None = None

    def index(self, name: str) -> int:
        """The species index of ``name`` (−1, matching no atom, when absent)."""
        return self.order.index(name) if name in self.order else -1


class SlotFunctions(Protocol):
    """The functions filling a term's slots, in torch: a fitted formula's expressions
    (:class:`FormulaSlots`) or the guided engine's networks. ``slots(name, *values)`` is
    slot ``name`` at tensors ``values`` (one per variable of the slot)."""

    def __call__(self, name: str, *values: torch.Tensor) -> torch.Tensor: ...

    def symmetric(self, name: str) -> bool:
        """Whether slot ``name`` is unchanged by swapping its first two variables (a
        three-body V3 then needs no symmetrising)."""
        ...


@dataclass(frozen=True)
class FormulaSlots:
    """A fitted term's expressions as :class:`SlotFunctions` of its kind's general form:
    the linear slot is the term's expression, the shape slot (an embedding's f) its density."""

    term: Term

    def _slot(self, name: str) -> tuple[Slot, sympy.Expr]:
        slot = next(s for s in self.term.spec.slots("general") if s.name == name)
        return slot, self.term.expression if slot.linear else self.term.density

    def __call__(self, name, *values):
        slot, expression = self._slot(name)
        return torch_values(self.term, expression, slot.variables, *values)

    def symmetric(self, name):
        slot, expression = self._slot(name)
        if len(slot.variables) < 2:
            return True
        return swap_symmetric(expression, *(sympy.Symbol(v) for v in slot.variables[:2]))


def swap_symmetric(expression: sympy.Expr, a: sympy.Symbol, b: sympy.Symbol) -> bool:
    """Whether ``expression`` is unchanged by swapping ``a`` and ``b``."""
    swapped = expression.xreplace({a: b, b: a})
    return swapped == expression or sympy.expand(swapped - expression) == 0


class TermKind:
    """The interface of a term kind; see the module docstring. Subclasses set the class
    attributes and implement the methods that raise here."""

    #: the kind's name in configs, search spaces and potential files
    name: ClassVar[str]
    #: the variables of the term's expression, in the order the evaluators pass them
    variables: ClassVar[tuple[str, ...]]
    #: how the expression reads in text and in LaTeX, e.g. "V(r)" and "V(r)"
    label: ClassVar[str]
    latex_label: ClassVar[str]
    #: the number of species a species-specific term names (2: a pair; 3: centre, two neighbours)
    species_count: ClassVar[int | None] = None
    #: forms a search space may give the kind, the first the default
    forms: ClassVar[tuple[str, ...]] = ("general",)
    #: variables of the term's second expression (the embedding's density f(r)), if it has one
    density_variables: ClassVar[tuple[str, ...] | None] = None
    density_label: ClassVar[str] = "f(r)"
    density_latex: ClassVar[str] = "f(r)"

    def slots(self, form: str) -> tuple[Slot, ...]:
        raise NotImplementedError

    def form_constants(self, form: str) -> dict[str, float]:
        """Constants ``form`` adds to every term a search builds, beside its slots' tree
        constants, by name with their starting values: fitted like those, never rounded
        away (the tersoff form's bond-order exponent n)."""
        return {}

    def from_slots(
        self, form: str, linear: sympy.Expr, shape: sympy.Expr | None, constants: tuple[sympy.Symbol, ...] = ()
    ) -> tuple[sympy.Expr, sympy.Expr | None]:
        """The term's (expression, density) from one value of its linear slot, its shape
        slot's expression (``None`` without one) and the symbols of the form's
        :meth:`form_constants`, in their order."""
        return linear, None

    def describe(self, term: Term, digits: int = 6) -> str:
        """One line: the kind, its species and its formula with constants inserted."""
        species = "" if term.species is None else "[" + "-".join(term.species) + "]"
        text = f"{self.name}{species}: {self.label} = {sympy.sstr(sympy.N(term.numeric(), digits))}"
        if term.density is not None:
            text += f", {self.density_label} = {sympy.sstr(sympy.N(term.numeric(term.density), digits))}"
        return text

    def latex(self, term: Term, digits: int = 4) -> list[str]:
        """The term as LaTeX, ``label = formula`` for its expression and (an
        embedding's f) its density, constants to ``digits`` significant figures."""
        lines = [f"{self.latex_label} = {sympy.latex(round_floats(term.numeric(), digits))}"]
        if term.density is not None:
            lines.append(f"{self.density_latex} = {sympy.latex(round_floats(term.numeric(term.density), digits))}")
        return lines

    def check_species(self, species: tuple[str, ...] | None, where: str) -> None:
        """An error naming ``where`` unless ``species`` (or ``None``: all) fits the kind."""
        if species is not None and self.species_count is not None and len(species) != self.species_count:
            raise EvopotError(f"{where}: a {self.name} term names {self.species_count} species, got {list(species)}")

    def inadmissible(self, term: Term) -> str | None:
        """Why a fitted ``term`` cannot be used whatever its fit to the data (the
        reason, for the log), or ``None``: the kind's own physical rule."""
        return None

    def curves(self, term: Term, cutoff: Cutoff, r: np.ndarray, r0: float) -> list[Curve]:
        """What to plot of ``term`` over distances ``r`` (Å; ``r0`` a typical bond
        length) for the report: one :class:`Curve` per panel."""
        raise NotImplementedError

    def prediction(self, term: Term, cutoff: Cutoff, geometry: Geometry) -> Prediction:
        """Energies (n_frames,) eV and exact forces (n_atoms, 3) eV/Å of ``term`` alone
        over ``geometry``, with ``cutoff`` (the term's own or its potential's)."""
        raise NotImplementedError

    def atom_energies(self, term: Term, cutoff: Cutoff, bonds: Bonds) -> torch.Tensor:
        """Atom i's share of ``term``'s energy (n_atoms,) eV, differentiable in
        ``bonds.d``; the shares of all atoms sum to the term's energy."""
        return self.slot_energies("general", FormulaSlots(term), cutoff, term.species, bonds)

    def slot_energies(
        self, form: str, slots: SlotFunctions, cutoff: Cutoff, species: tuple[str, ...] | None, bonds: Bonds
    ) -> torch.Tensor:
        """Atom i's share (n_atoms,) eV of the energy of a term of this kind in ``form``
        whose slots are the functions ``slots``, acting on ``species`` (``None``: all),
        differentiable in ``bonds.d`` and in whatever the slots hold (a network's weights).
        A kind without it has no place in the guided engine's separable network."""
        raise NotImplementedError

    @classmethod
    def has_slot_energies(cls) -> bool:
        """Whether the kind's slots can be arbitrary functions (the guided engine's networks)."""
        return cls.slot_energies is not TermKind.slot_energies

    def operations(self, term: Term, cutoff: Cutoff, geometry: Geometry) -> float:
        """Arithmetic operations per atom to evaluate ``term``'s energy over the
        structures of ``geometry`` (POET's cost objective): each of its expressions'
        :func:`expression_operations` times how often the kind evaluates it per atom
        (once per pair, per angle, per atom, …, within ``cutoff``)."""
        raise NotImplementedError

    def kernel(self, term: Term, cutoff: Cutoff, k: int, context: KernelContext) -> str:
        """Source lines of the MD kernel's ``compute`` for term ``k`` with ``cutoff``
        (the term's own or its potential's); helper functions
        go to ``context``. The lines add to ``energy`` and to ``slope`` (∂E/∂r per bond)
        or ``per_bond`` (rows: ∂E/∂r, then the rest of ∂E/∂d)."""
        raise NotImplementedError


def expression_operations(expression: sympy.Expr) -> int:
    """What evaluating ``expression`` once costs: sympy's count of its operations
    (+, ×, powers, functions; a subtraction or division counts one), plus one for adding
    the value to the energy. The cutoff function and the forces come on top, alike for
    every formula of a kind."""
    return int(sympy.count_ops(expression)) + 1


def angles_per_atom(geometry: Geometry, radius: float, species: tuple[str, ...] | None) -> float:
    """Angles j–i–k per atom of ``geometry`` with both bonds shorter than ``radius``
    (each unordered pair of bonds once): at centres of ``species[0]`` whose two
    neighbours are ``species[1:]`` (either order) when a species-specific three-body
    term names them; at every atom otherwise (or at atoms of ``species[0]`` when the
    term names only the centre)."""
    centres = geometry.atoms_of(None if species is None else species[0])
    if species is None or len(species) < 3:
        n = geometry.neighbour_counts(radius)[centres]
        angles = n * (n - 1) / 2
    elif species[1] == species[2]:
        n = geometry.neighbour_counts(radius, species[1])[centres]
        angles = n * (n - 1) / 2
    else:
        angles = (
            geometry.neighbour_counts(radius, species[1])[centres]
            * geometry.neighbour_counts(radius, species[2])[centres]
        )
    return float(np.sum(angles)) / max(geometry.n_atoms, 1)


def bonds_per_atom(geometry: Geometry, radius: float, species: str | None = None) -> float:
    """Bonds (each pair in both directions) per atom of ``geometry`` shorter than
    ``radius``, counted at centres of ``species`` (None: all)."""
    return float(np.sum(geometry.neighbour_counts(radius)[geometry.atoms_of(species)])) / max(geometry.n_atoms, 1)


@lru_cache(maxsize=4096)
def compile_function(
    expression: sympy.Expr, variables: tuple[str, ...], constant_names: tuple[str, ...], module: str = "numpy"
):
    """The function ``value(*variables, *constants)`` of ``expression`` (NumPy's
    shared with the search's other processes: :mod:`evopot.model.compiled`)."""
    args = [sympy.Symbol(v) for v in variables] + [sympy.Symbol(c) for c in constant_names]
    if module != "numpy":
        # torch's functions take tensors only: exp(-1) must reach torch as a number
        expression = fold_numbers(expression) if module == "torch" else expression
        return sympy.lambdify(args, expression, modules=module, cse=True, docstring_limit=0)

    def make():
        return sympy.lambdify(args, expression, modules="numpy", cse=True, docstring_limit=0)

    return compiled.numpy_function("value", expression, (*variables, *constant_names), make)


@lru_cache(maxsize=4096)
def compile_with_slopes(expression: sympy.Expr, variables: tuple[str, ...], constant_names: tuple[str, ...]):
    """One NumPy function of ``(*variables, *constants)`` returning the value and
    ∂/∂variable for each variable; their common subexpressions are computed once."""
    symbols = [sympy.Symbol(v) for v in variables]
    args = symbols + [sympy.Symbol(c) for c in constant_names]

    def make():
        parts = [expression] + [sympy.diff(expression, s) for s in symbols]
        # no docstring: printing the expressions for it took a third of the compile time
        return sympy.lambdify(args, parts, modules="numpy", cse=True, docstring_limit=0)

    # the other processes of a search (its Dask workers) read it back instead of compiling again
    return compiled.numpy_function("slopes", expression, (*variables, *constant_names), make)


def values_and_slopes(term: Term, expression: sympy.Expr, variables: tuple[str, ...], *arrays):
    """Value and partial derivatives of ``expression`` (one of ``term``'s, with its
    constants) at NumPy ``arrays``, each shaped like them."""
    names = tuple(term.constants)
    function = compile_with_slopes(expression, variables, names)
    zero = 0 * arrays[0]
    with np.errstate(all="ignore"):
        value, *slopes = (part + zero for part in function(*arrays, *[term.constants[n] for n in names]))
    return value, slopes


def torch_values(term: Term, expression: sympy.Expr, variables: tuple[str, ...], *tensors):
    """``expression`` (one of ``term``'s, with its constants) at torch ``tensors``."""
    import torch

    names = tuple(term.constants)
    value = compile_function(expression, variables, names, "torch")
    # constants as tensors: torch.pow refuses two plain numbers, as in (s/r)**12 → pow(s, 12)/pow(r, 12)
    constants = [torch.as_tensor(term.constants[n], dtype=tensors[0].dtype, device=tensors[0].device) for n in names]
    return value(*tensors, *constants) + 0 * tensors[0]


def bond_angles(bonds: Bonds, radius: float):
    """Every angle j–i–k between two bonds shorter than ``radius`` (Å), each once: the
    bond indices (t1, t2), their lengths and cos θ, differentiable in ``bonds.d``."""
    from evopot.data.neighbors import angle_pairs

    t1, t2 = angle_pairs(bonds.center, bonds.r, radius, bonds.n_atoms)
    r1, r2 = bonds.r[t1], bonds.r[t2]
    return t1, t2, r1, r2, ((bonds.d[t1] * bonds.d[t2]).sum(1) / (r1 * r2)).clamp(-1.0, 1.0)


def per_bond(bonds: Bonds, function, keep: torch.Tensor) -> torch.Tensor:
    """``function(r)`` (values of tensors of lengths) at the bonds where ``keep``, 0 at
    the others, which are never evaluated (past a cutoff a formula may be inf). ``keep``
    must not depend on a bond's direction; when the bonds know their pairs the function
    is evaluated once per pair, not twice."""
    if bonds.pair is None:
        chosen = torch_nonzero(keep)
        return bonds.r.new_zeros(len(bonds.r)).index_add(0, chosen, function(bonds.r[chosen]))
    wanted = keep.new_zeros(len(bonds.pair_r)).index_fill(0, bonds.pair[keep], True)
    chosen = torch_nonzero(wanted)
    values = bonds.pair_r.new_zeros(len(bonds.pair_r)).index_add(0, chosen, function(bonds.pair_r[chosen]))
    return values[bonds.pair] * keep


def torch_nonzero(mask: torch.Tensor) -> torch.Tensor:
    """The indices where ``mask`` is true, (n,)."""
    import torch

    return torch.nonzero(mask).squeeze(1)


def inside(bonds: Bonds, cutoff: Cutoff):
    """(mask of bonds shorter than the cutoff radius, r with the others moved inside):
    a formula evaluated past its cutoff could give inf, and inf·0 is NaN."""
    import torch

    near = bonds.r < cutoff.radius
    return near, torch.where(near, bonds.r, torch.full_like(bonds.r, 0.5 * cutoff.radius))
