"""``evopot show RUN``: the Pareto front of a finished run as a table (or LaTeX, or
JSON), or one member term by term; ``evopot show FILE``: one potential file, formula
or hybrid (the formula, then the correction's size and share)."""

from __future__ import annotations

import json
from pathlib import Path

import sympy

from evopot.model.potential import Potential
from evopot.search.rundir import RunDirectory, member_potential

#: front.csv's crystal-property columns and their headings
PROPERTIES = {"a0": "a0", "B": "B", "C11": "C11", "C12": "C12", "C44": "C44", "C44_unrelaxed": "C44⁰"}


def front_table(run_path: str | Path) -> str:
    """The front of ``run_path`` as an aligned plain-text table, simplest member first."""
    run = RunDirectory(Path(run_path))
    rows = run.read_front()
    splits = [s for s in ("train", "validation", "test") if rows[0].get(f"{s}_force_mae") is not None]
    crystal = [k for k in PROPERTIES if any(row.get(k) is not None for row in rows)]
    stressed = [s for s in splits if rows[0].get(f"{s}_stress_mae") is not None]
    costed = all(row.get("operations_per_atom") is not None for row in rows)  # runs before it have none
    header = ["#", "nodes"] + (["ops/atom"] if costed else [])
    header += [f"{s[:5]} F-MAE" for s in splits] + [f"{s[:5]} E-MAE" for s in splits]
    header += [f"{s[:5]} σ-MAE" for s in stressed]
    header += [PROPERTIES[k] for k in crystal] + (["penalty"] if crystal else []) + ["formula"]
    lines = [header]
    for row in rows:
        cells = [f"{int(row['member'])}", f"{int(row['complexity'])}"]
        cells += [f"{row['operations_per_atom']:.0f}"] if costed else []
        cells += [f"{row[f'{s}_force_mae']:.4f}" for s in splits]
        cells += [f"{row[f'{s}_energy_mae']:.1f}" for s in splits]
        cells += [f"{row[f'{s}_stress_mae']:.3f}" for s in stressed]
        cells += ["—" if row.get(k) is None else f"{row[k]:.4g}" for k in crystal]
        cells += [f"{row.get('property_penalty') or 0.0:.3g}"] if crystal else []
        cells.append(row["formula"])
        lines.append(cells)
    widths = [max(len(line[k]) for line in lines) for k in range(len(header) - 1)]
    units = "forces eV/Å, energies meV/atom" + (", stresses GPa" if stressed else "")
    units += "; ops/atom: operations per atom of the energy on the training structures" if costed else ""
    out = [f"Pareto front of {run.path}  ({units})"]
    for line in lines:
        out.append("  ".join(cell.rjust(w) for cell, w in zip(line[:-1], widths)) + "  " + line[-1])
    summary = _summary(run)
    if summary:
        baselines = summary.get("baselines", {})
        zero = ", ".join(f"{s} {v['force_mae']:.4f}" for s, v in baselines.items())
        out.append(f"zero-force baseline F-MAE: {zero}")
        reference = summary.get("properties_reference")
        if reference:
            values = ", ".join(f"{PROPERTIES[k.replace(' ', '_')]} {v:.4g}" for k, v in reference["values"].items())
            out.append(
                f"crystal properties (a0 Å, others GPa; C44⁰ clamped ions) against {reference['element']}: {values}; "
                f"weight {reference['weight']:g} ({reference['source']})"
            )
    hybrids = sorted(run.path.glob("corrections/*/hybrid.json"))
    if hybrids:
        out.append("hybrids (evopot show FILE): " + ", ".join(str(p) for p in hybrids))
    return "\n".join(out)


def _summary(run: RunDirectory) -> dict | None:
    try:
        return json.loads(run.summary.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return None


def member_text(run_path: str | Path, member: int | None = None) -> str:
    """One front member term by term: its variables, formula, constants and where each
    constant came from."""
    number, potential = member_potential(run_path, member)
    return terms_text(potential, f"member {number} of {run_path}")


def terms_text(potential: Potential, title: str) -> str:
    """The terms of ``potential`` with their variables, constants and their origins."""
    out = [
        f"{title}: cutoff {potential.cutoff.kind} {potential.cutoff.onset:g}–{potential.cutoff.radius:g} Å, "
        f"species {', '.join(potential.species)}"
    ]
    for k, term in enumerate(potential.terms):
        species = "all species" if term.species is None else "-".join(term.species)
        out.append(f"term {k}: {term.kind} ({species})")
        out.append(f"  {term.spec.label} = {sympy.sstr(term.expression)}")
        if term.density is not None:
            out.append(f"  {term.spec.density_label} = {sympy.sstr(term.density)}")
        for name, value in term.constants.items():
            out.append(f"    {name} = {value:.10g}   ({_origin(name)})")
    if potential.reference_energies:
        out.append(
            "reference energies (eV/atom): "
            + ", ".join(f"{s} {v:.6g}" for s, v in potential.reference_energies.items())
        )
    return "\n".join(out)


def model_text(path: str | Path, as_json: bool = False) -> str:
    """A potential file: its terms and, for a hybrid, the correction's architecture,
    size, share of the energy and forces, and errors next to the formula's."""
    from evopot.neural.hybrid import load_model

    model = load_model(path)
    if as_json:
        return json.dumps(
            model.metadata.get("correction", {}) | {"potential": str(path), "formula": model.potential.formula()},
            indent=2,
        )
    if model.correction is None:
        return terms_text(model.potential, str(path))
    out = [terms_text(model.potential, f"{path} (hybrid: formula + neural correction)")]
    c, info = model.correction, model.correction.info
    d = c.descriptor
    symmetry = getattr(d, "symmetry", d)
    moments = len(symmetry.moment_invariants)
    if c.interaction is None:
        widths = "×".join(str(h) for h in c.hidden)
        networks = f"{len(c.networks)} Behler–Parrinello network(s), {widths} {c.activation} per species"
    else:
        shape = c.interaction
        networks = (
            f"{len(c.networks)} interaction network(s): {shape['rounds']} rounds of {shape['width']}-wide messages "
            f"({shape['radial']} radial functions, {shape['channels']} angular channels), {c.activation}"
        )
    out.append(
        f"correction: {networks}, "
        f"{c.parameters} parameters in all; {d.n_features} inputs: {symmetry.n_features - moments} symmetry "
        f"functions (radial to {d.cutoff:g} Å, "
        f"angular to {d.angular_cutoff:g} Å)"
        + (f", {moments} moment-tensor invariants ({len(symmetry.moments)} channel(s) per species)" if moments else "")
        + (f" and the energy per atom of each of the formula's {d.n_terms} term(s)" if hasattr(d, "n_terms") else "")
    )
    share = info.get("share") or {}
    if share:
        out.append(
            f"  size on the training frames: {share['correction_energy_rms'] * 1000:.1f} meV/atom RMS = "
            f"{share['energy_share']:.1%} of the formula's energy "
            f"({share['formula_energy_rms'] * 1000:.0f} meV/atom RMS, reference energies aside); forces "
            f"{share['correction_force_rms']:.3f} eV/Å RMS "
            f"= {share['force_share']:.1%} of the formula's"
        )
    for split, e in (info.get("errors") or {}).items():
        out.append(
            f"  {split:<10} force MAE {e['formula']['force_mae']:.4f} → {e['hybrid']['force_mae']:.4f} eV/Å, "
            f"energy MAE {e['formula']['energy_mae']:.1f} → {e['hybrid']['energy_mae']:.1f} meV/atom (formula → hybrid)"
        )
    if info.get("uncertainty_threshold") is not None:
        out.append(f"  uncertainty threshold (95th percentile, validation): {info['uncertainty_threshold']:.4f} eV/Å")
    return "\n".join(out)


def _origin(name: str) -> str:
    if name.startswith("a") and name[1:].isdigit():
        return "linear coefficient, solved exactly by least squares"
    if name.startswith("b") and name[1:].isdigit():
        return "nonlinear constant: a random constant of the search tree, refined by least squares"
    return "given in the potential file"


def front_latex(run_path: str | Path) -> str:
    """Each front member's terms as LaTeX (constants to 4 significant figures)."""
    run = RunDirectory(Path(run_path))
    out = []
    for row in run.read_front():
        potential = Potential.load(run.path / row["potential"])
        parts = [", \\quad ".join(term.spec.latex(term)) for term in potential.terms]
        out.append(f"% member {int(row['member'])}, {int(row['complexity'])} nodes\n" + " \\\\\n".join(parts))
    return "\n".join(out)


def front_json(run_path: str | Path) -> str:
    """The front rows (numbers as in front.csv) with each member's potential, as JSON."""
    run = RunDirectory(Path(run_path))
    rows = run.read_front()
    for row in rows:
        row["member"], row["complexity"] = int(row["member"]), int(row["complexity"])
        row["potential_json"] = Potential.load(run.path / row["potential"]).to_dict()
    return json.dumps({"run": str(run.path), "front": rows}, indent=2)
