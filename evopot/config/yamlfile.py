"""Reading the YAML files a user writes (configs, search spaces), with one-line errors
that name the file and the field."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ValidationError

from evopot.errors import EvopotError

#: deepest nesting of lists and mappings a config may have (real ones have 4)
MAX_DEPTH = 50


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader that refuses a key given twice in one mapping (PyYAML keeps
    the last silently: a typo'd second ``seed:`` would win without a word)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
            except TypeError:  # an unhashable key: the base class says so
                break
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (line {key_node.start_mark.line + 1})", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_text(path: Path, missing: str) -> str:
    """The text of the UTF-8 file ``path``; one-line errors for a missing file, a
    folder, a binary file or another encoding."""
    if path.is_dir():
        raise EvopotError(f"{path}: is a directory; give a file")
    if not path.is_file():
        raise EvopotError(f"{path}: {missing}")
    raw = path.read_bytes()
    if b"\x00" in raw:
        raise EvopotError(f"{path}: not a text file (it holds NUL bytes); give a YAML file")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EvopotError(f"{path}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from None


def _depth(text: str) -> int:
    """An upper bound of the nesting of ``text``'s flow collections ([…], {…}), counted
    without parsing, so that a hostile file cannot exhaust the parser's stack (block
    nesting needs a line per level; the parser's RecursionError is caught for it)."""
    deepest = depth = 0
    for char in text:
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth = max(depth - 1, 0)
    return deepest


def read_mapping(path: Path, missing: str, shape: str) -> dict:
    """The YAML mapping in ``path``. ``missing`` ends the message for an absent file,
    ``shape`` says what the mapping should hold."""
    text = read_text(path, missing)
    if not text.strip():
        raise EvopotError(f"{path}: the file is empty; {shape}")
    if _depth(text) > MAX_DEPTH:
        raise EvopotError(f"{path}: nested too deeply (more than {MAX_DEPTH} levels); is it the right file?")
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as exc:
        raise EvopotError(f"{path}: malformed YAML: {exc}".replace("\n", " ")) from None
    except (ValueError, TypeError, RecursionError) as exc:  # a tag whose value does not fit: !!int abc
        raise EvopotError(f"{path}: malformed YAML: {type(exc).__name__}: {exc}".replace("\n", " ")) from None
    if not isinstance(data, dict):
        raise EvopotError(f"{path}: {shape}")
    return data


def validate(model: type[BaseModel], data: dict, path: Path):
    """``model.model_validate(data)``, its first error as one line naming ``path``."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise EvopotError(f"{path}: {describe_validation_error(exc)}") from None


def describe_validation_error(exc: ValidationError) -> str:
    """The first pydantic error as 'field.path: message' on one line."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "(top level)"
    message = first["msg"].removeprefix("Value error, ")
    extra = ""
    if first["type"] == "extra_forbidden":
        message = "unknown field"
        extra = "; check its spelling against the documentation"
    line = f"field '{where}': {message}{extra}" + (
        f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    )
    return " ".join(line.split())
