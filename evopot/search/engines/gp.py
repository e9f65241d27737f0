"""Genetic programming on DEAP: NSGA-II over (fitness, complexity).

An individual is a list of trees, one per slot of the search space's terms (V(r);
g(cos θ) and h(r); V3; F(ρ) and f(r)). The loop is the textbook (μ + λ) algorithm:
parents are drawn by NSGA-II's crowded tournament, varied by crossover of one slot
(its whole tree swapped between the parents, or one-point crossover of the two trees)
and one of several mutations of one slot (subtree, node replacement, shrink,
insertion, or a Gaussian nudge of the constants), and the next population is
the NSGA-II selection of parents and offspring together, one individual per formula
structure, topped up with fresh random ones. Bloat is held by static limits on each
tree's height and node count. Fitted nonlinear constants are written back into the
trees (Lamarckian), so offspring start from tuned constants. Every random choice comes
from one ``random.Random`` seeded from the config; its state is saved in each
checkpoint so a resumed run continues exactly.
"""

from __future__ import annotations

import copy
import math
import random
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
import sympy
from deap import base, creator, gp, tools

from evopot.errors import EvopotError
from evopot.search.candidate import Candidate, decompose
from evopot.search.engines.expression import build_primitive_set, tree_from_string, tree_to_sympy
from evopot.search.engines.primitives import OPERATORS
from evopot.search.engines.space import SearchSpace, term_shapes
from evopot.search.fitting import FitResult
from evopot.search.scoring import Scored

if not hasattr(creator, "EvopotFitness"):
    creator.create("EvopotFitness", base.Fitness, weights=(-1.0, -1.0))
    creator.create("EvopotIndividual", list, fitness=creator.EvopotFitness)

WORST_LOSS = 1e30
WORST_SIZE = 10**6
#: Share of crossovers that swap one slot's whole tree between two parents (when the
#: search space has more than one slot); DEAP's one-point crossover never picks a root.
SLOT_SWAP = 0.5
#: A restart needs the best loss to have gained less than this share over the last
#: ``restart`` generations.
RESTART_GAIN = 0.01


@dataclass
class GPSettings:
    population: int = 100
    generations: int = 20
    crossover: float = 0.6
    mutation: float = 0.3
    target_error: float = 0.0
    seed: int = 0
    patience: int = 3
    restart: int = 0
    #: which island of a search with islands this population is (its generator's seed)
    island: int = 0


def island_generator(seed: int, island: int) -> random.Random:
    """The generator of island ``island``: island 0's is seeded with ``seed`` itself,
    so a search of one island is the plain search."""
    return random.Random(seed if island == 0 else f"{seed}/island {island}")


@dataclass
class GenerationReport:
    """What one generation did: best loss, front size, fits so far."""

    generation: int
    best_loss: float
    best_formula: str
    front_size: int
    evaluations: int
    restarted: bool = False


#: scores closer than this, relatively, tie: the archive keeps the cheaper formula
TIE_TOLERANCE = 1e-6


@dataclass
class Archive:
    """Best scored formula at each complexity: the Pareto front is read from it. Two
    formulas of one complexity whose scores tie (within ``TIE_TOLERANCE``) are told
    apart by ``cost``, when given: the operations per atom of evaluating them (POET's
    third objective; a pair term costs less than a three-body term of as many nodes)."""

    best: dict[int, Scored] = field(default_factory=dict)
    cost: Callable[[Scored], float] | None = None

    def improves(self, scored: Scored) -> bool:
        """Whether ``scored`` beats what the archive has at its complexity."""
        if not scored.fit.ok:
            return False
        current = self.best.get(scored.complexity)
        if current is None:
            return True
        if self.cost is not None and abs(scored.score - current.score) <= TIE_TOLERANCE * abs(current.score):
            mine, theirs = self.cost(scored), self.cost(current)
            if math.isfinite(mine) and math.isfinite(theirs) and mine != theirs:
                return mine < theirs
        return scored.score < current.score

    def leads(self, scored: Scored) -> bool:
        """Whether ``scored`` would be on the front: better than every formula as simple."""
        return scored.fit.ok and all(scored.score < s.score for c, s in self.best.items() if c <= scored.complexity)

    def update(self, scored: Scored) -> bool:
        """Keep ``scored`` if it beats what the archive has at its complexity."""
        if self.improves(scored):
            self.best[scored.complexity] = scored
            return True
        return False

    def state(self) -> list[dict]:
        """The archive as plain JSON (for checkpoints)."""
        return [
            {
                "candidate": scored.candidate.to_dict(),
                "loss": scored.loss,
                "complexity": scored.complexity,
                "penalty": scored.penalty,
                "linear": scored.fit.linear.tolist(),
                "nonlinear": scored.fit.nonlinear.tolist(),
                "reference_energies": scored.fit.reference_energies.tolist(),
            }
            for scored in self.best.values()
        ]

    def restore(self, items: list[dict]) -> None:
        """Add the entries of a saved :meth:`state`, in their order."""
        for item in items:
            fit = FitResult(
                True,
                float(item["loss"]),
                np.array(item["linear"]),
                np.array(item["nonlinear"]),
                np.array(item["reference_energies"]),
            )
            candidate = Candidate.from_dict(item["candidate"])
            self.update(Scored(candidate, fit, int(item["complexity"]), float(item.get("penalty", 0.0))))

    def report(self, generation: int) -> GenerationReport:
        """What the archive holds after ``generation``: its best loss and formula, its
        front's size (the fit count is the run's to fill in)."""
        front = self.front()
        best = min(front, key=lambda m: m.score) if front else None
        return GenerationReport(
            generation=generation,
            best_loss=best.score if best else float("inf"),
            best_formula=best.describe() if best else "",
            front_size=len(front),
            evaluations=0,
        )

    def front(self) -> list[Scored]:
        """Members in increasing complexity, each strictly better (in score) than all simpler ones."""
        out, best_so_far = [], float("inf")
        for size in sorted(self.best):
            if self.best[size].score < best_so_far:
                out.append(self.best[size])
                best_so_far = self.best[size].score
        return out


@dataclass(frozen=True)
class _Slot:
    term: int
    name: str
    pset: gp.PrimitiveSet
    envelope: float | None = None  # the radius rc when the slot is multiplied by exp(s/(r − rc))


class GPEngine:
    """The GP search. ``score(candidate)`` fits one formula; it is the only contact
    with the physics. ``prune(scored)``, when given, returns simpler formulas inside a
    fitted one; they enter the archive (not the population), and are pruned in turn.
    ``cost(scored)``, when given, breaks the archive's ties (:class:`Archive`)."""

    def __init__(
        self,
        space: SearchSpace,
        settings: GPSettings,
        score: Callable[..., Scored],
        prune: Callable[[Scored], list[Scored]] | None = None,
        radius: float | None = None,
        score_stream: Callable[[Iterable[Candidate | None], int], Iterator[Scored | None]] | None = None,
        judge: Callable[[Scored], Scored] | None = None,
        cost: Callable[[Scored], float] | None = None,
    ):
        self.space = space
        self.cost = cost
        self.score_stream = score_stream or (
            lambda candidates, count: (None if c is None else score(c) for c in candidates)
        )
        self.settings = settings
        self.score = score
        self.prune = prune
        self.judge = judge
        self.rng = island_generator(settings.seed, settings.island)
        self.shapes = term_shapes(space)
        self.slots = []
        for t, (spec, shape) in enumerate(zip(space.terms, self.shapes)):
            rc = shape.cutoff.radius if shape.cutoff else radius
            for slot in shape.slots:
                enveloped = spec.envelope == "vanish" and slot.variables == ("r",)
                if enveloped and rc is None:
                    raise EvopotError(
                        f"term {t + 1} of search space {space.name!r} has envelope: vanish, which needs the "
                        f"cutoff radius"
                    )
                pset = build_primitive_set(
                    spec.operators.get(slot.name, space.operators),
                    slot.variables,
                    space.constants.low,
                    space.constants.high,
                    f"{slot.name}{t}",
                    rc,
                )
                self.slots.append(_Slot(t, slot.name, pset, rc if enveloped else None))
        self.allowed = _allowed_functions(space, self.shapes, radius)
        self.rejected: dict[str, int] = {}  # candidates refused as inadmissible, by rule
        # candidates already pruned (an inadmissible formula can improve the archive again
        # and again; pruning it again gives the same formulas): not saved, the front is the
        # same without it
        self._pruned: set[str] = set()
        self.archive = Archive(cost=self.cost)
        self.history: list[GenerationReport] = []
        self.population: list = []
        self.generation = 0
        self.last_restart = 0
        self.seeded: set[str] = set()

    # -- operators -----------------------------------------------------------------
    def new_individual(self):
        """One random tree per slot, each within the size limits."""
        return creator.EvopotIndividual([self._new_tree(slot.pset) for slot in self.slots])

    def _new_tree(self, pset):
        limits = self.space.limits
        while True:
            tree = gp.PrimitiveTree(gp.genHalfAndHalf(pset, limits.init_min_height, limits.init_max_height))
            if self._fits(tree):
                return tree

    def _fits(self, tree) -> bool:
        return len(tree) <= self.space.limits.max_nodes and tree.height <= self.space.limits.max_height

    def mate(self, a, b):
        """Crossover of one slot: with several slots, half the time the parents swap that
        slot's whole tree (a V found by one meets the g, h or F, f of another), else
        one-point crossover of the two trees; a child too big keeps its parent's tree."""
        k = random.randrange(len(self.slots))
        if len(self.slots) > 1 and random.random() < SLOT_SWAP:
            a[k], b[k] = b[k], a[k]
            return a, b
        old_a, old_b = copy.deepcopy(a[k]), copy.deepcopy(b[k])
        gp.cxOnePoint(a[k], b[k])
        if not self._fits(a[k]):
            a[k] = old_a
        if not self._fits(b[k]):
            b[k] = old_b
        return a, b

    def mutate(self, individual):
        """One mutation of one slot's tree, kept only if it respects the limits."""
        k = random.randrange(len(self.slots))
        pset = self.slots[k].pset
        old = copy.deepcopy(individual[k])
        choice = random.randrange(5)
        if choice == 0:
            gp.mutUniform(individual[k], expr=lambda pset, type_: gp.genFull(pset, 0, 2, type_), pset=pset)
        elif choice == 1:
            gp.mutNodeReplacement(individual[k], pset=pset)
        elif choice == 2:
            gp.mutShrink(individual[k])
        elif choice == 3:
            gp.mutInsert(individual[k], pset=pset)
        else:
            self._mutate_constants(individual[k])
        if not self._fits(individual[k]):
            individual[k] = old
        return individual

    @staticmethod
    def _mutate_constants(tree):
        for k, node in enumerate(tree):
            if isinstance(node, gp.Terminal) and not isinstance(node.value, str) and random.random() < 0.5:
                tree[k] = _constant(node, round(node.value * (1 + random.gauss(0, 0.2)) + random.gauss(0, 0.1), 6))

    # -- evaluation ------------------------------------------------------------------
    def candidate(self, individual) -> Candidate:
        parts: list[list] = [[] for _ in self.shapes]
        values = {}
        for k, (slot, tree) in enumerate(zip(self.slots, individual)):
            expr, tree_values = tree_to_sympy(tree, k, slot.pset.context)
            if slot.envelope is not None:
                # the stiffness starts at rc/2 in every fit (it is not a tree constant)
                stiffness = sympy.Symbol(f"s{k}")
                expr = expr * sympy.exp(stiffness / (sympy.Symbol("r") - sympy.Float(slot.envelope)))
                tree_values[stiffness] = slot.envelope / 2
            parts[slot.term].append(expr)
            values.update(tree_values)
        return decompose(parts, self.shapes, values)

    def evaluate(self, individuals) -> None:
        """Fit the individuals without a fitness (on the executor's workers when there
        are several, each fit sent as soon as its formula is built), then update the
        archive in their order, each as its fit comes back."""
        pending = [individual for individual in individuals if not individual.fitness.valid]
        built: list[Candidate | None] = []

        def candidates():
            for individual in pending:
                try:
                    candidate = self.candidate(individual)
                except Exception:  # sympy raises many kinds on odd trees; such a tree is simply unfit
                    candidate = None
                built.append(candidate)
                yield candidate

        for k, scored in enumerate(self.score_stream(candidates(), len(pending))):
            individual, candidate = pending[k], built[k]
            if candidate is None:
                individual.structure = str([str(t) for t in individual])
                individual.fitness.values = (WORST_LOSS, WORST_SIZE)
                continue
            individual.structure = candidate.structure
            if scored.fit.ok:
                self._write_back(individual, candidate, scored)
                individual.fitness.values = (self._offer(scored).score, scored.complexity)
            else:
                if scored.fit.message.startswith(INADMISSIBLE):
                    self._reject(scored.fit.message[len(INADMISSIBLE) :].split(":")[0])
                individual.fitness.values = (WORST_LOSS, WORST_SIZE)

    def _admitted(self, scored: Scored) -> bool:
        """Whether ``scored`` may enter the archive: besides the physical rules its fit
        applied (:mod:`evopot.model.admissible`), each term uses only functions its
        search-space slots can build (a rounding to first order must not bring in a
        log the space does not have), it has a formula at all, its dimer stands, its
        bases do not cancel, its constants are of sane size."""
        if not scored.candidate.bases:  # nothing but reference energies: no formula
            self._reject("empty")
            return False
        for component in scored.candidate.components:
            expressions = [*component.bases, *([component.shape] if component.shape is not None else [])]
            used = {type(f) for e in expressions for f in e.atoms(sympy.Function)}
            if not used <= self.allowed.get(component.shape_of, set()):
                self._reject("operators")
                return False
        reason = scored.refused
        if reason:
            self._reject(reason.split(":")[0])
            return False
        return True

    def _reject(self, rule: str) -> None:
        self.rejected[rule] = self.rejected.get(rule, 0) + 1

    def _offer(self, scored: Scored) -> Scored:
        """``scored`` into the archive where it improves it and is admissible; where it
        improves it, admissible or not, the simpler formulas inside it are offered in
        turn (:meth:`_prune_into_archive`). A formula that would improve it is judged
        first (its crystal properties, when the search has a property target): returned
        with its penalty, which its individual's fitness carries too."""
        if self.archive.improves(scored):
            if self._admitted(scored):
                scored, _ = self._enter(scored)
            if self.prune is not None:
                self._prune_into_archive(scored)
        return scored

    def _enter(self, scored: Scored) -> tuple[Scored, bool]:
        """``scored`` into the archive where it improves it, and whether it entered; with
        a ``judge``, only when it would join the front, judged first (returned with its
        penalty)."""
        if self.judge is not None:
            if not self.archive.leads(scored):
                return scored, False  # dominated: never on the front, whatever its properties
            scored = self.judge(scored)
        return scored, self.archive.update(scored)

    def _prune_into_archive(self, scored: Scored) -> None:
        """The simpler formulas inside ``scored`` (admissible or not: a formula refused
        for a huge constant or a cancellation still gives its rounded forms) offered to
        the archive; each that enters it is pruned in turn, so a basis dropped and then
        a constant rounded both happen. Ends: every entry lowers the archive's best loss
        at some complexity; no formula is pruned twice."""
        pending = [scored]
        while pending:
            current = pending.pop()
            if current.candidate.key in self._pruned:
                continue  # an inadmissible formula keeps improving the archive: prune it once
            self._pruned.add(current.candidate.key)
            for simpler in self.prune(current):
                if self.archive.improves(simpler) and self._admitted(simpler):
                    if self._enter(simpler)[1]:
                        pending.append(simpler)

    @staticmethod
    def _write_back(individual, candidate: Candidate, scored: Scored) -> None:
        # The candidate's own sources: a cached fit may come from a tree whose
        # constants sit at other node indices.
        for source, value in zip(candidate.sources, scored.fit.nonlinear):
            if source:
                tree, node = (int(x) for x in source.split(":"))
                individual[tree][node] = _constant(individual[tree][node], float(value))

    # -- the loop --------------------------------------------------------------------
    def initialise(self, seeds: list[list[str]] | None = None) -> None:
        """The first population: ``seeds`` (one tree string per slot, DEAP notation)
        evaluated first, random individuals for the rest. The structures the seeds
        were fitted as are kept in ``seeded``."""
        pool = []
        for trees in seeds or []:
            if len(trees) != len(self.slots):
                raise EvopotError(f"a seed has {len(trees)} trees but the search space has {len(self.slots)} slots")
            individual = creator.EvopotIndividual(
                [tree_from_string(text, slot.pset) for text, slot in zip(trees, self.slots)]
            )
            if all(self._fits(tree) for tree in individual):
                pool.append(individual)
        with _seeded(self.rng):
            self.evaluate(pool)
            self.seeded = {ind.structure for ind in pool if ind.fitness.values[0] < WORST_LOSS}
            self.population = self._select(pool)
        self._record()

    def step(self) -> GenerationReport:
        """One generation: select, vary, evaluate, select survivors."""
        s = self.settings
        with _seeded(self.rng):
            offspring = self._vary(self.population)
            self.evaluate(offspring)
            self.population = self._select(self.population + offspring)
            restart = self._stalled()
            if restart:
                fresh = [self.new_individual() for _ in range(s.population)]
                self.evaluate(fresh)
                self.population = self._select(fresh)
        self.generation += 1
        if restart:
            self.last_restart = self.generation
        report = self._record()
        report.restarted = restart
        return report

    def _vary(self, population: list) -> list:
        """Offspring of ``population``: crowded-tournament parents, crossed and mutated."""
        s = self.settings
        parents = tools.selTournamentDCD(population, len(population))
        offspring = [copy.deepcopy(ind) for ind in parents]
        for k in range(0, len(offspring) - 1, 2):
            if random.random() < s.crossover:
                self.mate(offspring[k], offspring[k + 1])
                del offspring[k].fitness.values, offspring[k + 1].fitness.values
        for ind in offspring:
            if random.random() < s.mutation:
                self.mutate(ind)
                if ind.fitness.valid:
                    del ind.fitness.values
        return offspring

    def receive(self, migrants: list[dict]) -> None:
        """Another island's :func:`emigrants` join the population, and NSGA-II
        selection brings it back to its size: migrants better than its worst stay."""
        if migrants:
            with _seeded(self.rng):
                self.population = self._select(self.population + [self._individual(m) for m in migrants])

    def _stalled(self) -> bool:
        """The best loss gained less than :data:`RESTART_GAIN` over the last
        ``restart`` generations (all since the last restart) and is not at the target:
        the population is stuck in one basin, so it starts afresh from random trees.
        The archive, and so the front, keeps everything found before."""
        n = self.settings.restart
        if not n or self.generation + 1 - self.last_restart < n:
            return False
        best = min((s.score for s in self.archive.best.values()), default=float("inf"))
        return best > self.settings.target_error and best > (1 - RESTART_GAIN) * self.history[-n].best_loss

    def _select(self, pool) -> list:
        """NSGA-II survivors of ``pool`` after removing copies; fresh random
        individuals fill the population when too few distinct ones are left."""
        size = self.settings.population
        pool = self._distinct(pool)
        for _ in range(20):
            if len(pool) >= size:
                break
            immigrants = [self.new_individual() for _ in range(size - len(pool))]
            self.evaluate(immigrants)
            pool = self._distinct(pool + immigrants)
        if not pool:
            raise EvopotError(
                "no candidate formula could be fitted to the data (every fit gave non-finite numbers); check "
                "the data units and the search space's operators"
            )
        while len(pool) < size:
            pool = pool + [copy.deepcopy(ind) for ind in pool[: size - len(pool)]]
        return tools.selNSGA2(pool, size)

    @staticmethod
    def _distinct(individuals) -> list:
        """One individual per formula structure (the best of them), failed ones dropped:
        keeps the population from filling with copies of one formula."""
        best = {}
        for ind in individuals:
            if ind.fitness.values[0] >= WORST_LOSS:
                continue
            current = best.get(ind.structure)
            if current is None or ind.fitness.values[0] < current.fitness.values[0]:
                best[ind.structure] = ind
        return list(best.values())

    def _record(self) -> GenerationReport:
        report = self.archive.report(self.generation)
        self.history.append(report)
        return report

    def front(self) -> list[Scored]:
        """The Pareto front found so far, simplest first."""
        return self.archive.front()

    def done(self) -> bool:
        """Out of generations, or at the target error for ``patience`` generations (the
        extra generations let simpler formulas with the same error surface)."""
        recent = self.history[-(self.settings.patience + 1) :]
        reached = len(recent) == self.settings.patience + 1 and all(
            h.best_loss <= self.settings.target_error for h in recent
        )
        return reached or self.generation >= self.settings.generations

    # -- checkpoints -----------------------------------------------------------------
    def state(self) -> dict:
        """Everything needed to continue: population (with fitness and crowding), archive,
        history and the random state. Plain JSON types only."""
        return {
            "generation": self.generation,
            "random_state": _jsonable(self.rng.getstate()),
            "population": [_saved(ind) for ind in self.population],
            "archive": self.archive.state(),
            "history": [vars(h) for h in self.history],
            "last_restart": self.last_restart,
            "rejected": dict(sorted(self.rejected.items())),
        }

    def restore(self, state: dict) -> None:
        self.generation = int(state["generation"])
        self.rng.setstate(_tuplify(state["random_state"]))
        self.population = [self._individual(item) for item in state["population"]]
        self.archive = Archive(cost=self.cost)
        self.archive.restore(state["archive"])
        self.history = [GenerationReport(**h) for h in state["history"]]
        self.last_restart = int(state.get("last_restart", 0))
        self.rejected = {str(k): int(v) for k, v in state.get("rejected", {}).items()}

    def _individual(self, item: dict):
        """An individual as :func:`_saved` wrote it."""
        if len(item["trees"]) != len(self.slots):
            raise EvopotError(
                f"checkpoint: individuals have {len(item['trees'])} trees but the search space has "
                f"{len(self.slots)} slots"
            )
        ind = creator.EvopotIndividual(
            [tree_from_string(text, slot.pset) for text, slot in zip(item["trees"], self.slots)]
        )
        ind.fitness.values = tuple(item["fitness"])
        ind.fitness.crowding_dist = float(item["crowding"])
        ind.structure = item["structure"]
        return ind


#: the start of a fit's message when it failed an admissibility rule (evopot.search.fitting)
INADMISSIBLE = "inadmissible: "


def _allowed_functions(space: SearchSpace, shapes, radius: float | None) -> dict:
    """The sympy function classes (exp, log, tanh, Abs, …) each term's slots can build
    from their operators, by the term's shape; exp too where a slot's envelope is the
    vanishing exp(s/(r − rc))."""
    symbols = sympy.symbols("x0:3")
    allowed: dict = {}
    for spec, shape in zip(space.terms, shapes):
        functions = allowed.setdefault(shape, set())
        if spec.envelope == "vanish":
            functions.add(sympy.exp)
        for slot in shape.slots:
            for name in spec.operators.get(slot.name, space.operators):
                op = OPERATORS.get(name)
                if op is None or op.build is None:
                    continue
                built = op.build(*symbols[: op.arity], *([radius or 1.0] if op.needs_radius else []))
                functions.update(type(f) for f in built.atoms(sympy.Function))
    return allowed


def emigrants(population: list[dict], count: int) -> list[dict]:
    """The ``count`` best distinct formulas (lowest loss, then fewest nodes) of a
    population as :meth:`GPEngine.state` saves it."""
    out, seen = [], set()
    for item in sorted(population, key=lambda item: tuple(item["fitness"])):
        if item["structure"] not in seen and item["fitness"][0] < WORST_LOSS:
            seen.add(item["structure"])
            out.append(item)
    return out[:count]


def _saved(ind) -> dict:
    """An individual as plain JSON: its trees, structure, fitness and crowding."""
    return {
        "trees": [str(t) for t in ind],
        "structure": ind.structure,
        "fitness": list(ind.fitness.values),
        "crowding": getattr(ind.fitness, "crowding_dist", 0.0),
    }


def _constant(node, value: float):
    """A new constant node like ``node`` holding ``value``. Nodes are never changed in
    place: DEAP's deepcopy of a tree shares its node objects, so changing one would
    change the parent, the offspring and every copy at once."""
    new = copy.copy(node)
    new.value = value
    return new


class _seeded:
    """Run DEAP's operators and ours, which call the module-level ``random``, from our
    own generator: inside the block those modules' name ``random`` is ``rng`` itself.
    The global generator is never touched, so another thread that draws from it (Dask's
    scheduler does, while a LocalCluster runs) cannot change the search's path."""

    def __init__(self, rng: random.Random):
        self.rng = rng

    def __enter__(self):
        import deap.gp
        import deap.tools.crossover
        import deap.tools.emo
        import deap.tools.mutation
        import deap.tools.selection

        from evopot.search.engines import expression

        modules = (deap.gp, deap.tools.crossover, deap.tools.emo, deap.tools.mutation, deap.tools.selection)
        self.saved = [(module, module.random) for module in (*modules, expression, sys.modules[__name__])]
        for module, _ in self.saved:
            module.random = self.rng

    def __exit__(self, *exc):
        for module, original in self.saved:
            module.random = original


def _jsonable(value):
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value


def _tuplify(value):
    if isinstance(value, list):
        return tuple(_tuplify(v) for v in value)
    return value
