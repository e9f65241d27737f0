"""The ``evopot`` command line: ``search``, ``show``, ``report``, ``export``, ``md``,
``validate``, ``correct``, ``data`` and ``learn``.

User mistakes (:class:`EvopotError`) print one line and exit with status 2; an
interrupted search says how to resume and exits with 130.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from evopot.errors import EvopotError
from evopot.version import __version__


def _warning_line(message, category, filename, lineno, line=None) -> str:
    return f"evopot: warning: {message}\n"


def main(argv: list[str] | None = None) -> int:
    warnings.formatwarning = _warning_line  # warnings read as messages to the user, not as tracebacks
    parser = argparse.ArgumentParser(
        prog="evopot", description="Discover interatomic potentials as short, readable formulas."
    )
    parser.add_argument("--version", action="version", version=f"evopot {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    search = commands.add_parser("search", help="search formulas against DFT data; writes a run directory")
    search.add_argument("config", help="search config YAML (see examples/)")
    search.add_argument(
        "--resume", action="store_true", help="continue the run in the config's output folder from its last checkpoint"
    )
    search.add_argument("--overwrite", action="store_true", help="replace an existing run in the output folder")
    search.add_argument("--seed", type=int, help="override the config's seed")
    search.add_argument("--generations", type=int, help="override engine.generations")
    search.add_argument("--output", help="override the output folder (relative to the current folder)")
    search.add_argument("--workers", help="override engine.workers: auto, or how many processes fit candidates")
    search.add_argument("--quiet", action="store_true", help="no progress bar")

    show = commands.add_parser(
        "show", help="print the Pareto front of a run, or one potential file (formula or hybrid)"
    )
    show.add_argument("run", help="run directory written by evopot search, or a potential JSON file")
    shown = show.add_mutually_exclusive_group()
    shown.add_argument("--latex", action="store_true", help="each member's formula as LaTeX")
    shown.add_argument(
        "--member", type=int, help="one member term by term, with its constants and where they came from"
    )
    shown.add_argument("--json", action="store_true", help="the front and its potentials as JSON, for scripts")

    report = commands.add_parser("report", help="write an HTML report with figures of a run")
    report.add_argument("run", help="run directory written by evopot search")
    report.add_argument("--member", type=int, help="member to picture (default: the recommended one)")
    report.add_argument("--output", help="folder for report.html and its PNGs (default RUN/report)")

    from evopot.export.registry import EXPORTERS

    export = commands.add_parser("export", help="write a potential in another code's format (LAMMPS)")
    export.add_argument("run", nargs="?", help="run directory written by evopot search")
    export.add_argument("--member", type=int, help="front member to export (default: the recommended one)")
    export.add_argument("--potential", help="a potential JSON file to export instead of a run's member")
    export.add_argument(
        "--format", default="lammps", help=f"target format: {', '.join(sorted(EXPORTERS))} (default lammps)"
    )
    export.add_argument("--out", required=True, help="folder for the exported files")
    export.add_argument(
        "--inner",
        type=float,
        help="shortest tabulated distance in Å (default: 80 %% of the training data's shortest distance)",
    )
    export.add_argument("--points", type=int, default=5000, help="rows per table (default 5000)")
    export.add_argument(
        "--angle-points",
        type=int,
        default=40,
        help="N of a threebody/table: N distances per bond and 2N angles (default 40; error falls as 1/N, size "
        "grows as N³)",
    )
    export.add_argument(
        "--check",
        action="store_true",
        help="run LAMMPS on a rattled crystal and compare with evopot's own energies and forces",
    )
    export.add_argument(
        "--formula-only",
        action="store_true",
        help="export the formula of a hybrid potential without its neural correction",
    )

    correct = commands.add_parser(
        "correct", help="train a neural correction on what a front member's formula leaves (a hybrid potential)"
    )
    correct.add_argument("run", help="run directory written by evopot search")
    correct.add_argument(
        "--member",
        type=int,
        help="front member to correct (default: the config's correction.member, else the recommended one)",
    )
    correct.add_argument("--output", help="hybrid JSON path or folder (default RUN/corrections/member_K/hybrid.json)")
    correct.add_argument("--ensemble", type=int, help="networks in the ensemble (default 4)")
    correct.add_argument("--epochs", type=int, help="epochs per network (default 600)")
    correct.add_argument("--hidden", type=int, nargs="+", help="hidden layer widths (default 32 32)")
    correct.add_argument("--learning-rate", type=float, help="Adam's initial step (default 2e-3)")
    correct.add_argument("--device", help="cpu, cuda, … (default: CUDA when present)")
    correct.add_argument(
        "--model",
        choices=["bpnn", "interaction"],
        help="Behler–Parrinello networks (default) or an interaction network",
    )
    correct.add_argument(
        "--formula-inputs",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="give the network the formula's per-atom term energies as inputs (default: on)",
    )
    correct.add_argument("--overwrite", action="store_true", help="train again over an existing hybrid")
    correct.add_argument(
        "--flag-uncertain",
        metavar="DATA",
        help="list frames of DATA (extxyz …) whose force uncertainty exceeds --threshold; uses the trained hybrid "
        "when it exists",
    )
    correct.add_argument(
        "--threshold",
        type=float,
        help="uncertainty threshold in eV/Å (default: 95th percentile on the validation split)",
    )
    correct.add_argument("--quiet", action="store_true", help="no progress bar")

    md = commands.add_parser("md", help="molecular dynamics with a potential (CPU, or a GPU with --device cuda)")
    md.add_argument(
        "potential", help="a potential JSON file, or a run directory (its recommended member unless --member)"
    )
    md.add_argument("structure", help="starting structure, any file ase.io reads (its last frame)")
    md.add_argument("--member", type=int, help="front member of a run directory")
    md.add_argument("--steps", type=int, default=1000, help="number of steps (default 1000)")
    md.add_argument("--dt", type=float, default=1.0, help="time step in fs (default 1)")
    md.add_argument(
        "--temperature", type=float, default=300.0, help="initial (and Langevin) temperature in K (default 300)"
    )
    md.add_argument(
        "--thermostat",
        choices=["none", "langevin"],
        default="none",
        help="none: NVE velocity Verlet; langevin: NVT (default none)",
    )
    md.add_argument("--friction", type=float, default=1.0, help="Langevin friction in 1/ps (default 1)")
    md.add_argument(
        "--repeat", type=int, nargs=3, metavar=("NX", "NY", "NZ"), help="build a supercell of the structure first"
    )
    md.add_argument("--seed", type=int, default=0, help="seed of the initial velocities and the Langevin noise")
    md.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 … (default: cuda when present)")
    md.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    md.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the kernel (first step takes tens of seconds; on the CPU it measured slower than the "
        "plain kernel for Stillinger-Weber)",
    )
    md.add_argument("--trajectory", help="write frames to this extxyz file")
    md.add_argument(
        "--every", type=int, default=100, help="steps between trajectory frames and thermo lines (default 100)"
    )
    md.add_argument("--quiet", action="store_true", help="no progress bar")

    check = commands.add_parser(
        "validate", help="physical checks of a potential against DFT data: E–V, elastic constants, MD, RDF"
    )
    check.add_argument(
        "potential", help="a potential JSON file, or a run directory (its recommended member unless --member)"
    )
    check.add_argument(
        "--reference", required=True, help="DFT frames (extxyz or anything ase.io reads), e.g. the training data"
    )
    check.add_argument("--member", type=int, help="front member of a run directory")
    check.add_argument(
        "--output", default="validation", help="folder for figures and validation.txt (default ./validation)"
    )
    check.add_argument("--steps", type=int, default=2000, help="MD steps of each dynamic check (default 2000)")
    check.add_argument("--seed", type=int, default=0)
    check.add_argument("--quiet", action="store_true", help="no progress bars")

    data = commands.add_parser(
        "data", help="sample structures and label them with a reference calculator (GPAW, EMT, LAMMPS, …)"
    )
    data.add_argument("config", help="data config YAML: species, reference, sampling (see examples/)")
    data.add_argument("--overwrite", action="store_true", help="label everything again, replacing the output")
    data.add_argument("--retry-failed", action="store_true", help="label again the frames that failed before")
    data.add_argument("--workers", help="override workers: auto, or how many processes label frames")
    data.add_argument("--quiet", action="store_true", help="no progress bar")

    learn = commands.add_parser(
        "learn", help="active learning: search, correct, explore with MD, label the uncertain frames, repeat"
    )
    learn.add_argument("config", help="learn config YAML: species, reference, start, test, search, explore, stop")
    learn.add_argument("--resume", action="store_true", help="continue the loop in the config's output folder")
    learn.add_argument("--overwrite", action="store_true", help="start afresh, replacing the output folder")
    learn.add_argument("--quiet", action="store_true", help="no progress bars")

    args = parser.parse_args(argv)
    try:
        if args.command == "learn":
            return _learn(args)
        if args.command == "data":
            return _data(args)
        if args.command == "search":
            return _search(args)
        if args.command == "show":
            from pathlib import Path

            from evopot.inspect import show as shows

            if Path(args.run).is_file():
                if args.latex or args.member is not None:
                    raise EvopotError("--latex and --member apply to a run directory; a potential file is shown whole")
                print(shows.model_text(args.run, as_json=args.json))
            elif args.latex:
                print(shows.front_latex(args.run))
            elif args.member is not None:
                print(shows.member_text(args.run, args.member))
            elif args.json:
                print(shows.front_json(args.run))
            else:
                print(shows.front_table(args.run))
            return 0
        if args.command == "report":
            from evopot.inspect.report import write_report

            path = write_report(args.run, args.member, args.output)
            print(f"report: {path}  (open it in a browser; it needs no network)")
            return 0
        if args.command == "export":
            return _export(args)
        if args.command == "md":
            return _md(args)
        if args.command == "validate":
            return _validate(args)
        if args.command == "correct":
            return _correct(args)
    except EvopotError as exc:
        print(f"evopot: error: {' '.join(str(exc).split())}", file=sys.stderr)  # one line, whatever it quotes
        return 2
    except BrokenPipeError:  # output piped into head and the like
        sys.stderr.close()
        return 0
    return 1


def _data(args) -> int:
    from evopot.learn.generate import generate

    workers = None if args.workers is None else _workers(args.workers)
    result = generate(
        args.config, overwrite=args.overwrite, retry_failed=args.retry_failed, progress=not args.quiet, workers=workers
    )
    speed = f", {result.seconds_per_frame:.3g} s per frame" if result.seconds_per_frame else ""
    print(f"{result.path}: {result.frames} frames ({result.labelled} labelled now{speed})")
    if result.failed:
        print(f"{len(result.failed)} frames failed (listed in {result.path.stem}.failed.txt; --retry-failed to retry)")
    if result.references:
        print(
            "reference_energies (isolated atoms, eV): "
            + ", ".join(f"{k}: {v:.6g}" for k, v in result.references.items())
        )
    return 0


def _learn(args) -> int:
    from evopot.learn.loop import learn

    result = learn(args.config, resume=args.resume, overwrite=args.overwrite, progress=not args.quiet)
    print(f"{'iteration':>9} {'frames':>6} {'labelled':>8} {'test F-MAE formula':>18} {'hybrid':>8}  (eV/Å)")
    for row in result.rows:
        print(
            f"{row['iteration']:>9} {row['frames']:>6} {row['labelled']:>8} "
            f"{float(row['test_force_mae_formula']):18.4f} {float(row['test_force_mae_hybrid']):8.4f}"
        )
    if result.rows:
        print(f"stopped: {result.rows[-1]['stop']}; learning curve: {result.folder / 'learning_curve.png'}")
    return 0


def _search(args) -> int:
    from pathlib import Path

    from evopot.config.schema import load_config
    from evopot.inspect.show import front_table
    from evopot.model.properties import crystal_comparison
    from evopot.search.run import search

    overrides = {}
    if args.seed is not None:
        overrides["seed"] = args.seed
    if args.generations is not None:
        overrides["engine.generations"] = args.generations
    if args.workers is not None:
        overrides["engine.workers"] = _workers(args.workers)
    config = load_config(args.config, overrides)
    if args.output:
        config = config.model_copy(update={"output": Path(args.output).resolve()})
    try:
        result = search(
            config, resume=args.resume, overwrite=args.overwrite, progress=not args.quiet, config_path=args.config
        )
    except KeyboardInterrupt:
        print(
            f"\nevopot: interrupted; the last finished generation is saved in {config.output}. Continue "
            f"with: evopot search {args.config} --resume",
            file=sys.stderr,
        )
        return 130
    print(front_table(result.run_directory))
    best, pick = result.best("validation"), result.recommended()
    print(
        f"\nlowest validation force MAE: member {best.member} ({best.complexity} nodes, "
        f"{best.errors['validation']['force_mae']:.4f} eV/Å)"
    )
    weighed = " × (1 + property penalty)" if result.target is not None else ""
    print(
        f"recommended, the simplest within 5 % of the best validation force MAE{weighed}: member {pick.member} "
        f"({pick.complexity} nodes, {pick.errors['validation']['force_mae']:.4f} eV/Å)"
    )
    print(f"  {pick.formula}")
    if result.target is not None:
        print(f"  {crystal_comparison(pick.properties, result.target)}")
    print(f"run directory: {result.run_directory}  ({result.generations} generations, {result.wall_time:.1f} s)")
    return 0


def _whole_number(text: str, flag: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise EvopotError(f"{flag} {text!r}: give a whole number (or auto)") from None


def _workers(text: str) -> int | str:
    """A ``--workers`` flag: ``auto`` or a whole number."""
    return text if text == "auto" else _whole_number(text, "--workers")


def _load_potential(path: str, member: int | None):
    """A potential (formula or hybrid) from a JSON file or a run directory's member;
    (potential, description)."""
    from pathlib import Path

    from evopot.neural.hybrid import load_model
    from evopot.search.rundir import member_potential

    if Path(path).is_dir():
        number, potential = member_potential(path, member)
        return potential, f"member {number} of {path}"
    if member is not None:
        raise EvopotError("--member picks a member of a run directory; it does not go with a potential file")
    return load_model(path), path


def _correct(args) -> int:
    from evopot.data.dataset import read_frames
    from evopot.neural.correct import correct_run, flag_uncertain, hybrid_path
    from evopot.neural.hybrid import load_model

    for name in ("ensemble", "epochs"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise EvopotError(f"--{name} must be at least 1, got {getattr(args, name)}")
    if args.threshold is not None and args.flag_uncertain is None:
        raise EvopotError("--threshold goes with --flag-uncertain DATA")
    overrides = {
        "ensemble": args.ensemble,
        "epochs": args.epochs,
        "hidden": args.hidden,
        "learning_rate": args.learning_rate,
        "device": args.device,
        "formula_inputs": args.formula_inputs,
        "model": args.model,
    }
    frames = read_frames(args.flag_uncertain) if args.flag_uncertain else None  # a bad file fails before any training
    existing = None
    if frames is not None and not args.overwrite:
        _, path = hybrid_path(args.run, args.member, args.output)
        if path.is_file():
            existing = load_model(path)
            print(f"evopot correct: using the trained hybrid {path}")
    if existing is None:
        result = correct_run(args.run, args.member, overrides, args.output, args.overwrite, progress=not args.quiet)
        print(f"hybrid of member {result.member}: {result.path}  (trained in {result.seconds:.1f} s)")
        print(result.table())
        share = result.share
        print(
            f"correction on the training frames: {share['correction_energy_rms'] * 1000:.1f} meV/atom RMS "
            f"({share['energy_share']:.1%} of the formula's), "
            f"forces {share['correction_force_rms']:.3f} eV/Å RMS ({share['force_share']:.1%} of the formula's)"
        )
        existing = result.hybrid
    if frames is not None:
        threshold, flagged = flag_uncertain(existing, frames, args.threshold)
        print(
            f"{len(flagged)} of {len(frames)} frames of {args.flag_uncertain} exceed {threshold:.4f} eV/Å "
            f"force uncertainty:"
        )
        for index, config_type, value in flagged:
            print(f"  frame {index:5d}  {config_type:<16} {value:.4f} eV/Å")
    return 0


def _validate(args) -> int:
    from evopot.inspect.validate import validate

    if args.steps < 10:
        raise EvopotError(f"--steps must be at least 10, got {args.steps}")
    potential, source = _load_potential(args.potential, args.member)
    print(f"evopot validate: {source} against {args.reference}")
    result = validate(potential, args.reference, args.output, args.steps, args.seed, progress=not args.quiet)
    print(result.table())
    print(f"figures: {', '.join(str(f) for f in result.figures)}")
    print("all checks passed" if result.passed else "some checks FAILED")
    return 0 if result.passed else 1


#: the most atoms ``evopot md --repeat`` builds (each takes about 1 kB with its neighbours)
MAX_MD_ATOMS = 10**7


def _md(args) -> int:
    import ase.io
    import torch

    from evopot.md.dynamics import MolecularDynamics, thermalized
    from evopot.md.forcefield import ForceField

    for name in ("steps", "every"):
        if getattr(args, name) < 1:
            raise EvopotError(f"--{name} must be at least 1, got {getattr(args, name)}")
    if not args.temperature >= 0 or args.temperature == float("inf"):
        raise EvopotError(f"--temperature must be a finite number ≥ 0 K, got {args.temperature}")
    if not 0 < args.dt < 100:
        raise EvopotError(f"--dt must be a time step in fs above 0 and below 100, got {args.dt}")
    if not 0 <= args.friction < float("inf"):
        raise EvopotError(f"--friction must be a finite number ≥ 0 (1/ps), got {args.friction}")
    if args.repeat and min(args.repeat) < 1:
        raise EvopotError(f"--repeat takes three whole numbers ≥ 1, got {' '.join(map(str, args.repeat))}")
    if args.trajectory and not Path(args.trajectory).resolve().parent.is_dir():
        raise EvopotError(f"--trajectory {args.trajectory}: its folder {Path(args.trajectory).parent} does not exist")
    potential, source = _load_potential(args.potential, args.member)
    try:
        atoms = ase.io.read(args.structure)
    except FileNotFoundError:
        raise EvopotError(f"{args.structure}: structure file not found") from None
    except Exception as exc:  # ase.io raises many kinds of errors for unreadable files
        raise EvopotError(f"{args.structure}: ase.io cannot read it ({exc})") from None
    if args.repeat:
        size = len(atoms) * args.repeat[0] * args.repeat[1] * args.repeat[2]
        if size > MAX_MD_ATOMS:
            raise EvopotError(
                f"--repeat {' '.join(map(str, args.repeat))} makes {size:.3g} atoms, more than {MAX_MD_ATOMS:.0e}; "
                f"use a smaller supercell"
            )
        atoms = atoms.repeat(args.repeat)
    atoms = thermalized(atoms, args.temperature, args.seed)
    forcefield = ForceField(potential, args.device, getattr(torch, args.dtype), optimize=args.compile)
    print(
        f"evopot md: {len(atoms)} atoms, {source}, {forcefield.device}, {args.dtype}, dt {args.dt} fs, "
        f"{args.steps} steps, "
        f"{'NVE' if args.thermostat == 'none' else f'Langevin {args.temperature} K'}"
    )
    print(f"{'step':>8} {'time/ps':>9} {'T/K':>9} {'E_kin/eV':>14} {'E_pot/eV':>16} {'E_total/eV':>16}")

    def report(t):
        line = (
            f"{t.step:8d} {t.time_ps:9.4f} {t.temperature:9.2f} {t.kinetic:14.6f} {t.potential:16.6f} {t.total:16.6f}"
        )
        if args.quiet:
            print(line, flush=True)
        else:
            from tqdm import tqdm

            tqdm.write(line)  # above the progress bar

    dynamics = MolecularDynamics(
        atoms,
        forcefield,
        args.dt,
        None if args.thermostat == "none" else "langevin",
        args.temperature,
        args.friction,
        args.seed,
    )
    result = dynamics.run(args.steps, args.every, args.trajectory, args.every, progress=not args.quiet, report=report)
    drift = (result.thermo[-1].total - result.thermo[0].total) / len(atoms) * 1000
    print(
        f"{len(atoms) * args.steps / result.wall_time:.4g} atom-steps/s; E_total change {drift:+.4f} "
        f"meV/atom; neighbour list built {result.neighbor_builds} times"
        + (f"; trajectory {args.trajectory}" if args.trajectory else "")
    )
    return 0


def _export(args) -> int:
    from evopot.export.registry import ExportOptions, exporter
    from evopot.model.potential import Potential
    from evopot.search.rundir import member_potential

    target = exporter(args.format)
    if (args.run is None) == (args.potential is None):
        raise EvopotError("give a run directory or --potential FILE (one of them)")
    if args.potential is not None and args.member is not None:
        raise EvopotError("--member picks a member of a run; it does not go with --potential")
    if args.points < 10:
        raise EvopotError(f"--points {args.points}: a table needs at least 10 points")
    if args.angle_points < 2:
        raise EvopotError(
            f"--angle-points {args.angle_points}: a three-body table needs at least 2 points per distance"
        )
    if args.potential is not None:
        potential, source = Potential.load(args.potential), args.potential
    else:
        member, potential = member_potential(args.run, args.member)
        source = f"member {member} of {args.run}"
    if args.formula_only:
        from evopot.neural.hybrid import formula_only

        if not potential.metadata.get("correction"):
            raise EvopotError(f"{source} has no neural correction; --formula-only applies to hybrid potentials")
        potential, source = formula_only(potential), f"{source} (formula only)"
    written = target.write(potential, Path(args.out), ExportOptions(args.inner, args.points, args.angle_points))
    styles = f" ({', '.join(written.styles)})" if written.styles else ""
    print(f"exported {source} for {target.target}{styles} to {written.folder}: {', '.join(written.files)}")
    for note in written.notes:
        print(f"  note: {note}")
    if written.usage:
        print("\n" + written.usage)
    if args.check:
        report = target.check(potential, written)
        print(report.summary)
        return 0 if report.ok else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
