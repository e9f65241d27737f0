"""Search engines behind one small interface, chosen by the config's ``engine.name``.

An :class:`Engine` evolves formulas generation by generation and keeps the Pareto
archive the run's front is read from; an :class:`EngineFactory` checks a config before
anything is written, starts a new search (its first population evaluated) and
restores one from its checkpoint. ``ENGINES`` maps each name to its factory; a new
engine is a factory registered with :func:`register_engine` (docs/extending.md).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from evopot.config.schema import SearchConfig
from evopot.errors import EvopotError
from evopot.model.cutoff import Cutoff
from evopot.search.engines.gp import GenerationReport, GPEngine, GPSettings
from evopot.search.engines.islands import IslandEngine
from evopot.search.engines.space import SearchSpace
from evopot.search.fitting import FitProblem
from evopot.search.rundir import write_atomic
from evopot.search.scoring import Scored, Scorer


class Engine(Protocol):
    """What the search loop (:func:`evopot.search.run.search`) asks of an engine."""

    generation: int
    history: list[GenerationReport]
    #: structures the engine placed itself (reported with origin "distilled")
    seeded: set[str]

    def initialise(self, seeds: list[list[str]] | None = None) -> None:
        """The first population (with ``seeds``, one tree string per slot, placed first), evaluated."""

    def step(self) -> GenerationReport:
        """Evolve one generation."""

    def done(self) -> bool:
        """Whether the engine's own stopping rule (generations, target, patience) holds."""

    def front(self) -> list[Scored]:
        """The Pareto front of fitted formulas found so far, simplest first."""

    def state(self) -> dict:
        """A JSON-able checkpoint that :meth:`restore` continues from exactly."""

    def restore(self, state: dict) -> None:
        """Continue exactly from :meth:`state`'s checkpoint."""


@dataclass(frozen=True)
class EngineSetup:
    """Everything an engine is built from: the search space, the config, the fit
    problem of the search frames with its ``scorer``, the cutoff, the run directory's
    ``folder`` (for the engine's own records) and ``log`` (one line to the run log)."""

    space: SearchSpace
    config: SearchConfig
    problem: FitProblem
    scorer: Scorer
    cutoff: Cutoff
    folder: Path
    log: object


class EngineFactory(Protocol):
    def check(self, space: SearchSpace, config: SearchConfig, where: str) -> None:
        """Refuse, with an error naming ``where``, what this engine cannot run, before
        the run directory is written."""

    def start(self, setup: EngineSetup) -> Engine:
        """A new engine with its first population evaluated."""

    def resume(self, setup: EngineSetup, checkpoint: dict) -> Engine:
        """The engine of a checkpointed run, as it was."""


def gp_engine(setup: EngineSetup) -> GPEngine | IslandEngine:
    """The GP engine of ``setup``'s config (``engine.population``, ``generations``, …;
    with ``engine.islands`` above 1, its islands as tasks on the workers)."""
    e = setup.config.engine
    settings = GPSettings(
        e.population,
        e.generations,
        e.crossover,
        e.mutation,
        e.target_error,
        setup.config.seed,
        e.patience,
        e.restart,
    )
    scorer = setup.scorer
    if e.islands > 1:
        return IslandEngine(
            setup.space, settings, scorer, setup.cutoff.radius, e.islands, e.migration.every, e.migration.count
        )
    return GPEngine(
        setup.space,
        settings,
        scorer.score_candidate,
        scorer.prune,
        setup.cutoff.radius,
        scorer.score_stream,
        scorer.judge if setup.problem.properties is not None else None,
        scorer.operations,
    )


class GP:
    """``engine: {name: gp}``: genetic programming (DEAP) from a random population."""

    def check(self, space, config, where):
        pass

    def start(self, setup):
        engine = gp_engine(setup)
        engine.initialise()
        return engine

    def resume(self, setup, checkpoint):
        engine = gp_engine(setup)
        engine.restore(checkpoint)
        return engine


class Guided(GP):
    """``engine: {name: guided}``: a separable neural potential fitted first, its learned
    functions distilled into formulas that join GP's first population
    (:mod:`evopot.search.engines.guided`); ``distilled.json`` in the run directory keeps
    the record and which structures came from it."""

    record = "distilled.json"

    def check(self, space, config, where):
        from evopot.search.engines.guided import check_distiller

        check_distiller(space, config.engine.guided, where)

    def start(self, setup):
        from evopot.search.engines.guided import guided_seeds

        engine = gp_engine(setup)
        seeds, distilled, timings = guided_seeds(
            setup.space,
            setup.problem,
            setup.cutoff,
            setup.config.engine.guided,
            setup.config.seed,
            log=setup.log,
            executor=setup.scorer.executor,
        )
        engine.initialise(seeds)
        record = {"slots": distilled.slots, "seeds": seeds, "seeded_structures": sorted(engine.seeded), **timings}
        write_atomic(setup.folder / self.record, json.dumps(record, indent=1))
        setup.log(f"guided: {len(engine.seeded)} distilled individuals fitted and placed in the first population")
        return engine

    def resume(self, setup, checkpoint):
        engine = super().resume(setup, checkpoint)  # a resumed run distils nothing
        path = setup.folder / self.record
        if path.is_file():
            engine.seeded = set(json.loads(path.read_text()).get("seeded_structures", []))
        return engine


ENGINES: dict[str, EngineFactory] = {"gp": GP(), "guided": Guided()}


def register_engine(name: str, factory: EngineFactory) -> None:
    """Make ``engine: {name: NAME}`` run ``factory``'s engine."""
    ENGINES[name] = factory


def engine_factory(name: str, where: str = "config") -> EngineFactory:
    """The factory registered as ``name``; an error naming the config field otherwise."""
    if name not in ENGINES:
        raise EvopotError(f"{where}: engine.name: '{name}' is unknown; known engines: {sorted(ENGINES)}")
    return ENGINES[name]
