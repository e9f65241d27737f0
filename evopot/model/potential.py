"""Terms and potentials, and their JSON form.

A :class:`Term` is one sympy expression of named variables (a pair term: ``r`` in Å)
with named constants, applied to the species it names. A :class:`Potential` is a set of
terms, a smooth cutoff and per-species reference energies:

    E = Σ_pairs Σ_terms V(r_ij) · fc(r_ij) + Σ_atoms e_ref(species_i)

Saved as JSON holding formula strings and constants; loaded with the safe parser of
:mod:`evopot.model.formula` (never ``eval``, never pickle).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import sympy

from evopot.errors import EvopotError, brief
from evopot.model.cutoff import Cutoff
from evopot.model.formula import formula_string, parse_formula
from evopot.model.terms import TermKind, term_kind
from evopot.version import __version__

FORMAT = "evopot-potential"
FORMAT_VERSION = 1


@lru_cache(maxsize=8192)
def symbol_names(expression: sympy.Expr) -> frozenset[str]:
    """Names of the free symbols of ``expression`` (cached: a search builds the same
    terms with new constants many times)."""
    return frozenset(s.name for s in expression.free_symbols)


@dataclass(frozen=True)
class Term:
    """One term: ``expression`` in the variables of its kind (:mod:`evopot.model.terms`)
    and the names in ``constants``.

    ``species`` is the tuple of species the term acts on (its kind says how many and in
    which order), or ``None`` for all species; ``density`` is the second expression of
    kinds that have one (embedding: f(r)); ``cutoff`` the term's own, else the potential's.
    """

    kind: str
    expression: sympy.Expr
    constants: dict[str, float] = field(default_factory=dict)
    species: tuple[str, ...] | None = None
    density: sympy.Expr | None = None
    cutoff: Cutoff | None = None

    def __post_init__(self):
        spec = term_kind(self.kind)
        allowed = set(self.variables) | set(self.constants)
        unknown = symbol_names(self.expression) - allowed
        if unknown:
            raise EvopotError(
                f"{self.kind} term {self.expression}: symbols {sorted(unknown)} are neither variables "
                f"{list(self.variables)} nor constants"
            )
        if (spec.density_variables is not None) != (self.density is not None):
            needs = f"needs its {spec.density_label} as 'density'" if spec.density_variables else "takes no density"
            raise EvopotError(f"{self.kind} term: a {self.kind} term {needs}")
        if self.density is not None:
            unknown = symbol_names(self.density) - set(spec.density_variables) - set(self.constants)
            if unknown:
                raise EvopotError(
                    f"{self.kind} term density {self.density}: symbols {sorted(unknown)} are neither "
                    f"{list(spec.density_variables)} nor constants"
                )
        if self.species is not None:  # the message prints the expression: only when there is something to check
            spec.check_species(self.species, f"{self.kind} term {self.expression}")

    @property
    def spec(self) -> TermKind:
        """The kind's implementation: evaluation, kernel source, labels, species rule."""
        return term_kind(self.kind)

    @property
    def variables(self) -> tuple[str, ...]:
        return self.spec.variables

    def numeric(self, expression: sympy.Expr | None = None) -> sympy.Expr:
        """The expression (or ``expression``, e.g. the density) with its constants
        substituted by their values."""
        expression = self.expression if expression is None else expression
        return expression.subs({sympy.Symbol(k): sympy.Float(v) for k, v in self.constants.items()})

    def to_dict(self) -> dict:
        out = {
            "kind": self.kind,
            "species": list(self.species) if self.species is not None else None,
            "variables": list(self.variables),
            "expression": formula_string(self.expression),
            "constants": {k: float(v) for k, v in self.constants.items()},
        }
        if self.density is not None:
            out["density"] = formula_string(self.density)
        if self.cutoff is not None:
            out["cutoff"] = self.cutoff.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: dict, where: str = "term") -> Term:
        if not isinstance(data, dict):
            raise EvopotError(f"{where}: expected an object with kind, expression and constants")
        kind = data.get("kind")
        spec = term_kind(kind, f"{where}.kind")
        constants = data.get("constants") or {}
        if not isinstance(constants, dict) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in constants.values()
        ):
            raise EvopotError(f"{where}.constants: expected a mapping of names to numbers")
        expr = parse_formula(
            data.get("expression"), list(spec.variables) + list(constants), where=f"{where}.expression"
        )
        species = data.get("species")
        if species is not None:
            if not isinstance(species, list) or not all(isinstance(s, str) for s in species):
                raise EvopotError(f"{where}.species: expected a list of element symbols or null")
            species = tuple(species)
        density = None
        if data.get("density") is not None:
            if spec.density_variables is None:
                raise EvopotError(f"{where}.density: a {kind} term has no density; remove the field")
            density = parse_formula(
                data["density"], list(spec.density_variables) + list(constants), where=f"{where}.density"
            )
        cutoff = None
        if data.get("cutoff") is not None:
            try:
                cutoff = Cutoff(**data["cutoff"])
            except TypeError as exc:
                raise EvopotError(f"{where}.cutoff: expected radius, onset and kind ({exc})") from exc
        return cls(kind, expr, {k: float(v) for k, v in constants.items()}, species, density, cutoff)


class Model(Protocol):
    """What every consumer of a potential (MD, calculator, validate, show, predict)
    reads: a formula :class:`Potential` alone, or a formula with a neural correction
    (:class:`evopot.neural.hybrid.Hybrid`). Nothing else asks which one it has."""

    @property
    def potential(self) -> Potential:
        """The formula."""

    @property
    def correction(self):
        """The neural correction added to the formula, or ``None``."""

    @property
    def species(self) -> tuple[str, ...]: ...

    @property
    def metadata(self) -> dict: ...


@dataclass(frozen=True)
class Potential:
    """Terms, cutoff, species and per-species reference energies (eV per atom)."""

    terms: tuple[Term, ...]
    cutoff: Cutoff
    species: tuple[str, ...]
    reference_energies: dict[str, float] = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "evopot_version": __version__,
            "units": {"energy": "eV", "distance": "Angstrom", "force": "eV/Angstrom"},
            "species": list(self.species),
            "cutoff": self.cutoff.to_dict(),
            "reference_energies": dict(self.reference_energies),
            "terms": [t.to_dict() for t in self.terms],
            "metadata": self.metadata,
        }

    def operations_per_atom(self, geometry) -> float:
        """Arithmetic operations per atom to evaluate the energy over the structures of
        ``geometry`` (a :class:`~evopot.data.geometry.Geometry`): the sum of each term's
        :meth:`~evopot.model.terms.base.TermKind.operations`, POET's cost objective."""
        return float(sum(t.spec.operations(t, t.cutoff or self.cutoff, geometry) for t in self.terms))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> Potential:
        path = Path(path)
        if not path.is_file():
            raise EvopotError(f"{path}: potential file not found")
        if path.is_dir():
            raise EvopotError(f"{path}: is a directory; give a potential JSON file (or a run directory)")
        try:
            data = json.loads(path.read_bytes().decode("utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
            detail = brief(exc) or type(exc).__name__
            raise EvopotError(f"{path}: not a valid JSON potential ({detail})") from None
        return cls.from_dict(data, where=str(path))

    @classmethod
    def from_dict(cls, data: dict, where: str = "potential") -> Potential:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise EvopotError(f'{where}: not an evopot potential (expected "format": "{FORMAT}")')
        if data.get("format_version") != FORMAT_VERSION:
            raise EvopotError(
                f"{where}: format_version {data.get('format_version')} is not supported by this evopot "
                f"(reads {FORMAT_VERSION})"
            )
        try:
            cutoff = Cutoff(**data["cutoff"])
            species = tuple(data["species"])
            terms = tuple(Term.from_dict(t, where=f"{where}: terms[{k}]") for k, t in enumerate(data["terms"]))
            reference = {str(k): float(v) for k, v in (data.get("reference_energies") or {}).items()}
        except (KeyError, TypeError, ValueError) as exc:
            raise EvopotError(f"{where}: missing or malformed field ({exc}); expected species, cutoff, terms") from exc
        for k, term in enumerate(terms):
            stranger = sorted(set(term.species or ()) - set(species))
            if stranger:
                raise EvopotError(
                    f"{where}: terms[{k}].species names {stranger}, which are not among the potential's species "
                    f"{list(species)}; add them to 'species' or fix the term"
                )
        return cls(terms, cutoff, species, reference, data.get("metadata") or {})

    def formula(self) -> str:
        """A readable one-line formula of all terms with their constant values."""

        return "; ".join(t.spec.describe(t) for t in self.terms)

    @property
    def potential(self) -> Potential:
        """The formula part of this model: a formula is its own (see :class:`Model`)."""
        return self

    @property
    def correction(self) -> None:
        """A formula alone has no neural correction (see :class:`Model`)."""
        return None

    def cutoff_of(self, term: Term) -> Cutoff:
        """The term's own cutoff, or the potential's."""
        return term.cutoff or self.cutoff

    @property
    def reach(self) -> float:
        """The neighbour radius of the potential (Å): the largest cutoff radius of the
        potential and its terms, how far every neighbour list must look. The one
        function that decides it (evaluator, torch evaluator, kernel, calculator,
        fitting, reports, exports)."""
        return max([self.cutoff.radius] + [self.cutoff_of(t).radius for t in self.terms])
