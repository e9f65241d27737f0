"""``evopot export … --format lammps``: choose LAMMPS styles for a potential's terms and
write the files with an ``in.evopot`` snippet holding the exact ``pair_style`` and
``pair_coeff`` lines (units metal).

How terms map:

- pair terms only → ``pair_style table spline N`` (:mod:`~evopot.export.lammps_table`);
- pair + one embedding term → ``pair_style eam/alloy`` (:mod:`~evopot.export.eam_setfl`);
- a Tersoff bond-order term → ``pair_style tersoff`` (:mod:`~evopot.export.lammps_tersoff`),
  with pair terms overlaid as a table;
- a separable three-body term of exact Stillinger–Weber form → ``pair_style sw``
  (:mod:`~evopot.export.lammps_sw`), with the pair terms inside the ``.sw`` file when
  they are of SW form too, else overlaid as a table (``hybrid/overlay table … sw``).

Anything else (a general three-body term, an embedding term with a pair term list that
eam/alloy cannot hold, a hybrid potential) is refused with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from evopot.data.sampling import probe_cell
from evopot.errors import EvopotError
from evopot.export.eam_setfl import write_setfl
from evopot.export.lammps_sw import NotStillingerWeber, sw_parameters, write_sw
from evopot.export.lammps_table import write_pair_tables
from evopot.export.lammps_tersoff import NotTersoff, write_tersoff
from evopot.export.lammps_threebody import AngleGrid, table_forces, threebody_radius, write_threebody_table
from evopot.export.metadata import header_lines
from evopot.model.potential import Potential

DEFAULT_POINTS = 5000
DEFAULT_ANGLE_POINTS = 40
FALLBACK_INNER = 1.0  # Å, when the potential does not record its training data's shortest distance


@dataclass
class LammpsExport:
    """What was written: the folder, file names, the snippet and notes for the user."""

    folder: Path
    files: list[str] = field(default_factory=list)
    snippet: str = ""
    notes: list[str] = field(default_factory=list)
    styles: list[str] = field(default_factory=list)
    threebody_error: float | None = None  # eV/Å, measured max force error of a threebody/table


def default_inner(potential: Potential) -> float:
    """80 % of the shortest interatomic distance of the training data when the
    potential records it (``metadata['shortest_distance']``), else 1 Å."""
    shortest = potential.metadata.get("shortest_distance")
    return 0.8 * float(shortest) if shortest else FALLBACK_INNER


def export_lammps(
    potential: Potential,
    folder: str | Path,
    inner: float | None = None,
    points: int = DEFAULT_POINTS,
    angle_points: int = DEFAULT_ANGLE_POINTS,
) -> LammpsExport:
    """Write LAMMPS files for ``potential`` into ``folder`` and return what was written.

    ``inner`` (Å) is the shortest tabulated distance (default :func:`default_inner`);
    ``points`` the number of pair-table rows, ``angle_points`` the N of a threebody/table
    (N distances per bond, 2N angles). Raises :class:`EvopotError` for a potential
    LAMMPS cannot run exactly, saying why."""
    if potential.metadata.get("correction"):
        raise EvopotError(
            "this is a hybrid potential (formula + neural correction); LAMMPS export takes the formula "
            "alone: pass --formula-only"
        )
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    inner = default_inner(potential) if inner is None else float(inner)
    kinds = {t.kind for t in potential.terms}
    out = LammpsExport(folder)
    lines = ["# " + line for line in header_lines(potential, "LAMMPS input lines")]
    lines.append("# include after units metal, atom_style atomic and the box (read_data, with its Masses)")
    lines += type_map_lines(potential.species)
    has_pairs = "pair" in kinds
    if kinds <= {"pair"}:
        lines += [f"pair_style table spline {points}"] + _table(potential, out, inner, points, substyle="")
    elif kinds <= {"pair", "embedding"}:
        rho_max = write_setfl(
            potential, folder / "evopot.eam.alloy", inner, points, header_lines(potential, "eam/alloy setfl")
        )
        out.files.append("evopot.eam.alloy")
        out.styles.append("eam/alloy")
        out.notes.append(
            f"eam/alloy: tables on r in [0, {potential.reach:g}] Å and rho in [0, {rho_max:.6g}], {points} "
            f"points; below {inner:.4g} Å (--inner) the density holds its value and φ becomes a repulsive "
            f"exponential wall matched to it (not the formula: keep atoms farther apart); LAMMPS extrapolates F "
            f"linearly beyond rho's range"
        )
        lines += ["pair_style eam/alloy", f"pair_coeff * * evopot.eam.alloy {' '.join(potential.species)}"]
    elif kinds == {"bondorder"} or kinds == {"pair", "bondorder"}:
        lines += _tersoff(potential, out, inner, points, has_pairs)
    elif kinds <= {"pair", "threebody"}:
        try:
            lines += _stillinger_weber(potential, out, inner, points, has_pairs)
        except NotStillingerWeber as exc:
            out.notes.append(f"no analytic style: {exc}; tabulated for threebody/table")
            lines += _threebody_table(potential, out, inner, angle_points, has_pairs, points)
    else:
        raise EvopotError(f"no LAMMPS style combines terms of kinds {sorted(kinds)}")
    lines += _reference_energy_lines(potential)
    out.snippet = "\n".join(lines) + "\n"
    (folder / "in.evopot").write_text(out.snippet)
    out.files.append("in.evopot")
    (folder / "NOTES.txt").write_text("\n".join(out.notes) + "\n")
    out.files.append("NOTES.txt")
    return out


def _table(potential: Potential, out: LammpsExport, inner: float, points: int, substyle: str) -> list[str]:
    """Write evopot.table; return its pair_coeff lines (naming ``substyle`` inside a hybrid)."""
    sections = write_pair_tables(
        potential, out.folder / "evopot.table", inner, points, header_lines(potential, "pair_style table")
    )
    out.files.append("evopot.table")
    out.styles.append("table")
    out.notes.append(
        f"evopot.table starts at {inner:.4g} Å: LAMMPS stops with 'Pair distance < table inner cutoff' if "
        f"two atoms come closer"
    )
    return [
        f"pair_coeff {_types(potential, s.species)} {substyle}evopot.table {s.keyword} {s.cutoff:.12g}"
        for s in sections
    ]


def _stillinger_weber(potential: Potential, out: LammpsExport, inner: float, points: int, has_pairs: bool) -> list[str]:
    """Write evopot.sw (and evopot.table for non-SW pair terms); return the input lines.
    Raises :class:`NotStillingerWeber` when the three-body term is not of SW form."""
    params, pair_included = sw_parameters(potential)
    write_sw(potential, out.folder / "evopot.sw", params, header_lines(potential, "pair_style sw"))
    out.files.append("evopot.sw")
    out.styles.append("sw")
    overlay = has_pairs and not pair_included
    if overlay:
        out.notes.append(
            "the pair terms are not of SW form: they are tabulated and overlaid on the SW three-body part (A = 0 "
            "in evopot.sw)"
        )
    return _style_lines(potential, out, inner, points, "sw", "evopot.sw", overlay_pairs=overlay)


def _tersoff(potential: Potential, out: LammpsExport, inner: float, points: int, has_pairs: bool) -> list[str]:
    """Write evopot.tersoff (and evopot.table for pair terms); return the input lines."""
    try:
        write_tersoff(potential, out.folder / "evopot.tersoff", header_lines(potential, "pair_style tersoff"))
    except NotTersoff as exc:
        raise EvopotError(f"no LAMMPS style for this bond-order term: {exc}") from exc
    out.files.append("evopot.tersoff")
    out.styles.append("tersoff")
    return _style_lines(potential, out, inner, points, "tersoff", "evopot.tersoff", overlay_pairs=has_pairs)


def _threebody_table(
    potential: Potential, out: LammpsExport, inner: float, n: int, has_pairs: bool, points: int
) -> list[str]:
    """Write the threebody/table files, measure their force error on probe cells, and
    return the pair_style and pair_coeff lines."""
    grid = AngleGrid(inner, threebody_radius(potential), n)
    out.files += write_threebody_table(
        potential, out.folder, grid, header_lines(potential, f"threebody/table, N = {n}")
    )
    out.styles.append("threebody/table")
    errors = []
    for seed in range(3):
        table, exact = table_forces(
            potential, grid, probe_cell(potential.species, potential.metadata.get("shortest_distance"), seed=seed)
        )
        errors.append(np.abs(table - exact))
    errors = np.concatenate(errors)
    out.threebody_error = float(errors.max())
    out.notes.append(
        f"threebody/table with N = {n} (nearest grid point, no interpolation): three-body force error on 3 "
        f"random probe cells "
        f"max {errors.max():.3g} eV/Å, mean {errors.mean():.3g} eV/Å; it shrinks as 1/N (option --angle-points)"
    )
    return _style_lines(potential, out, inner, points, "threebody/table", "evopot.3b", overlay_pairs=has_pairs)


def _style_lines(
    potential: Potential, out: LammpsExport, inner: float, points: int, style: str, file: str, overlay_pairs: bool
) -> list[str]:
    """The pair_style and pair_coeff lines of a many-body ``style`` reading ``file`` for
    all species, with the pair terms tabulated and overlaid when ``overlay_pairs``."""
    elements = " ".join(potential.species)
    if not overlay_pairs:
        return [f"pair_style {style}", f"pair_coeff * * {file} {elements}"]
    return (
        [f"pair_style hybrid/overlay table spline {points} {style}"]
        + _table(potential, out, inner, points, substyle="table ")
        + [f"pair_coeff * * {style} {file} {elements}"]
    )


#: how far (atomic mass units) a type's mass may be from its element's (Co and Ni differ by 0.24)
MASS_TOLERANCE = 0.1


def type_map_lines(species: tuple[str, ...] | list[str]) -> list[str]:
    """The input lines that state which LAMMPS type is which element (the potential's
    species order) and stop LAMMPS, with a message, when the atoms of a type do not
    have that element's mass: a data file whose types come in another order would
    otherwise run, silently, with the wrong forces."""
    from ase.data import atomic_masses, atomic_numbers

    lines = ["# type map: " + ", ".join(f"type {k + 1} = {s}" for k, s in enumerate(species))]
    lines.append(f"# LAMMPS stops here unless every type's atoms have its element's mass (within {MASS_TOLERANCE})")
    order = " ".join(species)
    for k, s in enumerate(species):
        mass = float(atomic_masses[atomic_numbers[s]])
        group, value, wrong = f"evopot_type_{k + 1}", f"evopot_mass_{k + 1}", f"evopot_wrong_{k + 1}"
        lines += [
            f"group {group} type {k + 1}",
            f'variable {value} equal "mass({group})/(count({group}) + (count({group}) == 0))"',
            f'variable {wrong} equal "count({group}) > 0 && abs(v_{value} - {mass:.6g}) > {MASS_TOLERANCE}"',
            f'if "${{{wrong}}}" then "print \'evopot: ERROR: atoms of type {k + 1} have mass $(v_{value}:%.4f), but '
            f'type {k + 1} of this potential is {s} ({mass:.4f}): number the types {order}\' " "quit 1"',
            f"group {group} delete",
            f"variable {value} delete",
            f"variable {wrong} delete",
        ]
    return lines


def _reference_energy_lines(potential: Potential) -> list[str]:
    """Per-species reference energies are not part of any pair style: the variable
    ``evopot_energy`` adds them to LAMMPS's potential energy, giving evopot's (DFT's) total."""
    lines = ["# evopot_energy = pe + per-species reference energies (eV), comparable to the DFT energies"]
    total = ["pe"]
    for k, s in enumerate(potential.species):
        value = potential.reference_energies.get(s, 0.0)
        if value:
            lines.append(f"group evopot_{s} type {k + 1}")
            total.append(f"({value:.12g})*count(evopot_{s})")
    lines.append(f"variable evopot_energy equal {'+'.join(total)}")
    return lines


def _types(potential: Potential, pair: tuple[str, str]) -> str:
    """LAMMPS type numbers (1-based, species order of the potential) of a species pair."""
    i, j = sorted(potential.species.index(s) + 1 for s in pair)
    return f"{i} {j}"
