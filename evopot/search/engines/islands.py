"""Islands: K GP populations evolving apart, each as a task on the executor's workers.

``engine.islands: K`` runs K :class:`~evopot.search.engines.gp.GPEngine` populations,
each with its own generator (island 0's is the one-population search's own), archive
and history. The search goes in epochs of ``migration.every`` generations: every
island, as one task, receives the ``migration.count`` best formulas of the island
before it in a ring, then evolves the epoch's generations on its worker (variation,
fits, pruning and selection: nothing of the search stays serial in this process, so
K islands keep K workers busy). Between epochs this process merges the islands'
archives into the front and checkpoints every island.

An island's path depends on its own state and its migrants only, never on which
worker ran it or when: the same seed gives the same front on any number of workers,
and ``--resume`` continues exactly from the last finished epoch.
"""

from __future__ import annotations

from dataclasses import replace

from evopot.errors import EvopotError
from evopot.search.engines.gp import Archive, GenerationReport, GPEngine, GPSettings, emigrants
from evopot.search.engines.space import SearchSpace
from evopot.search.fitting import FitProblem
from evopot.search.scoring import Scored, Scorer, worker_scorer


def _evolve(problem: FitProblem, job: tuple) -> tuple[dict, list[str], list[str]]:
    """One island's epoch on a worker: started afresh (``state`` None, with ``seeds``)
    or restored and given its ``migrants``, then ``steps`` generations. Returns the
    island's state, the structures its seeds were fitted as, and the digests of the
    candidates it scored."""
    space, settings, radius, budgets, state, migrants, seeds, steps = job
    scorer = worker_scorer(problem, *budgets)
    judge = scorer.judge if problem.properties is not None else None
    engine = GPEngine(
        space, settings, scorer.score_candidate, scorer.prune, radius, scorer.score_stream, judge, scorer.operations
    )
    if state is None:
        engine.initialise(seeds)
    else:
        engine.restore(state)
        engine.receive(migrants)
    for _ in range(steps):
        engine.step()
    return engine.state(), sorted(engine.seeded), scorer.state()


class IslandEngine:
    """The search of ``settings`` on ``islands`` islands, fitted by ``scorer``'s
    executor (the :class:`~evopot.search.engines.registry.Engine` interface)."""

    def __init__(
        self,
        space: SearchSpace,
        settings: GPSettings,
        scorer: Scorer,
        radius: float | None,
        islands: int,
        every: int,
        count: int,
    ):
        if islands < 2:
            raise EvopotError("IslandEngine needs at least two islands; one is GPEngine itself")
        self.space, self.settings, self.scorer, self.radius = space, settings, scorer, radius
        self.every, self.count = every, count
        self.islands: list[dict] = [{} for _ in range(islands)]  # each island's GPEngine.state()
        self.archive = Archive(cost=self.scorer.operations)
        self.history: list[GenerationReport] = []
        self.generation = 0
        self.seeded: set[str] = set()

    def _run(self, starts: list[tuple[dict | None, list[dict], list | None]], steps: int) -> None:
        """Each island's epoch from (state, migrants, seeds), all at once on the workers."""
        budgets = (self.scorer.max_evaluations, self.scorer.max_complexity)
        jobs = [
            (self.space, replace(self.settings, island=k), self.radius, budgets, state, migrants, seeds, steps)
            for k, (state, migrants, seeds) in enumerate(starts)
        ]
        results = self.scorer.map(_evolve, jobs)
        self.islands = [state for state, _, _ in results]
        for _, seeded, scored in results:
            self.seeded.update(seeded)
            self.scorer.count(scored)
        self._merge()

    def _merge(self) -> None:
        """The front's archive: every island's, in the islands' order."""
        self.archive = Archive(cost=self.scorer.operations)
        for island in self.islands:
            self.archive.restore(island["archive"])

    def initialise(self, seeds: list[list[str]] | None = None) -> None:
        """Every island's first population (``seeds`` go to island 0)."""
        self._run([(None, [], seeds if k == 0 else None) for k in range(len(self.islands))], 0)
        self._record()

    def step(self) -> GenerationReport:
        """One epoch: migration (after the first epoch), then up to ``every``
        generations on every island; :attr:`generation` moves on by as many."""
        steps = max(1, min(self.every, self.settings.generations - self.generation))
        migrate = self.generation > 0
        starts = [
            (island, emigrants(self.islands[k - 1]["population"], self.count) if migrate else [], None)
            for k, island in enumerate(self.islands)
        ]
        before = self.generation
        self._run(starts, steps)
        self.generation += steps
        report = self._record()
        report.restarted = any(
            h["restarted"] and h["generation"] > before for island in self.islands for h in island["history"]
        )
        return report

    def _record(self) -> GenerationReport:
        report = self.archive.report(self.generation)
        self.history.append(report)
        return report

    def front(self) -> list[Scored]:
        return self.archive.front()

    @property
    def rejected(self) -> dict[str, int]:
        """Candidates refused as inadmissible, by rule, over every island."""
        total: dict[str, int] = {}
        for island in self.islands:
            for rule, count in island.get("rejected", {}).items():
                total[rule] = total.get(rule, 0) + count
        return dict(sorted(total.items()))

    def done(self) -> bool:
        """Out of generations, or at the target error for ``patience`` generations."""
        if self.generation >= self.settings.generations:
            return True
        reached = None
        for report in reversed(self.history):
            if report.best_loss > self.settings.target_error:
                break
            reached = report.generation
        return reached is not None and self.generation - reached >= self.settings.patience

    def state(self) -> dict:
        return {
            "generation": self.generation,
            "islands": self.islands,
            "history": [vars(h) for h in self.history],
        }

    def restore(self, state: dict) -> None:
        saved = state["islands"]
        if not isinstance(saved, list) or len(saved) != len(self.islands):
            count = len(saved) if isinstance(saved, list) else 0
            raise EvopotError(
                f"the checkpoint holds {count} islands but engine.islands is {len(self.islands)}; resume with the "
                f"run's own config"
            )
        for k, island in enumerate(saved):  # each island's state is checked as its engine reads it
            GPEngine(self.space, replace(self.settings, island=k), lambda c: None, radius=self.radius).restore(island)
        self.islands = saved
        self.generation = int(state["generation"])
        self.history = [GenerationReport(**h) for h in state["history"]]
        self._merge()
