"""Distillation: a formula for each function the separable network learned.

Each slot's learned function is sampled where the data lives (at quantiles of the
dataset's pair distances, bond lengths, angle cosines or densities, so samples are
dense where pairs and angles are frequent) and handed to symbolic regression on its
own: the same DEAP engine and candidate fitter as the full search, with a
:class:`CurveProblem` in place of the forces (linear coefficients and an offset solved
exactly, nonlinear constants refined by least squares). The best distinct trees of
each slot, in DEAP's prefix notation, then seed the population of a normal search.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import sympy
import torch

from evopot.executor import Executor
from evopot.model.potential import Term
from evopot.model.terms.base import compile_function
from evopot.search.candidate import R, complexity
from evopot.search.engines.gp import WORST_LOSS, GPEngine, GPSettings
from evopot.search.engines.neural import NeuralData, SeparableNetwork, TermNetworks
from evopot.search.engines.space import LimitSpec, SearchSpace, TermSpec

#: Relative RMS error up to which a formula fits a learned curve as well as the network
#: knows it: the separable network fits forces to about 1 %, its curves to a few.
NETWORK_ERROR = 0.03


@dataclass(frozen=True)
class CurveProblem:
    """Samples ``y (n,)`` of a function at ``x (n,)``, to be fitted by formulas in the
    variable ``r`` (whatever the slot's variable is). Duck-types the parts of
    :class:`evopot.search.fitting.FitProblem` that :func:`evopot.search.fitting.fit_constants` reads;
    with ``offset`` the "reference energy" is a constant offset fitted for free."""

    x: np.ndarray
    y: np.ndarray
    offset: bool = True
    #: a learned curve is one slot, not a potential: no admissibility rules
    limits = None
    #: its few formulas compile in each process (no folder shared: evopot.model.compiled)
    compiled = None

    def reference_energies(self, fitted: np.ndarray) -> np.ndarray:
        return fitted  # the free offset

    @property
    def geometry(self):
        return _NoSpecies() if self.offset else _NoSpecies(())

    @cached_property
    def row_scale(self) -> float:
        return 1.0 / (np.sqrt(len(self.x)) * max(float(np.std(self.y)), 1e-12))

    @cached_property
    def target(self) -> np.ndarray:
        return self.y * self.row_scale

    @cached_property
    def reference_columns(self) -> np.ndarray:
        return np.full((len(self.x), 1 if self.offset else 0), self.row_scale)

    def column(self, term: Term) -> np.ndarray:
        names = tuple(term.constants)
        value = compile_function(term.expression, ("r",), names)
        with np.errstate(all="ignore"):
            return (value(self.x, *[term.constants[n] for n in names]) + 0 * self.x) * self.row_scale


@dataclass(frozen=True)
class _NoSpecies:
    species: tuple = ("offset",)


@dataclass
class Distilled:
    """For each slot (in the engine's slot order): the learned samples and the best
    distinct trees found, as (tree string, relative RMS error)."""

    slots: list[dict] = field(default_factory=list)

    def seeds(self, count: int) -> list[list[str]]:
        """Up to ``count`` individuals: combinations of every slot's trees, those of the
        lowest summed rank first (all slots' first trees, then one slot's second, …),
        so the best tree of one slot meets the simplest of another."""
        trees = [[t for t, _ in s["trees"]] for s in self.slots]
        if not trees or any(not t for t in trees):
            return []
        ranks = sorted(itertools.product(*(range(len(t)) for t in trees)), key=lambda rank: (sum(rank), rank))
        return [[slot[k] for slot, k in zip(trees, rank)] for rank in ranks[:count]]


def slot_samples(
    network: SeparableNetwork, data: NeuralData, points: int = 200
) -> list[tuple[str, str, np.ndarray, np.ndarray]]:
    """(slot name, variable, x, learned y) of every one-variable slot, x at ``points``
    quantiles (1 %–99 %) of the values the slot is evaluated at over the data (the
    kinds' own: pair distances of the term's species inside its cutoff, cos θ of its
    angles, the network's own densities for F)."""
    out = []
    with torch.no_grad():
        for t, shape in enumerate(network.shapes):
            for slot in shape.slots:
                if len(slot.variables) != 1:
                    raise NotImplementedError(
                        "distillation of the general three-body V3(rij, rik, costheta) is not supported; use "
                        "the separable form"
                    )
            seen = SeenSlots(network, t)
            bonds = data.index.bonds(data.positions)
            shape.spec.slot_energies(shape.form, seen, network.cutoff_of(shape), shape.species, bonds)
            for slot in shape.slots:
                x = np.unique(np.quantile(seen.values[slot.name], np.linspace(0.01, 0.99, points)))
                y = network.slot(t, slot.name, torch.as_tensor(x)).numpy()
                out.append((slot.name, slot.variables[0], x, y))
    return out


class SeenSlots:
    """The networks of one term as slot functions that remember the values each slot
    was first called at."""

    def __init__(self, network: SeparableNetwork, term: int):
        self.networks, self.values = TermNetworks(network, term), {}

    def __call__(self, name, *values):
        self.values.setdefault(name, values[0].numpy())
        return self.networks(name, *values)

    def symmetric(self, name):
        return self.networks.symmetric(name)


def slot_curves(network: SeparableNetwork, data: NeuralData, space: SearchSpace):
    """(slot name, variable, x, y, operators) of every slot: the samples of
    :func:`slot_samples` with the slot's operators in ``space``."""
    specs = [term for term, shape in zip(space.terms, network.shapes) for _ in shape.slots]
    for (name, variable, x, y), spec in zip(slot_samples(network, data), specs):
        yield name, variable, x, y, spec.operators.get(name, space.operators)


def regress_curve(
    x: np.ndarray,
    y: np.ndarray,
    operators: list[str],
    space: SearchSpace,
    radius: float,
    population: int = 100,
    generations: int = 15,
    keep: int = 3,
    seed: int = 0,
    max_evaluations: int = 30,
    tolerance: float = 3.0,
    floor: float = NETWORK_ERROR,
    max_complexity: int | None = None,
    envelope: str = "none",
    offset: bool = True,
):
    """Symbolic regression of samples ``y`` at ``x`` with ``operators`` (and the
    constants and size limits of ``space``). Returns the trees (in ``r``) worth seeding
    with their relative RMS errors — the ``keep`` best distinct ones and the ``keep``
    simplest within ``tolerance`` × the best error or ``floor``, whichever is larger (a
    network's curve is only approximately the true function, so the exact form may fit
    it a little worse than a longer formula that follows the network's own wiggles),
    taken in turn (best, simplest, second best, second simplest, …), each at most
    ``max_complexity`` nodes once fitted — and the engine's Pareto front.
    With ``envelope="vanish"`` the trees are what multiplies exp(s/(r − radius)), as in
    a search-space term with that envelope. ``offset`` lets every formula add a constant
    for free: right where the forces do not fix the slot's constant (F(ρ), an
    un-enveloped V), wrong elsewhere (the search could not add it back)."""
    from evopot.search.scoring import Scorer

    curve_space = SearchSpace(
        name="distil",
        terms=[TermSpec(kind="pair", envelope=envelope)],
        operators=operators,
        constants=space.constants,
        limits=LimitSpec(**space.limits.model_dump()),
    )
    scorer = Scorer(CurveProblem(x, y, offset), max_evaluations)
    engine = GPEngine(
        curve_space,
        GPSettings(population, generations, seed=seed, target_error=1e-6, patience=2),
        scorer.score_candidate,
        scorer.prune,
        radius=radius,
    )
    engine.initialise()
    while not engine.done():
        engine.step()
    limit = max_complexity or curve_space.limits.max_nodes
    fitted = [ind for ind in engine.population if ind.fitness.values[0] < WORST_LOSS and ind.fitness.values[1] <= limit]
    if not fitted:
        return [], engine.archive.front()
    best = min(ind.fitness.values[0] for ind in fitted)
    accurate = _distinct(sorted(fitted, key=lambda ind: ind.fitness.values), keep)
    near = max(tolerance * best, floor)
    simple = _distinct(
        sorted((ind for ind in fitted if ind.fitness.values[0] <= near), key=lambda ind: ind.fitness.values[::-1]), keep
    )
    taken = [ind for pair in itertools.zip_longest(accurate, simple) for ind in pair if ind is not None]
    return [(str(ind[0]), float(ind.fitness.values[0])) for ind in _distinct(taken, 2 * keep)], engine.archive.front()


def _distinct(individuals, count: int) -> list:
    """The first ``count`` individuals of distinct formula structure."""
    out, seen = [], set()
    for ind in individuals:
        if ind.structure not in seen:
            seen.add(ind.structure)
            out.append(ind)
    return out[:count]


def distill(
    network: SeparableNetwork,
    data: NeuralData,
    space: SearchSpace,
    radius: float,
    population: int = 100,
    generations: int = 15,
    keep: int = 3,
    seed: int = 0,
    max_evaluations: int = 30,
    executor: Executor | None = None,
) -> Distilled:
    """:func:`regress_curve` on each slot of ``network`` with that slot's operators of
    ``space``, the slots at once on ``executor``'s workers (default: one after another
    here)."""
    # the search fits formulas up to 2 × max_nodes nodes in all (evopot.search.run): share that out
    slots = sum(len(shape.slots) for shape in network.shapes)
    budget = max(3, 2 * space.limits.max_nodes // (slots + 1))
    envelopes = [
        term.envelope if slot.variables == ("r",) else "none"
        for term, shape in zip(space.terms, network.shapes)
        for slot in shape.slots
    ]
    curves, jobs = list(slot_curves(network, data, space)), []
    for (name, _, x, y, operators), envelope in zip(curves, envelopes):
        # an enveloped slot's fitted formula repeats the envelope in each basis: allow two
        extra = 2 * complexity(sympy.exp(sympy.Symbol("s") / (R - radius))) if envelope != "none" else 0
        # a constant added to F(ρ), or to an un-enveloped V, changes no force (with a smooth
        # cutoff, forces only where it falls), so the network hardly knows it; anywhere
        # else it is part of the learned shape
        offset = name == "F" or (name == "V" and envelope == "none")
        settings = dict(max_complexity=budget + extra, envelope=envelope, offset=offset)
        jobs.append((x, y, operators, space, radius, population, generations, keep, seed, max_evaluations, settings))
    executor = executor or Executor()
    found = executor.map(_regress_job, jobs, executor.share(None))  # the slots side by side on the workers
    result = Distilled()
    for (name, variable, x, y, _), trees in zip(curves, found):
        result.slots.append(
            {
                "slot": name,
                "variable": variable,
                "x": x.tolist(),
                "y": y.tolist(),
                "trees": [(rename_variable(t, variable), e) for t, e in trees],
            }
        )
    return result


def _regress_job(_, job: tuple) -> list[tuple[str, float]]:
    """:func:`regress_curve` of one slot on a worker: ``job`` is its positional
    arguments and then its keyword ones; the trees it keeps."""
    *arguments, settings = job
    return regress_curve(*arguments, **settings)[0]


def rename_variable(tree: str, variable: str) -> str:
    """A tree string in ``r`` written in ``variable`` instead."""
    return re.sub(r"\br\b", variable, tree)
