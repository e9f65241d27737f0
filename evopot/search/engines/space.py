"""Search spaces: which terms, operators, constants and size limits a search uses.

A search space is a YAML file (``search_spaces/*.yaml``) validated here. Its operators
are names from :data:`evopot.search.engines.primitives.OPERATORS`; the search engine turns them
into its primitive set.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from evopot.config.yamlfile import read_mapping, validate
from evopot.model.cutoff import Cutoff
from evopot.search.candidate import TermShape
from evopot.search.engines.primitives import OPERATORS


def _shipped_folder() -> Path:
    """The ``search_spaces/`` folder shipped with evopot: the repository's own in a
    source checkout or editable install, ``<prefix>/share/evopot/search_spaces`` in a
    regular install."""
    import sys

    for folder in (
        Path(__file__).resolve().parents[3] / "search_spaces",
        Path(sys.prefix) / "share" / "evopot" / "search_spaces",
    ):
        if folder.is_dir():
            return folder
    return Path(__file__).resolve().parents[3] / "search_spaces"


#: Folder of the search spaces shipped with evopot.
SHIPPED = _shipped_folder()


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CutoffSpec(_Strict):
    radius: float = Field(gt=0)
    onset: float = Field(0.0, ge=0)
    function: str = "quintic"


class TermSpec(_Strict):
    """One term of the search space.

    ``kind`` pair searches V(r); threebody searches V3(rij, rik, costheta) (``form:
    general``) or g(costheta)·h(rij)·h(rik) (``form: separable``); embedding searches
    F(rho) and the density f(r). ``species`` restricts the term (a species pair, or
    centre + two neighbours for threebody, or the centre species for embedding);
    ``cutoff`` gives the term its own cutoff (at most the config's radius);
    ``operators`` maps a slot name (V, V3, g, h, F, f) to its own operator list.
    ``envelope: vanish`` multiplies each slot of one distance r (V, h, f) by
    exp(s/(r − rc)) with a stiffness s fitted with the formula's other constants:
    Stillinger–Weber's own smooth vanishing at the cutoff radius rc, so trees only
    search what multiplies it."""

    kind: Literal["pair", "threebody", "embedding"] = "pair"
    form: Literal["general", "separable"] = "general"
    species: list[str] | None = None
    cutoff: CutoffSpec | None = None
    operators: dict[str, list[str]] = Field(default_factory=dict)
    envelope: Literal["none", "vanish"] = "none"

    @field_validator("operators")
    @classmethod
    def _known(cls, operators):
        for names in operators.values():
            _check_operators(names)
        return operators

    @model_validator(mode="after")
    def _slots(self):
        slots = {"pair": {"V"}, "embedding": {"F", "f"}}.get(self.kind) or (
            {"g", "h"} if self.form == "separable" else {"V3"}
        )
        unknown = sorted(set(self.operators) - slots)
        if unknown:
            raise ValueError(
                f"operators for slot(s) {unknown}, but a {self.kind} term ({self.form}) has slots {sorted(slots)}"
            )
        if self.envelope != "none" and slots == {"V3"}:
            raise ValueError(
                f"envelope: {self.envelope} multiplies slots of one distance r (V, h, f); a general "
                f"three-body term has none: use form: separable, or envelope: none"
            )
        return self


def _check_operators(operators: list[str]) -> None:
    unknown = [op for op in operators if op not in OPERATORS]
    if unknown:
        raise ValueError(f"unknown operator(s) {unknown}; known operators: {sorted(OPERATORS)}")
    if len(set(operators)) != len(operators):
        raise ValueError("an operator is listed twice")


class ConstantSpec(_Strict):
    low: float = -3.0
    high: float = 3.0

    @model_validator(mode="after")
    def _ordered(self):
        if not self.low < self.high:
            raise ValueError(f"constants: low ({self.low}) must be below high ({self.high})")
        return self


class LimitSpec(_Strict):
    max_height: int = Field(7, ge=1, le=17)
    max_nodes: int = Field(30, ge=1, le=200)
    init_min_height: int = Field(1, ge=0)
    init_max_height: int = Field(4, ge=1)


class SearchSpace(_Strict):
    """Validated contents of a search-space YAML file."""

    name: str
    description: str = ""
    terms: list[TermSpec] = Field(default_factory=lambda: [TermSpec()], min_length=1)
    operators: list[str] = Field(min_length=1)
    constants: ConstantSpec = ConstantSpec()
    limits: LimitSpec = LimitSpec()

    @field_validator("operators")
    @classmethod
    def _known_operators(cls, operators):
        _check_operators(operators)
        if not any(OPERATORS[op].arity == 2 for op in operators):
            raise ValueError("at least one binary operator (add, mul, …) is needed to combine terms")
        return operators


def term_shapes(space: SearchSpace) -> list[TermShape]:
    """The search space's terms as the candidates carry them."""
    shapes = []
    for term in space.terms:
        cutoff = Cutoff(term.cutoff.radius, term.cutoff.onset, term.cutoff.function) if term.cutoff else None
        shapes.append(TermShape(term.kind, term.form, tuple(term.species) if term.species else None, cutoff))
    return shapes


def resolve_search_space_path(name_or_path: str, relative_to: Path | None = None) -> Path:
    """A search space named like ``pair`` is a shipped file; anything else is a path,
    read relative to ``relative_to`` (the config file's folder) when not absolute."""
    candidate = Path(name_or_path)
    if candidate.suffix not in (".yaml", ".yml") and (SHIPPED / f"{name_or_path}.yaml").is_file():
        return SHIPPED / f"{name_or_path}.yaml"
    if not candidate.is_absolute() and relative_to is not None:
        candidate = relative_to / candidate
    return candidate


def load_search_space(path: str | Path) -> SearchSpace:
    """Read and validate a search-space YAML file; errors name the file and field."""
    path = Path(path)
    shipped = sorted(p.stem for p in SHIPPED.glob("*.yaml"))
    data = read_mapping(
        path,
        f"search space not found; give a path or one of the shipped names {shipped}",
        "a search space must be a YAML mapping with name, terms and operators",
    )
    return validate(SearchSpace, data, path)
