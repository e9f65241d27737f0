"""``evopot report RUN``: a self-contained HTML page with PNG figures of a finished run.

The page (``report.html``) and its figures sit in one folder and reference each other
by relative paths: it opens in a browser with no network. Figures (matplotlib, Agg):
the Pareto front, the chosen member's formula rendered by mathtext, each of its terms
(V(r) with the cutoff region; for three-body terms g(cos θ) and h(r), or slices of
V3; F(ρ) and f(r)), force parity per config_type and the error distribution on the
test split (validation when there is no test split), and the search history.
"""

from __future__ import annotations

import html
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from evopot.errors import EvopotError
from evopot.model.evaluate import evaluate, potential_geometry
from evopot.model.potential import Potential
from evopot.search.rundir import RunDirectory, member_potential, read_csv

SPLIT_COLUMNS = [("train", "train"), ("validation", "valid."), ("test", "test")]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def formula_image(potential: Potential, path: Path) -> bool:
    """The member's terms as LaTeX through matplotlib's mathtext; False when mathtext
    cannot draw them (the page then shows the plain formula only)."""
    plt = _plt()
    lines = [f"${line}$" for term in potential.terms for line in term.spec.latex(term)]
    figure = plt.figure(figsize=(9, 0.55 * len(lines) + 0.3))
    for k, line in enumerate(lines):
        figure.text(0.01, 1 - (k + 0.8) / (len(lines) + 0.3), line.replace("costheta", r"\cos\theta"), fontsize=13)
    try:
        figure.savefig(path, dpi=110)
        return True
    except (ValueError, RuntimeError):  # mathtext cannot parse every LaTeX sympy writes
        return False
    finally:
        plt.close(figure)


def term_figures(potential: Potential, folder: Path) -> list[Path]:
    """One PNG per term of ``potential``."""
    plt = _plt()
    shortest = float(potential.metadata.get("shortest_distance") or 0.5 * potential.cutoff.radius)
    out = []
    for k, term in enumerate(potential.terms):
        cutoff = potential.cutoff_of(term)
        r = np.linspace(0.9 * shortest, cutoff.radius, 400)
        panels = term.spec.curves(term, cutoff, r, float(r[np.argmin(np.abs(r - 1.1 * shortest))]))
        figure, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.4), squeeze=False)
        axes = axes[0]
        for axis, panel in zip(axes, panels):
            for label, y in panel.lines.items():
                axis.plot(panel.x, y, label=label or None)
            if any(panel.lines):
                axis.legend(fontsize=8)
            axis.set_xlabel(panel.xlabel)
            axis.set_ylabel(panel.ylabel)
            axis.set_title(panel.title if axis is not axes[0] else f"{panel.title} {k}")
        for axis in axes:
            if axis.get_xlabel().startswith("r"):
                if cutoff.onset > 0 and cutoff.kind != "none":
                    axis.axvspan(cutoff.onset, cutoff.radius, color="0.9", label="cutoff switching")
                axis.axvline(cutoff.radius, color="0.5", lw=0.8)
                axis.axhline(0, color="0.7", lw=0.6)
        figure.tight_layout()
        path = folder / f"term_{k}.png"
        figure.savefig(path, dpi=110)
        plt.close(figure)
        out.append(path)
    return out


def write_report(run_path: str | Path, member: int | None = None, output: str | Path | None = None) -> Path:
    """Write ``report.html`` and its figures; returns the HTML path. They are drawn in a
    temporary folder beside ``output`` and moved there only when all succeeded, so a
    late error leaves no half of a report behind."""
    if (Path(run_path) / "learning.csv").is_file():
        return write_learning_report(Path(run_path), output)
    run = RunDirectory(Path(run_path))
    rows = run.read_front()
    number, potential = member_potential(run.path, member)
    final = Path(output) if output else run.path / "report"
    if final.exists() and not final.is_dir():
        raise EvopotError(f"{final}: --output is a file, not a folder; choose another")
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".report-", dir=final.parent))
    try:
        _draw_report(run, rows, number, potential, staging)
        final.mkdir(exist_ok=True)
        for path in staging.iterdir():
            os.replace(path, final / path.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final / "report.html"


def write_learning_report(folder: Path, output: str | Path | None = None) -> Path:
    """The report of an ``evopot learn`` folder: its learning curve and, per iteration,
    the frames, the test errors of formula and hybrid, and what exploration found."""
    from evopot.learn.loop import COLUMNS, learning_curve

    rows = read_csv(folder / "learning.csv", "the learning curve of evopot learn")
    if not rows:
        raise EvopotError(f"{folder / 'learning.csv'}: no finished iteration yet")
    final = Path(output) if output else folder / "report"
    final.mkdir(parents=True, exist_ok=True)
    learning_curve(rows, final / "learning_curve.png")
    head = "".join(f"<th>{html.escape(c)}</th>" for c in COLUMNS)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(row.get(c, '')))}</td>" for c in COLUMNS) + "</tr>" for row in rows
    )
    last = rows[-1]
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>evopot learn: {html.escape(folder.name)}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}td,th{{padding:2px 8px;text-align:right}}</style>
</head><body><h1>evopot learn: {html.escape(folder.name)}</h1>
<p>{len(rows)} iterations; {html.escape(str(last["labelled"]))} frames labelled by the reference; stopped:
{html.escape(last["stop"] or "not yet")}. Force errors in eV/Å, energy errors in meV/atom, on the held-out test
frames. Each iteration's search run and hybrid are in <code>iteration_K/</code>.</p>
<img src="learning_curve.png" alt="learning curve"><table><tr>{head}</tr>{body}</table></body></html>
"""
    (final / "report.html").write_text(page)
    return final / "report.html"


def _draw_report(run: RunDirectory, rows: list[dict], number: int, potential: Potential, folder: Path) -> None:
    from evopot.config.schema import load_config
    from evopot.data.dataset import dataset_from_config

    plt = _plt()
    splits = [(s, label) for s, label in SPLIT_COLUMNS if rows[0].get(f"{s}_force_mae") is not None]
    figures: dict[str, Path] = {}

    # Pareto front
    figure, axis = plt.subplots(figsize=(5.5, 3.8))
    for split, label in splits:
        axis.plot([r["complexity"] for r in rows], [r[f"{split}_force_mae"] for r in rows], "o-", label=label)
    chosen = next(r for r in rows if int(r["member"]) == number)
    axis.plot(
        [chosen["complexity"]], [chosen[f"{splits[-1][0]}_force_mae"]], "*", ms=16, color="k", label=f"member {number}"
    )
    axis.set_xlabel("complexity (nodes)")
    axis.set_ylabel("force MAE (eV/Å)")
    axis.set_title("Pareto front")
    axis.legend()
    figure.tight_layout()
    figures["front"] = folder / "pareto_front.png"
    figure.savefig(figures["front"], dpi=110)
    plt.close(figure)

    # search history
    if run.history.is_file():
        history = read_csv(run.history, "history file")
        try:
            losses = [(int(h["generation"]), float(h["best_loss"])) for h in history]
        except (KeyError, TypeError, ValueError):
            raise EvopotError(f"{run.history}: corrupt history file (expected generation and best_loss)") from None
        figure, axis = plt.subplots(figsize=(5.5, 3.4))
        axis.semilogy([g for g, _ in losses], [loss for _, loss in losses], "-o", ms=3)
        axis.set_xlabel("generation")
        axis.set_ylabel("best search loss")
        axis.set_title("search history")
        figure.tight_layout()
        figures["history"] = folder / "history.png"
        figure.savefig(figures["history"], dpi=110)
        plt.close(figure)

    # the chosen member: formula, terms, parity and error distribution
    figures["formula"] = folder / "formula.png"
    if not formula_image(potential, figures["formula"]):
        figures.pop("formula")
    terms = term_figures(potential, folder)
    config = load_config(run.config)
    dataset = dataset_from_config(config, str(run.config))
    name = "test" if dataset.test is not None and len(dataset.test) else "validation"
    frames = dataset.splits()[name]
    prediction = evaluate(potential, potential_geometry(potential, frames))
    truth = np.concatenate(frames.forces)
    kinds = np.repeat(np.array(frames.config_types), [len(a) for a in frames.atoms])
    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    limit = float(np.abs(truth).max()) * 1.05
    for kind in sorted(set(kinds)):
        rows_of_kind = kinds == kind
        axes[0].plot(truth[rows_of_kind].ravel(), prediction.forces[rows_of_kind].ravel(), ".", ms=3, label=kind)
    axes[0].plot([-limit, limit], [-limit, limit], "k-", lw=0.8)
    axes[0].set_xlabel("DFT force component (eV/Å)")
    axes[0].set_ylabel("evopot (eV/Å)")
    axes[0].set_title(f"force parity, {name} split")
    axes[0].legend(fontsize=8, markerscale=3)
    error = (prediction.forces - truth).ravel()
    axes[1].hist(error, bins=80)
    axes[1].set_xlabel("force error (eV/Å)")
    axes[1].set_ylabel("components")
    axes[1].set_title(f"error distribution (MAE {np.mean(np.abs(error)):.4f} eV/Å)")
    figure.tight_layout()
    figures["parity"] = folder / "parity.png"
    figure.savefig(figures["parity"], dpi=110)
    plt.close(figure)

    (folder / "report.html").write_text(_page(run, rows, splits, number, potential, figures, terms, name, frames))


def _image(path: Path, alt: str) -> str:
    return f'<img src="{html.escape(path.name)}" alt="{html.escape(alt)}">'


def _crystal_table(rows: list[dict], number: int, reference: dict | None) -> str:
    """Member ``number``'s crystal properties against the run's reference, as HTML ("" without them)."""
    row = next((r for r in rows if int(r["member"]) == number), {})
    names = {"a0": ("a₀", "Å"), "B": ("B", "GPa"), "C11": ("C11", "GPa"), "C12": ("C12", "GPa")}
    names["C44"] = ("C44 (atoms relaxed)", "GPa")
    names["C44_unrelaxed"] = ("C44⁰ (atoms not relaxed)", "GPa")
    if not reference or not any(row.get(k) is not None for k in names):
        return ""
    values = reference.get("values", {})
    lines = []
    for key, (label, unit) in names.items():
        ours, dft = row.get(key), values.get(key.replace("_", " "))
        if ours is None and dft is None:
            continue
        error = f"{ours / dft - 1:+.1%}" if ours is not None and dft else ""
        shown = "not bound" if ours is None else f"{ours:.4g}"
        dft_shown = "" if dft is None else f"{dft:.4g}"
        cells = "".join(f"<td>{c}</td>" for c in (f"{label} ({unit})", shown, dft_shown, error))
        lines.append(f'<tr class="crystal">{cells}</tr>')
    return (
        f"<p>Crystal of {html.escape(str(reference.get('element', '')))} (its own a₀; strains ±1 %; penalty "
        f"{row.get('property_penalty') or 0.0:.3g}; reference: {html.escape(str(reference.get('source', '')))}):</p>"
        "<table><tr><th>property</th><th>formula</th><th>DFT</th><th>error</th></tr>" + "".join(lines) + "</table>"
    )


def _page(run, rows, splits, number, potential, figures, terms, split_name, frames) -> str:
    summary = {}
    if run.summary.is_file():
        try:
            summary = json.loads(run.summary.read_bytes().decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            raise EvopotError(f"{run.summary}: corrupt summary file") from None
    costed = all(row.get("operations_per_atom") is not None for row in rows)  # runs before it have none
    head = (
        ["member", "nodes"]
        + (["operations per atom"] if costed else [])
        + [f"{label} F-MAE (eV/Å)" for _, label in splits]
        + [f"{label} E-MAE (meV/atom)" for _, label in splits]
        + ["formula"]
    )
    body = []
    for row in rows:
        cells = [f"{int(row['member'])}", f"{int(row['complexity'])}"]
        cells += [f"{row['operations_per_atom']:.6g}"] if costed else []
        cells += [f"{row[f'{s}_force_mae']:.6g}" for s, _ in splits] + [
            f"{row[f'{s}_energy_mae']:.6g}" for s, _ in splits
        ]
        mark = ' class="chosen"' if int(row["member"]) == number else ""
        body.append(
            f"<tr{mark}>"
            + "".join(f"<td>{c}</td>" for c in cells)
            + f"<td><code>{html.escape(row['formula'])}</code></td></tr>"
        )
    constants = "".join(
        f"<li>term {k} ({t.kind}): "
        + ", ".join(f"<code>{html.escape(n)} = {v:.10g}</code>" for n, v in t.constants.items())
        + "</li>"
        for k, t in enumerate(potential.terms)
    )
    dataset = summary.get("dataset", {})
    crystal = _crystal_table(rows, number, summary.get("properties_reference"))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>evopot report: {html.escape(str(run.path))}</title>
<style>
body {{ font-family: sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }}
table {{ border-collapse: collapse; font-size: 0.85em; }}
td, th {{ border: 1px solid #ccc; padding: 3px 6px; text-align: right; }}
td:last-child {{ text-align: left; }} tr.chosen {{ background: #fff3c4; }}
img {{ max-width: 100%; }} code {{ font-size: 0.95em; }}
</style></head><body>
<h1>evopot report</h1>
<p>Run <code>{html.escape(str(run.path))}</code>; {len(rows)} front members;
generations {summary.get("generations", "?")}; seed {summary.get("seed", "?")};
training frames {dataset.get("train", {}).get("frames", "?")}.</p>
<h2>Pareto front</h2>
{_image(figures["front"], "Pareto front: force MAE against complexity")}
<table><tr>{"".join(f"<th>{h}</th>" for h in head)}</tr>
{"".join(body)}</table>
<h2>Member {number}</h2>
<p><code>{html.escape(potential.formula())}</code></p>
{_image(figures["formula"], "formula") if "formula" in figures else ""}
<p>Constants (a… are linear coefficients solved exactly by least squares;
b… and named constants are nonlinear, refined by least squares from the search's values):</p>
<ul>{constants}</ul>
{crystal}
{"".join(_image(t, f"term {k}") for k, t in enumerate(terms))}
<h2>Forces on the {split_name} split ({len(frames)} frames)</h2>
{_image(figures["parity"], "force parity and error distribution")}
{("<h2>Search history</h2>" + _image(figures["history"], "best loss per generation")) if "history" in figures else ""}
</body></html>
"""
