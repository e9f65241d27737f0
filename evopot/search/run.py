"""``evopot.search(config)``: the whole search, from config to run directory.

Reads the data, builds the geometry once, runs the engine generation by generation
(checkpointing after each), then refits every Pareto-front member's constants on the
full training set and reports its errors on every split.
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import sympy

from evopot.config.schema import SearchConfig, load_config
from evopot.config.yamlfile import validate
from evopot.data.crystal_reference import crystal, reference_from_frames
from evopot.data.dataset import Dataset, Frames, dataset_from_config, frames_of, write_frames
from evopot.data.geometry import build_geometry
from evopot.errors import EvopotError, brief
from evopot.executor import open_executor
from evopot.model import compiled
from evopot.model.cutoff import cutoff_from_config
from evopot.model.evaluate import evaluate
from evopot.model.formula import round_floats
from evopot.model.metrics import errors, simplest_within, zero_force_errors
from evopot.model.potential import Potential
from evopot.model.properties import PropertyTarget
from evopot.search.candidate import complexity
from evopot.search.engines.gp import RESTART_GAIN
from evopot.search.engines.registry import Engine, EngineFactory, EngineSetup, engine_factory
from evopot.search.engines.space import check_space_fits, load_search_space, resolve_search_space_path
from evopot.search.fitting import FitProblem
from evopot.search.rundir import FRONT_COLUMNS, RunDirectory, write_atomic
from evopot.search.scoring import Scorer
from evopot.version import __version__

#: the run directory's folder of compiled functions shared by the processes of a search on
#: several workers (:mod:`evopot.model.compiled`); removed when the search ends
COMPILED_FOLDER = ".compiled"


@dataclass
class FrontMember:
    """One member of the final front: its potential and its errors per split."""

    member: int
    complexity: int
    search_loss: float
    potential: Potential
    errors: dict[str, dict[str, float]]
    #: crystal properties (a0 Å; B, C11, C12, "C44 unrelaxed" GPa) when the run has a property target
    properties: dict[str, float] = field(default_factory=dict)
    #: weight × mean((relative property error / tolerance)²); 0 without a property target
    penalty: float = 0.0
    #: arithmetic operations per atom of its energy over the training structures (POET's cost)
    operations: float = math.nan

    @property
    def formula(self) -> str:
        return self.potential.formula()

    def sympy(self) -> list[sympy.Expr]:
        """Each term's expression with its fitted constants inserted (an embedding
        term's F(ρ); its density f(r) is ``potential.terms[k].numeric(term.density)``)."""
        return [term.numeric() for term in self.potential.terms]

    def latex(self, digits: int = 4) -> str:
        """The terms as LaTeX, ``label = formula`` each, constants to ``digits`` figures."""
        lines = [", \\quad ".join(term.spec.latex(term, digits)) for term in self.potential.terms]
        return " \\\\\n".join(lines)


@dataclass
class SearchResult:
    """What ``evopot.search`` returns: the run directory and the front, simplest first."""

    run_directory: Path
    front: list[FrontMember]
    dataset: Dataset
    generations: int
    wall_time: float
    #: the crystal properties the front was steered towards, or None
    target: PropertyTarget | None = None

    def best(self, split: str = "validation") -> FrontMember:
        """The member with the lowest force MAE on ``split``."""
        return min(self.front, key=lambda m: m.errors[split]["force_mae"])

    def recommended(self, tolerance: float = 0.05, split: str = "validation") -> FrontMember:
        """The simplest member whose force MAE on ``split``, times 1 + its property
        penalty when the run has a property target, is within ``tolerance`` (relative)
        of the best: the knee a person would pick from the front."""
        return simplest_within(
            self.front, lambda m: m.errors[split]["force_mae"] * (1 + m.penalty), lambda m: m.complexity, tolerance
        )

    def member(self, number: int | None = None) -> FrontMember:
        """Front member ``number``, or the recommended one."""
        if number is None:
            return self.recommended()
        for m in self.front:
            if m.member == number:
                return m
        raise EvopotError(f"no front member {number}; the front has members {[m.member for m in self.front]}")

    def sympy(self, member: int | None = None) -> list[sympy.Expr]:
        """The terms of ``member`` (default: the recommended one) as sympy expressions."""
        return self.member(member).sympy()

    def latex(self, member: int | None = None, digits: int = 4) -> str:
        """The terms of ``member`` (default: the recommended one) as LaTeX."""
        return self.member(member).latex(digits)


def search(
    config: SearchConfig | dict | str | Path,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    config_path: str | None = None,
    train=None,
    validation=None,
    test=None,
) -> SearchResult:
    """Run (or with ``resume`` continue) the search of ``config`` (a config file, a
    mapping of its fields, or a :class:`SearchConfig`) and write its run directory.

    ``train``, ``validation`` and ``test`` (lists of labelled ASE ``Atoms``) stand in
    for the config's data files; they are saved in the run directory (``data/``) and
    the saved config names those files, so ``--resume`` and reruns need nothing else."""
    if isinstance(config, dict):
        config = validate(SearchConfig, config, "config").resolved(Path.cwd())
    elif not isinstance(config, SearchConfig):
        config_path = str(config)
        config = load_config(config)
    where = config_path or "config"
    # frames given in memory, checked once: the dataset splits them and the run directory keeps them
    given = (("train", train), ("validation", validation), ("test", test))
    in_memory = {k: frames_of(v, f"{where}: data.{k}") for k, v in given if v is not None}
    clock = Clock()
    space_path = resolve_search_space_path(
        config.search_space, Path(config_path).resolve().parent if config_path else None
    )
    space = load_search_space(space_path)
    factory = engine_factory(config.engine.name, where)
    if not resume:  # a resumed run has made its start
        factory.check(space, config, where)
    # everything that can be checked is checked before the run directory is written
    dataset = dataset_from_config(config, where, in_memory)
    species = tuple(dataset.species)
    cutoff = cutoff_from_config(config.cutoff, where)
    check_space_fits(space, cutoff.radius, species, where)
    search_frames = dataset.train
    if config.fitness.frames is not None and config.fitness.frames < len(dataset.train):
        chosen = np.random.default_rng(config.seed).choice(len(dataset.train), config.fitness.frames, replace=False)
        search_frames = dataset.train.subset(sorted(chosen))
    target = property_target(config, dataset, where)
    if config.fitness.stresses > 0 and not search_frames.stressed.any():
        raise EvopotError(
            f"{where}: fitness.stresses is {config.fitness.stresses:g} but none of the {len(search_frames)} training "
            f"frames the search fits ({search_frames.source}) has a stress (ASE's `stress`, eV/Å³); set it to 0 or "
            "give the frames their DFT stresses"
        )
    references = config.reference_energies
    if references is not None:
        missing = [s for s in species if s not in references]
        if missing:
            raise EvopotError(
                f"{where}: reference_energies: no isolated-atom energy for {', '.join(missing)} (the data's species "
                f"are {', '.join(species)}); give one for each, or leave the section out to fit them"
            )
    e = config.engine
    # an unreachable cluster is found before anything is written; the workers go with the search and
    # import the fitting code while this process builds the fit problem
    with contextlib.ExitStack() as stack:
        executor = stack.enter_context(
            open_executor(e.workers, e.scheduler, e.scheduler_file, preload=("evopot.search.scoring",))
        )
        weights = dict(
            force_weight=config.fitness.forces,
            energy_weight=config.fitness.energies,
            references=references,
            stress_weight=config.fitness.stresses,
        )
        problem = FitProblem.from_frames(search_frames, cutoff, species, **weights)
        if target is not None and target.weight > 0:
            problem = replace(problem, properties=target)
        if problem.geometry.n_pairs == 0:
            raise EvopotError(
                f"{search_frames.source}: no atom of the {len(search_frames)} frames the search fits has a neighbour "
                f"within cutoff.radius ({cutoff.radius:g} Å), so no formula can be fitted; raise the radius or check "
                f"the positions' units (Å)"
            )
        if in_memory:
            stored = {name: Path(config.output).resolve() / "data" / f"{name}.extxyz" for name in in_memory}
            config = config.model_copy(update={"data": config.data.model_copy(update=stored)})
        unstarted = RunDirectory(config.output)
        if resume and unstarted.config.is_file() and not unstarted.checkpoint.exists():
            resume = False  # killed before its first checkpoint: there is nothing to continue, so it starts afresh
        run = _prepare_run_directory(config, resume, overwrite)
        if executor.workers > 1:
            run.append_log(
                f"fitting on {executor.workers} Dask workers"
                + (f"; dashboard {executor.dashboard}" if executor.dashboard else "")
            )
            # each basis compiled once between the workers and this process (pruning), not in each
            folder = stack.enter_context(compiled.shared_folder(run.path / COMPILED_FOLDER))
            problem = replace(problem, compiled=str(folder))
        scorer = Scorer(problem, config.fitness.max_evaluations, 2 * space.limits.max_nodes, executor)
        setup = EngineSetup(space, config, problem, scorer, cutoff, run.path, run.append_log)
        if resume:
            engine, totals = resume_engine(factory, setup, run)
            scorer.restore(totals.get("fitted", []))
            clock.before = float(totals.get("wall_time_s", 0.0))
            write_atomic(run.config, config.to_yaml())  # the new run length, once the checkpoint is known good
            run.append_log(f"resumed at generation {engine.generation}")
        else:
            if in_memory:  # as given, before the split: a rerun splits them the same way
                for name, frames in in_memory.items():
                    write_frames(frames, stored[name])
            run.append_log(f"evopot {__version__} search, seed {config.seed}, search space {space_path}")
            run.append_log("dataset " + json.dumps(dataset.summary()))
            if target is not None:
                run.append_log("properties " + target.describe())
            engine = factory.start(setup)
            _after_generation(run, engine, scorer, config, clock)

        bar = _progress(progress, e.generations, engine.generation, executor)
        try:
            while not engine.done():
                if e.time_limit is not None and clock.seconds() > e.time_limit:
                    run.append_log(
                        f"time limit of {e.time_limit:g} s reached after generation {engine.generation}; stopping there"
                    )
                    break
                engine.step()
                _after_generation(run, engine, scorer, config, clock)
                if bar is not None:
                    last = engine.history[-1]
                    bar.update(engine.generation - bar.n)  # an epoch of islands is several generations
                    bar.show(best=f"{last.best_loss:.4g}", front=last.front_size, fits=scorer.fits)
        finally:
            executor.progress = None
            if bar is not None:
                bar.close()

        # the front refitted on the whole training set: the search's own problem (its geometry
        # built, on the workers already) unless the search fitted a subset of the frames
        full = (
            problem
            if search_frames is dataset.train
            else replace(FitProblem.from_frames(dataset.train, cutoff, species, **weights), compiled=problem.compiled)
        )
        refit = Scorer(full, max(config.fitness.max_evaluations, 100), 10**9, executor)
        found = engine.front()
        starts = [scored.candidate.with_initial(scored.fit.nonlinear) for scored in found]
        refit.score_many(starts)  # the refits of the front at once, on the workers
        refit.score_many(starts, max_evaluations=0)
        geometries = {
            name: full.geometry if name == "train" else build_geometry(frames, cutoff.radius, species)
            for name, frames in dataset.splits().items()
        }
        shortest = min(
            float(g.pair_distances.min()) for g in geometries.values() if g.n_pairs
        )  # Å, for export table limits
        front = []
        for k, (scored, start) in enumerate(zip(found, starts)):
            size, loss, candidate = scored.complexity, scored.loss, scored.candidate
            # Refine θ on the whole training set, but keep the search's θ (linear part
            # refitted) when refinement lands somewhere worse, as fragile forms can, and
            # the search's fit when neither refit passes the front's rules.
            options = [
                o
                for o in (refit.score_candidate(start), refit.score_candidate(start, max_evaluations=0))
                if o.fit.ok and not o.refused
            ]
            final = min(options, key=lambda o: o.loss) if options else scored
            origin = "distilled" if candidate.structure in engine.seeded else "search"
            potential = final.to_potential(
                full,
                {
                    "member": k,
                    "search_loss": loss,
                    "seed": config.seed,
                    "search_space": str(space_path),
                    "shortest_distance": shortest,
                    "engine": e.name,
                    "origin": origin,
                },
            )
            member_errors = {
                name: errors(evaluate(potential, geometry), dataset.splits()[name])
                for name, geometry in geometries.items()
            }
            values, penalty = target.judge(potential) if target is not None else ({}, 0.0)
            cost = potential.operations_per_atom(geometries["train"])
            front.append(FrontMember(k, size, loss, potential, member_errors, values, penalty, cost))
        wall = clock.seconds()
        # simplifying the front's formulas for front.csv takes seconds of sympy: on the workers
        formulas = scorer.map(_simplified_member, [m.potential for m in front])
        _write_results(run, config, dataset, front, formulas, engine, wall, target)
        return SearchResult(run.path, front, dataset, engine.generation, wall, target)


def property_target(config: SearchConfig, dataset: Dataset, where: str) -> PropertyTarget | None:
    """The crystal properties the search steers towards: the config's ``properties``
    values over those of the fitting data's Elastic frames (train and validation); by
    default the data's, for one-element data that have Elastic frames; None when there
    are none (or ``properties`` is absent and the data have none)."""
    settings = config.properties
    species = dataset.species
    unusable = None
    if len(species) != 1:
        unusable = f"crystal properties need one-element data, and the data have {', '.join(species)}"
    else:
        try:
            crystal(species[0])
        except EvopotError as exc:
            unusable = str(exc)
    if unusable is not None:
        if settings is None:
            return None
        raise EvopotError(f"{where}: properties: {unusable}; remove the section")
    found = None
    if settings is None or settings.from_data:
        found = reference_from_frames(Frames.joined([dataset.train, dataset.validation], dataset.train.source))
    if settings is None:
        return None if found is None else PropertyTarget(species[0], found.values, 1.0, {}, found.source)
    values = {**(found.values if found else {}), **settings.given()}
    if not values:
        raise EvopotError(
            f"{where}: properties: no reference values: "
            + ("the data have no Elastic frames; " if settings.from_data else "")
            + "give a0, B, C11, C12 or C44_unrelaxed (your DFT values), or remove the section"
        )
    sources = [s for s in (found.source if found else "", "config" if settings.given() else "") if s]
    return PropertyTarget(species[0], values, settings.weight, settings.tolerances(), "; ".join(sources))


def _prepare_run_directory(config: SearchConfig, resume: bool, overwrite: bool) -> RunDirectory:
    run = RunDirectory(config.output)
    if run.path.exists() and not run.path.is_dir():
        raise EvopotError(f"{run.path}: output is not a folder (a file of that name exists); choose another 'output'")
    for parent in run.path.parents:
        if parent.exists() and not parent.is_dir():
            raise EvopotError(f"{run.path}: output: {parent} is not a folder; choose another 'output'")
    if resume:
        if not run.config.is_file():
            raise EvopotError(f"{run.path}: nothing to resume (no config.yaml); run without --resume")
        saved = run.config.read_text(errors="replace")
        if _without_run_length(saved) != _without_run_length(config.to_yaml()):
            raise EvopotError(
                f"{run.path}: the config differs from the one this run was started with ({run.config}); only "
                f"engine.generations, time_limit, workers, scheduler and scheduler_file may change on --resume"
            )
        return run
    if run.path.exists() and any(run.path.iterdir()):
        unstarted = run.config.is_file() and not run.checkpoint.exists() and not run.front.exists()
        if not (overwrite or unstarted):
            raise EvopotError(
                f"{run.path}: output folder already holds a run; continue it with --resume, choose another "
                f"'output', or pass --overwrite to replace it"
            )
        if not run.config.is_file():  # --overwrite replaces a run, never a folder of someone's files
            raise EvopotError(
                f"{run.path}: output folder holds files but no evopot run (no config.yaml); --overwrite only "
                f"replaces a run: choose another 'output'"
            )
        # a run killed before its first checkpoint starts again from nothing. In an order that a kill
        # at any moment leaves a folder --resume can use: the front (the run is then one that resumes
        # from its checkpoint), the checkpoint (then it is a run killed before its first checkpoint,
        # which starts afresh), the new config in place of the old, then everything else
        for marker in (run.front, run.checkpoint):
            marker.unlink(missing_ok=True)
        write_atomic(run.config, config.to_yaml())
        for item in run.path.iterdir():
            if item != run.config:
                shutil.rmtree(item) if item.is_dir() else item.unlink()
    run.potentials.mkdir(parents=True, exist_ok=True)
    write_atomic(run.config, config.to_yaml())
    return run


@dataclass
class Clock:
    """Seconds of search over every session of a run: a resumed run adds to the total
    its checkpoint holds (``before``)."""

    before: float = 0.0
    started: float = field(default_factory=time.perf_counter)

    def seconds(self) -> float:
        return self.before + time.perf_counter() - self.started


def resume_engine(factory: EngineFactory, setup: EngineSetup, run: RunDirectory) -> tuple[Engine, dict]:
    """The engine of ``run``'s checkpoint and the run's totals saved with it (wall
    time, fitted candidates); one line naming the checkpoint when it does not hold
    what was saved (nothing is written until it does)."""
    checkpoint = run.read_checkpoint()
    try:
        if not isinstance(checkpoint, dict):
            raise TypeError(f"a JSON {type(checkpoint).__name__}, not an object")
        totals = checkpoint.get("totals", {})
        if not isinstance(totals, dict) or not isinstance(totals.get("fitted", []), list):
            raise TypeError("totals: expected an object with wall_time_s and fitted")
        float(totals.get("wall_time_s", 0.0))
        return factory.resume(setup, checkpoint), totals
    except EvopotError as exc:
        raise EvopotError(f"{run.checkpoint}: {exc}") from None
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, SyntaxError) as exc:
        detail = brief(f"{type(exc).__name__}: {exc}")
        raise EvopotError(
            f"{run.checkpoint}: the checkpoint is damaged ({detail}); restore it or start a new run in another "
            f"output folder"
        ) from None


def _without_run_length(text: str) -> str:
    """A config's YAML without the lines that may change on --resume."""
    changeable = ("generations:", "time_limit:", "workers:", "scheduler:", "scheduler_file:")
    return "\n".join(line for line in text.splitlines() if not line.strip().startswith(changeable))


def _after_generation(run: RunDirectory, engine: Engine, scorer: Scorer, config: SearchConfig, clock: Clock) -> None:
    last = engine.history[-1]
    last.evaluations = scorer.fits
    if last.restarted:
        run.append_log(
            f"generation {last.generation:4d}  the best loss gained < {RESTART_GAIN:.0%} in "
            f"{config.engine.restart} generations: population restarted from random trees (the front is "
            f"kept)"
        )
    rejected = getattr(engine, "rejected", {})
    refused = (
        "  inadmissible " + ", ".join(f"{rule} {count}" for rule, count in sorted(rejected.items())) if rejected else ""
    )
    run.append_log(
        f"generation {last.generation:4d}  best {last.best_loss:.6g}  front {last.front_size:3d}  fits "
        f"{scorer.fits:6d}{refused}  {last.best_formula}"
    )
    run.write_rows(
        run.history,
        ["generation", "best_loss", "front_size", "evaluations", "restarted", "best_formula"],
        [vars(h) for h in engine.history],
    )
    run.write_checkpoint({**engine.state(), "totals": {"wall_time_s": clock.seconds(), "fitted": scorer.state()}})


def _progress(enabled: bool, total: int, done: int, executor):
    """The generations' progress bar (None when not ``enabled``): best loss, front size
    and fits after each generation; with Dask workers also the workers and the tasks
    in flight while a generation's fits run, and the dashboard's address."""
    if not enabled:
        return None
    from tqdm import tqdm

    bar = tqdm(total=total, initial=done, desc="evopot search", unit="gen", dynamic_ncols=True)
    shown = {}

    def show(**values):
        shown.update(values)
        bar.set_postfix(shown)

    bar.show = show
    if executor.workers > 1:
        show(workers=executor.workers, tasks=0)
        executor.progress = lambda tasks: show(workers=executor.workers, tasks=tasks)
        if executor.dashboard:
            bar.write(f"Dask dashboard: {executor.dashboard}")
    return bar


def _write_results(
    run: RunDirectory,
    config: SearchConfig,
    dataset: Dataset,
    front: list[FrontMember],
    formulas: list[str],
    engine: Engine,
    wall: float,
    target: PropertyTarget | None = None,
) -> None:
    """front.csv, summary.json and the log's last line; ``formulas`` the members'
    :func:`simplified_formula`."""
    rows = []
    for m, formula in zip(front, formulas):
        path = run.member_path(m.member)
        m.potential.save(path)
        row = {
            "member": m.member,
            "complexity": m.complexity,
            "search_loss": f"{m.search_loss:.6g}",
            "operations_per_atom": f"{m.operations:.6g}",
            "formula": formula,
            "potential": str(path.relative_to(run.path)),
        }
        for split, values in m.errors.items():
            for metric, value in values.items():
                row[f"{split}_{metric}"] = f"{value:.6g}"
        for name, value in m.properties.items():
            row[name.replace(" ", "_")] = f"{value:.6g}"
        if m.properties or m.penalty:
            row["property_penalty"] = f"{m.penalty:.6g}"
        rows.append(row)
    run.write_rows(run.front, FRONT_COLUMNS, rows)
    summary = {
        "evopot_version": __version__,
        "seed": config.seed,
        "generations": engine.generation,
        "wall_time_s": wall,
        "dataset": dataset.summary(),
        "baselines": {name: zero_force_errors(frames) for name, frames in dataset.splits().items()},
        "properties_reference": None
        if target is None
        else {"element": target.element, "values": target.reference, "weight": target.weight, "source": target.source},
        "front": [
            {
                "member": m.member,
                "complexity": m.complexity,
                "search_loss": m.search_loss,
                "operations_per_atom": m.operations,
                "errors": m.errors,
                "properties": m.properties,
                "property_penalty": m.penalty,
                "formula": formula,
            }
            for m, formula in zip(front, formulas)
        ],
    }
    write_atomic(run.summary, json.dumps(summary, indent=2) + "\n")
    run.append_log(f"done: {len(front)} front members, {engine.generation} generations, {wall:.1f} s")


def simplified_formula(potential: Potential, digits: int = 4) -> str:
    """The formula with constants rounded to ``digits`` significant figures and
    simplified by sympy (kept as fitted when simplifying makes it longer), as one
    string; with several terms each is labelled (``V(r) = …; V3(rij, rik, costheta) = …``)."""
    parts = []
    for term in potential.terms:
        text = f"{term.spec.label} = {_simplified(term.numeric(), digits)}"
        if term.density is not None:
            text += f", {term.spec.density_label} = {_simplified(term.numeric(term.density), digits)}"
        parts.append(text if len(potential.terms) > 1 else text.split(" = ", 1)[1])
    return "; ".join(parts)


def _simplified_member(_problem, potential: Potential) -> str:
    """:func:`simplified_formula` as an executor task (the fit problem unused)."""
    return simplified_formula(potential)


def _simplified(expr: sympy.Expr, digits: int) -> str:
    rounded = round_floats(expr, digits)
    try:
        simpler = round_floats(sympy.simplify(rounded), digits)
    except Exception:  # simplify can fail on odd expressions; the rounded one is still right
        simpler = rounded
    return sympy.sstr(min([rounded, simpler], key=complexity))
