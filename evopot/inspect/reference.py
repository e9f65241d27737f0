"""The config and search-space reference (``docs/config.md``), generated from the
pydantic schemas so it cannot drift from what evopot accepts.

    python -m evopot.inspect.reference > docs/config.md     (make docs)
"""

from __future__ import annotations

import types
import typing

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from evopot.config.generation import GenerationConfig, LearnConfig
from evopot.config.schema import SearchConfig
from evopot.model.terms import KINDS
from evopot.search.engines.primitives import OPERATORS
from evopot.search.engines.registry import ENGINES
from evopot.search.engines.space import SearchSpace


def _models(annotation) -> list[type[BaseModel]]:
    """The pydantic models inside a field's annotation (``X | None``, ``list[X]``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models(arg)]


def _type(annotation) -> str:
    """A field's type in words (no ``|``: the tables use it)."""
    if annotation is None or annotation is type(None):
        return "null"
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return " or ".join(f"`{a}`" for a in args)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type(a) for a in args)
    if origin is list:
        return f"list of {_type(args[0])}"
    if origin is tuple:
        return f"list of {len(args)} {_type(args[0])}s"
    if origin is dict:
        return f"mapping of {_type(args[0])} to {_type(args[1])}"
    if origin is typing.Annotated:
        return _type(args[0])
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "section"
    names = {"str": "text", "int": "integer", "float": "number", "bool": "true or false", "Path": "path"}
    return names.get(getattr(annotation, "__name__", ""), str(annotation))


def _default(field) -> str:
    if field.default is PydanticUndefined and field.default_factory is None:
        return "**required**"
    value = field.default_factory() if field.default_factory is not None else field.default
    if isinstance(value, BaseModel):
        return ""
    if value is None:
        return "`null`"
    if isinstance(value, list) and value and isinstance(value[0], BaseModel):
        return f"{len(value)} entry" if len(value) == 1 else f"{len(value)} entries"
    return f"`{value}`"


def _rows(model: type[BaseModel], prefix: str = "") -> list[str]:
    rows = []
    for name, field in model.model_fields.items():
        dotted = f"{prefix}{name}"
        limits = [f"{k} {getattr(m, k)}" for m in field.metadata for k in ("ge", "gt", "le", "lt") if hasattr(m, k)]
        extra = f" ({', '.join(limits)})" if limits else ""
        description = (field.description or "").replace("|", "\\|").replace("\n", " ")
        annotation = field.annotation
        rows.append(f"| `{dotted}` | {_type(annotation)} | {_default(field)} | {description}{extra} |")
        is_list = typing.get_origin(annotation) is list
        models = _models(annotation)
        for sub in models:
            # one of several kinds (samplers, calculators): named by the field that tells them apart
            tag = _tag(sub) if len(models) > 1 else ""
            rows.extend(_rows(sub, f"{dotted}[{tag}]." if is_list or tag else f"{dotted}."))
    return rows


def _tag(model: type[BaseModel]) -> str:
    """``kind=crystal`` for a model whose field ``kind`` is ``Literal["crystal"]``."""
    for name, field in model.model_fields.items():
        if typing.get_origin(field.annotation) is typing.Literal and len(typing.get_args(field.annotation)) == 1:
            return f"{name}={typing.get_args(field.annotation)[0]}"
    return ""


def _section(title: str, model: type[BaseModel], intro: str) -> str:
    head = ["| field | type | default | meaning |", "|---|---|---|---|"]
    doc = " ".join((model.__doc__ or "").split())
    return "\n".join([f"## {title}", "", intro, "", doc, "", *head, *_rows(model), ""])


def reference() -> str:
    """The whole reference as Markdown."""
    operators = ", ".join(f"`{k}`" for k in sorted(OPERATORS))
    return "\n".join(
        [
            "# Config and search-space reference",
            "",
            "Generated from evopot's pydantic schemas by `make docs` (`python -m evopot.inspect.reference`); "
            "a test fails when this file and the schemas differ. Every mistake in these files is one error "
            "line naming the file and the field, and `evopot` exits with status 2.",
            "",
            _section(
                "Search config (`evopot search CONFIG`)",
                SearchConfig,
                "One YAML file is the experiment. Relative paths are read from the config file's folder. "
                f"Registered engines (`engine.name`): {', '.join(f'`{k}`' for k in ENGINES)}.",
            ),
            _section(
                "Search space (`search_space:`)",
                SearchSpace,
                "A YAML file naming the terms, operators, constants and size limits of a search "
                "(`search_spaces/*.yaml` ship with evopot; see docs/search-spaces.md). "
                f"Term kinds (`terms[].kind`): {', '.join(f'`{k}`' for k in KINDS)}. Operators: {operators}.",
            ),
            _section(
                "Data config (`evopot data CONFIG`)",
                GenerationConfig,
                "Samplers (`sampling[]`, told apart by `kind`) make structures; the `reference` calculator (told "
                "apart by `calculator`) labels them. Relative paths are read from the config file's folder.",
            ),
            _section(
                "Learn config (`evopot learn CONFIG`)",
                LearnConfig,
                "The active-learning loop: `start` and `test` frames (a data file, or samplers as in a data "
                "config), a search config for each iteration's search and correction, where to explore, when to stop.",
            ),
        ]
    )


if __name__ == "__main__":
    print(reference(), end="")
