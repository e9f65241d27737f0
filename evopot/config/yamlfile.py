"""Reading the YAML files a user writes (configs, search spaces), with one-line errors
that name the file and the field."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ValidationError

from evopot.errors import EvopotError


def read_mapping(path: Path, missing: str, shape: str) -> dict:
    """The YAML mapping in ``path``. ``missing`` ends the message for an absent file,
    ``shape`` says what the mapping should hold."""
    if not path.is_file():
        raise EvopotError(f"{path}: {missing}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise EvopotError(f"{path}: malformed YAML: {exc}".replace("\n", " ")) from exc
    if not isinstance(data, dict):
        raise EvopotError(f"{path}: {shape}")
    return data


def validate(model: type[BaseModel], data: dict, path: Path):
    """``model.model_validate(data)``, its first error as one line naming ``path``."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise EvopotError(f"{path}: {describe_validation_error(exc)}") from exc


def describe_validation_error(exc: ValidationError) -> str:
    """The first pydantic error as 'field.path: message' on one line."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "(top level)"
    message = first["msg"].removeprefix("Value error, ")
    extra = ""
    if first["type"] == "extra_forbidden":
        message = "unknown field"
        extra = "; check its spelling against the documentation"
    return f"field '{where}': {message}{extra}" + (
        f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    )
