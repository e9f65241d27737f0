"""Export formats behind one interface, chosen by ``evopot export --format NAME``.

An :class:`Exporter` writes a potential's files into a folder and says what it wrote;
where the target code can be run here it also checks the files by running it
(``--check``). ``EXPORTERS`` maps each format name to its exporter; a new format is an
exporter registered with :func:`register_exporter` (docs/extending.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from evopot.errors import EvopotError

if TYPE_CHECKING:
    from evopot.model.potential import Potential


@dataclass(frozen=True)
class ExportOptions:
    """``inner`` shortest tabulated distance (Å; ``None``: the exporter's default),
    ``points`` rows per table, ``angle_points`` N of a three-body table."""

    inner: float | None = None
    points: int = 5000
    angle_points: int = 40


@dataclass
class Written:
    """What an export wrote: the ``folder``, its ``files``, the ``styles`` it chose, how
    to use them (``usage``), ``notes`` for the user, and a measured ``error`` (eV/Å)
    where the format approximates the potential (a three-body table)."""

    folder: Path
    files: list[str] = field(default_factory=list)
    styles: list[str] = field(default_factory=list)
    usage: str = ""
    notes: list[str] = field(default_factory=list)
    error: float | None = None


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    summary: str


class Exporter(Protocol):
    #: the target code, as the user reads it ("LAMMPS")
    target: str

    def write(self, potential: Potential, folder: Path, options: ExportOptions) -> Written:
        """Write ``potential``'s files into ``folder``; an :class:`EvopotError` with the
        reason when this format cannot hold it."""

    def check(self, potential: Potential, written: Written) -> CheckResult:
        """Run the target code on the files and compare with evopot's own evaluation."""


class Lammps:
    """``--format lammps``: tables, sw, eam/alloy and threebody/table with an ``in.evopot``
    snippet (:mod:`evopot.export.lammps`)."""

    target = "LAMMPS"

    def write(self, potential, folder, options):
        from evopot.export.lammps import export_lammps

        result = export_lammps(potential, folder, options.inner, options.points, options.angle_points)
        usage = "in your LAMMPS input, after units metal and read_data:\n  include " + str(result.folder / "in.evopot")
        return Written(result.folder, result.files, result.styles, usage, result.notes, result.threebody_error)

    def check(self, potential, written):
        from evopot.export.check import FORCE_TOLERANCE, compare_with_lammps

        report = compare_with_lammps(potential, written.folder, tolerance=max(FORCE_TOLERANCE, written.error or 0.0))
        return CheckResult(report.ok, report.summary())


EXPORTERS: dict[str, Exporter] = {"lammps": Lammps()}


def register_exporter(name: str, exporter: Exporter) -> None:
    """Make ``evopot export --format NAME`` write with ``exporter``."""
    EXPORTERS[name] = exporter


def exporter(name: str) -> Exporter:
    """The exporter registered as ``name``; an error listing the formats otherwise."""
    if name not in EXPORTERS:
        raise EvopotError(f"--format {name}: unknown export format; known formats: {sorted(EXPORTERS)}")
    return EXPORTERS[name]
