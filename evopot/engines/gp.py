"""Genetic programming on DEAP: NSGA-II over (fitness, complexity).

The loop is the textbook (μ + λ) algorithm. Parents are drawn by NSGA-II's crowded
tournament, varied by one-point crossover and one of several mutations (subtree,
node replacement, shrink, insertion, or a Gaussian nudge of the constants), and the
next population is the NSGA-II selection of parents and offspring together. Bloat is
held by static limits on tree height and node count. Fitted nonlinear constants are
written back into the trees (Lamarckian), so offspring start from tuned constants.
Every random choice comes from one ``random.Random`` seeded from the config; its state
is saved in each checkpoint so a resumed run continues exactly.
"""

from __future__ import annotations

import operator
import random
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from deap import base, creator, gp, tools

from evopot.errors import EvopotError
from evopot.fitting import FitResult
from evopot.scoring import Scored
from evopot.engines.expression import Candidate, build_primitive_set, decompose, tree_from_string, tree_to_sympy
from evopot.engines.space import SearchSpace

if not hasattr(creator, "EvopotFitness"):
    creator.create("EvopotFitness", base.Fitness, weights=(-1.0, -1.0))
    creator.create("EvopotTree", gp.PrimitiveTree, fitness=creator.EvopotFitness)

WORST_LOSS = 1e30
WORST_SIZE = 10**6


@dataclass
class GPSettings:
    population: int = 100
    generations: int = 20
    crossover: float = 0.6
    mutation: float = 0.3
    target_error: float = 0.0
    seed: int = 0
    patience: int = 3


@dataclass
class GenerationReport:
    """What one generation did: best loss, front size, fits so far."""

    generation: int
    best_loss: float
    best_formula: str
    front_size: int
    evaluations: int


@dataclass
class Archive:
    """Best scored formula at each complexity: the Pareto front is read from it."""

    best: dict[int, Scored] = field(default_factory=dict)

    def update(self, scored: Scored) -> bool:
        """Keep ``scored`` if it beats what the archive has at its complexity."""
        if not scored.fit.ok:
            return False
        current = self.best.get(scored.complexity)
        if current is None or scored.loss < current.loss:
            self.best[scored.complexity] = scored
            return True
        return False

    def front(self) -> list[Scored]:
        """Members in increasing complexity, each strictly better than all simpler ones."""
        out, best_so_far = [], float("inf")
        for size in sorted(self.best):
            if self.best[size].loss < best_so_far:
                out.append(self.best[size])
                best_so_far = self.best[size].loss
        return out


class GPEngine:
    """The GP search. ``score(candidate)`` fits one formula; it is the only contact
    with the physics. ``prune(scored)``, when given, returns simpler formulas inside a
    fitted one; they enter the archive (not the population)."""

    def __init__(self, space: SearchSpace, settings: GPSettings, score: Callable[..., Scored], prune: Callable[[Scored], list[Scored]] | None = None):
        self.space = space
        self.settings = settings
        self.score = score
        self.prune = prune
        self.rng = random.Random(settings.seed)
        self.pset = build_primitive_set(space)
        self.archive = Archive()
        self.history: list[GenerationReport] = []
        self.population: list = []
        self.generation = 0
        self.toolbox = self._toolbox()

    # -- operators -----------------------------------------------------------------
    def _toolbox(self) -> base.Toolbox:
        limits = self.space.limits
        tb = base.Toolbox()
        tb.register("expr", gp.genHalfAndHalf, pset=self.pset, min_=limits.init_min_height, max_=limits.init_max_height)
        tb.register("individual", self._new_individual, tb.expr)
        tb.register("mate", gp.cxOnePoint)
        tb.register("expr_mut", gp.genFull, pset=self.pset, min_=0, max_=2)
        mutations = [
            lambda ind: gp.mutUniform(ind, expr=tb.expr_mut, pset=self.pset),
            lambda ind: gp.mutNodeReplacement(ind, pset=self.pset),
            gp.mutShrink,
            lambda ind: gp.mutInsert(ind, pset=self.pset),
            self._mutate_constants,
        ]
        tb.register("mutate", lambda ind: random.choice(mutations)(ind))
        for name in ("mate", "mutate"):
            tb.decorate(name, gp.staticLimit(key=operator.attrgetter("height"), max_value=limits.max_height))
            tb.decorate(name, gp.staticLimit(key=len, max_value=limits.max_nodes))
        return tb

    def _new_individual(self, generate):
        """A random tree within the size limits (drawn again until it fits)."""
        limits = self.space.limits
        while True:
            individual = creator.EvopotTree(generate())
            if len(individual) <= limits.max_nodes and individual.height <= limits.max_height:
                return individual

    def _mutate_constants(self, individual):
        for node in individual:
            if isinstance(node, gp.Terminal) and not isinstance(node.value, str) and random.random() < 0.5:
                node.value = round(node.value * (1 + random.gauss(0, 0.2)) + random.gauss(0, 0.1), 6)
        return (individual,)

    # -- evaluation ------------------------------------------------------------------
    def evaluate(self, individuals) -> None:
        for individual in individuals:
            if individual.fitness.valid:
                continue
            try:
                candidate = decompose(*tree_to_sympy(individual))
            except Exception:  # sympy raises many kinds on odd trees; such a tree is simply unfit
                individual.structure = str(individual)
                individual.fitness.values = (WORST_LOSS, WORST_SIZE)
                continue
            scored = self.score(candidate)
            individual.structure = candidate.structure
            if scored.fit.ok:
                self._write_back(individual, candidate, scored)
                individual.fitness.values = (scored.loss, scored.complexity)
                if self.archive.update(scored) and self.prune is not None:
                    for simpler in self.prune(scored):
                        self.archive.update(simpler)
            else:
                individual.fitness.values = (WORST_LOSS, WORST_SIZE)

    @staticmethod
    def _write_back(individual, candidate: Candidate, scored: Scored) -> None:
        # The candidate's own sources: a cached fit may come from a tree whose
        # constants sit at other node indices.
        for source, value in zip(candidate.sources, scored.fit.nonlinear):
            if source:
                individual[int(source[1:])].value = float(value)

    # -- the loop --------------------------------------------------------------------
    def initialise(self) -> None:
        with _seeded(self.rng):
            self.population = self._select([])
        self._record()

    def step(self) -> GenerationReport:
        """One generation: select, vary, evaluate, select survivors."""
        s = self.settings
        with _seeded(self.rng):
            parents = tools.selTournamentDCD(self.population, len(self.population))
            offspring = [self.toolbox.clone(ind) for ind in parents]
            for k in range(0, len(offspring) - 1, 2):
                if random.random() < s.crossover:
                    # staticLimit hands back a parent copy when a child is too big, so
                    # keep what mate returns, not the arguments it changed in place.
                    offspring[k], offspring[k + 1] = self.toolbox.mate(offspring[k], offspring[k + 1])
                    del offspring[k].fitness.values, offspring[k + 1].fitness.values
            for k, ind in enumerate(offspring):
                if random.random() < s.mutation:
                    (offspring[k],) = self.toolbox.mutate(ind)
                    del offspring[k].fitness.values
            self.evaluate(offspring)
            self.population = self._select(self.population + offspring)
        self.generation += 1
        return self._record()

    def _select(self, pool) -> list:
        """NSGA-II survivors of ``pool`` after removing copies; fresh random
        individuals fill the population when too few distinct ones are left."""
        size = self.settings.population
        pool = self._distinct(pool)
        for _ in range(20):
            if len(pool) >= size:
                break
            immigrants = [self.toolbox.individual() for _ in range(size - len(pool))]
            self.evaluate(immigrants)
            pool = self._distinct(pool + immigrants)
        if not pool:
            raise EvopotError("no candidate formula could be fitted to the data (every fit gave non-finite numbers); check the data units and the search space's operators")
        while len(pool) < size:
            pool = pool + [self.toolbox.clone(ind) for ind in pool[: size - len(pool)]]
        return tools.selNSGA2(pool, size)

    @staticmethod
    def _distinct(individuals) -> list:
        """One individual per formula structure (the best of them), failed ones dropped:
        keeps the population from filling with copies of one formula. Fresh random
        individuals make up the numbers."""
        best = {}
        for ind in individuals:
            if ind.fitness.values[0] >= WORST_LOSS:
                continue
            current = best.get(ind.structure)
            if current is None or ind.fitness.values[0] < current.fitness.values[0]:
                best[ind.structure] = ind
        return list(best.values())

    def _record(self) -> GenerationReport:
        front = self.archive.front()
        best = min(front, key=lambda m: m.loss) if front else None
        report = GenerationReport(
            generation=self.generation,
            best_loss=best.loss if best else float("inf"),
            best_formula=str(best.candidate.formula()) if best else "",
            front_size=len(front),
            evaluations=0,
        )
        self.history.append(report)
        return report

    def done(self) -> bool:
        """Out of generations, or at the target error for ``patience`` generations (the
        extra generations let simpler formulas with the same error surface)."""
        recent = self.history[-(self.settings.patience + 1):]
        reached = len(recent) == self.settings.patience + 1 and all(h.best_loss <= self.settings.target_error for h in recent)
        return reached or self.generation >= self.settings.generations

    # -- checkpoints -----------------------------------------------------------------
    def state(self) -> dict:
        """Everything needed to continue: population (with fitness and crowding), archive
        trees, history and the random state. Plain JSON types only."""
        return {
            "generation": self.generation,
            "random_state": _jsonable(self.rng.getstate()),
            "population": [
                {"tree": str(ind), "structure": ind.structure, "fitness": list(ind.fitness.values), "crowding": getattr(ind.fitness, "crowding_dist", 0.0)}
                for ind in self.population
            ],
            "archive": [
                {
                    "candidate": scored.candidate.to_dict(),
                    "loss": scored.loss,
                    "complexity": scored.complexity,
                    "linear": scored.fit.linear.tolist(),
                    "nonlinear": scored.fit.nonlinear.tolist(),
                    "reference_energies": scored.fit.reference_energies.tolist(),
                }
                for scored in self.archive.best.values()
            ],
            "history": [vars(h) for h in self.history],
        }

    def restore(self, state: dict) -> None:
        self.generation = int(state["generation"])
        self.rng.setstate(_tuplify(state["random_state"]))
        self.population = []
        for item in state["population"]:
            ind = creator.EvopotTree(tree_from_string(item["tree"], self.pset))
            ind.fitness.values = tuple(item["fitness"])
            ind.fitness.crowding_dist = float(item["crowding"])
            ind.structure = item["structure"]
            self.population.append(ind)
        for item in state["archive"]:
            fit = FitResult(True, float(item["loss"]), np.array(item["linear"]), np.array(item["nonlinear"]), np.array(item["reference_energies"]))
            self.archive.best[int(item["complexity"])] = Scored(Candidate.from_dict(item["candidate"]), fit, int(item["complexity"]))
        self.history = [GenerationReport(**h) for h in state["history"]]


class _seeded:
    """Run DEAP's operators (which call the module-level ``random``) from our own
    generator, and put the global state back afterwards."""

    def __init__(self, rng: random.Random):
        self.rng = rng

    def __enter__(self):
        self.saved = random.getstate()
        random.setstate(self.rng.getstate())

    def __exit__(self, *exc):
        self.rng.setstate(random.getstate())
        random.setstate(self.saved)


def _jsonable(value):
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value


def _tuplify(value):
    if isinstance(value, list):
        return tuple(_tuplify(v) for v in value)
    return value
