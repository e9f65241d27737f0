"""Compiled NumPy functions of formulas, shared by the processes of one search.

Differentiating a basis and generating its code (sympy's ``diff``, ``cse`` and
``lambdify``) costs about 10 ms, and every process that fits the basis pays it again:
on a Dask cluster the workers fit the children of the same parents, and the search's
own process prunes what they fitted. With a folder in use (:func:`shared_folder`: the
search keeps one in its run directory while it runs on several workers), the source of
each function generated is written there once, under a hash of what it computes, and
every other process that sees the folder (the workers of a ``LocalCluster``, those of a
cluster sharing the run directory's file system) reads it back instead: an ``exec`` of a
few lines. A process that cannot see the folder compiles as before; a damaged file is
compiled again and replaced.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import sympy

#: part of every key: a change of what is written, or of sympy's code, is a new function
_FORMAT = f"evopot-compiled-1|sympy {sympy.__version__}"
#: the folder this process shares compiled sources through, or None
_folder: Path | None = None
#: what use_folder was last given (a task calls it with the same folder again and again)
_given: object = None
#: the globals of a function lambdify makes with NumPy (each function read back gets a copy)
_namespace: dict | None = None


def use_folder(folder: str | os.PathLike | None) -> None:
    """Share compiled sources through ``folder`` from now on (None, or a folder this
    process cannot see: compile alone)."""
    global _folder, _given
    if folder == _given:
        return
    path = None if folder is None else Path(folder)
    _folder, _given = (path if path is not None and path.is_dir() else None), folder


@contextlib.contextmanager
def shared_folder(folder: Path) -> Iterator[Path]:
    """``folder`` made and used while the block runs, then removed (a search killed
    inside the block leaves it for its ``--resume``)."""
    folder.mkdir(parents=True, exist_ok=True)
    use_folder(folder)
    try:
        yield folder
    finally:
        use_folder(None)
        shutil.rmtree(folder, ignore_errors=True)


def numpy_function(kind: str, expression: sympy.Expr, names: tuple[str, ...], make: Callable[[], Callable]) -> Callable:
    """``make()``, a NumPy function lambdify generated for ``expression`` of the
    arguments ``names`` (``kind`` tells apart what different makers generate from the
    same expression), read from the shared folder when another process wrote it."""
    folder = _folder
    if folder is None:
        return make()
    text = f"{_FORMAT}|{kind}|{sympy.srepr(expression)}|{','.join(names)}"
    path = folder / f"{hashlib.blake2b(text.encode(), digest_size=16).hexdigest()}.py"
    try:
        source = path.read_text()
    except OSError:
        source = None
    if source is not None:
        try:
            return _function(source, str(path))
        except Exception:  # a damaged file: compiled again below, and replaced
            pass
    function = make()
    try:
        source = inspect.getsource(function)
        spare = path.with_name(f"{path.name}.{os.getpid()}")
        spare.write_text(source)
        os.replace(spare, path)  # whole or not at all, for the process reading it now
    except (OSError, TypeError):
        pass  # a full disk, or a folder gone: this process has its function anyway
    return function


def _function(source: str, filename: str) -> Callable:
    global _namespace
    if _namespace is None:
        _namespace = dict(sympy.lambdify([], 0, modules="numpy").__globals__)
    namespace = dict(_namespace)
    exec(compile(source, filename, "exec"), namespace)
    return namespace["_lambdifygenerated"]
