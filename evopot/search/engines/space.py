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
from evopot.errors import EvopotError
from evopot.model.cutoff import Cutoff
from evopot.model.terms import KINDS
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
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class CutoffSpec(_Strict):
    radius: float = Field(gt=0, description="the term's own cutoff radius in Å, at most the config's cutoff.radius")
    onset: float = Field(0.0, ge=0, description="where its switch starts, Å")
    function: str = Field("quintic", description="the switching function's profile")


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

    kind: str = Field("pair", description="a registered term kind (evopot.model.terms.KINDS)")
    form: str = Field("general", description="the kind's search form, e.g. general or separable for threebody")
    species: list[str] | None = Field(
        None,
        description="the species the term acts on: a pair, centre and two neighbours (threebody), or the embedded "
        "species; default all",
    )
    cutoff: CutoffSpec | None = Field(None, description="the term's own cutoff (default the config's)")
    operators: dict[str, list[str]] = Field(
        default_factory=dict, description="per slot (V, V3, g, h, F, f), operators replacing the space's list"
    )
    envelope: Literal["none", "vanish"] = Field(
        "none", description="vanish: each slot of one distance r is the tree times exp(s/(r − rc)), s fitted"
    )

    @field_validator("operators")
    @classmethod
    def _known(cls, operators):
        for names in operators.values():
            _check_operators(names)
        return operators

    @field_validator("kind")
    @classmethod
    def _registered(cls, kind):
        if kind not in KINDS:
            raise ValueError(f"term kind '{kind}' is unknown; known kinds: {sorted(KINDS)}")
        return kind

    @model_validator(mode="after")
    def _slots(self):
        spec = KINDS[self.kind]
        if self.form not in spec.forms:
            raise ValueError(f"a {self.kind} term has form {' or '.join(spec.forms)}, not '{self.form}'")
        if self.species is not None and spec.species_count not in (None, len(self.species)):
            raise ValueError(f"a {self.kind} term names {spec.species_count} species, got {self.species}")
        slots = {slot.name for slot in spec.slots(self.form)}
        unknown = sorted(set(self.operators) - slots)
        if unknown:
            raise ValueError(
                f"operators for slot(s) {unknown}, but a {self.kind} term ({self.form}) has slots {sorted(slots)}"
            )
        if self.envelope != "none" and not any(s.variables == ("r",) for s in spec.slots(self.form)):
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
    low: float = Field(-3.0, description="lowest random constant of a new tree")
    high: float = Field(3.0, description="highest random constant of a new tree")

    @model_validator(mode="after")
    def _ordered(self):
        if not self.low < self.high:
            raise ValueError(f"constants: low ({self.low}) must be below high ({self.high})")
        return self


class LimitSpec(_Strict):
    max_height: int = Field(7, ge=1, le=17, description="deepest tree a slot may grow")
    max_nodes: int = Field(30, ge=1, le=200, description="most nodes of a slot's tree")
    init_min_height: int = Field(1, ge=0, description="shallowest random tree of the first population")
    init_max_height: int = Field(4, ge=1, description="deepest random tree of the first population")

    @model_validator(mode="after")
    def _ordered(self):
        if not self.init_min_height <= self.init_max_height <= self.max_height:
            raise ValueError(
                f"need init_min_height ≤ init_max_height ≤ max_height, got {self.init_min_height}, "
                f"{self.init_max_height}, {self.max_height}"
            )
        return self


class SearchSpace(_Strict):
    """Validated contents of a search-space YAML file."""

    name: str = Field(description="the space's name, shown in logs")
    description: str = Field("", description="what the space is for")
    terms: list[TermSpec] = Field(
        default_factory=lambda: [TermSpec()], min_length=1, description="the terms of every formula (default one pair)"
    )
    operators: list[str] = Field(min_length=1, description="operators of every slot's trees (see the list above)")
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


def check_space_fits(space: SearchSpace, radius: float, species: tuple[str, ...], where: str) -> None:
    """An error naming ``where`` (the config) unless every term of ``space`` keeps its
    own cutoff within the config's ``radius`` (Å) and names only species of the data."""
    for k, term in enumerate(space.terms):
        if term.cutoff is not None and term.cutoff.radius > radius:
            raise EvopotError(
                f"{where}: search space {space.name}: terms[{k}].cutoff.radius {term.cutoff.radius} Å is beyond "
                f"cutoff.radius {radius} Å; a term's cutoff is at most the config's: raise cutoff.radius"
            )
        unknown = sorted(set(term.species or ()) - set(species))
        if unknown:
            raise EvopotError(
                f"{where}: search space {space.name}: terms[{k}].species names {unknown}, not in the data "
                f"(species {list(species)})"
            )


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
        "a search space must be a mapping with name, terms and operators",
    )
    return validate(SearchSpace, data, path)
