"""Scoring a candidate formula: fit its constants, measure its error and size, and
turn the fitted result into a Potential.

This is the "Evaluator + constant fitter" box of the design as the search engines see
it: an engine hands over a :class:`~evopot.search.candidate.Candidate` (linear bases, shapes,
nonlinear constants and their starting values) and gets back a :class:`Scored`
(loss, complexity, fitted constants). Fits are cached by the candidate's structure and
starting constants, so a formula the search proposes again is not refitted.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np
import sympy

from evopot.executor import Batch, Executor
from evopot.model import compiled
from evopot.model.admissible import oversized
from evopot.model.potential import Potential
from evopot.model.properties import MISSING
from evopot.search.candidate import Candidate
from evopot.search.fitting import FAILED, UNFIT, FitProblem, FitResult, fit_constants


@dataclass(frozen=True)
class Scored:
    """A fitted candidate: ``loss`` is the weighted RMSE of the fit (inf when it failed),
    ``complexity`` the node count of the fitted formula."""

    candidate: Candidate
    fit: FitResult
    complexity: int
    #: weight × (relative property error / tolerance)² (:mod:`evopot.model.properties`); 0 unjudged
    penalty: float = 0.0

    @property
    def loss(self) -> float:
        return self.fit.loss

    @property
    def score(self) -> float:
        """What the archive ranks by: the loss, times 1 + the property penalty."""
        return self.fit.loss * (1.0 + self.penalty)

    def describe(self) -> str:
        return self.candidate.describe()

    @property
    def refused(self) -> str | None:
        """Why the front refuses this formula: its fit's reason (:attr:`FitResult.refused`),
        or rule 4 on the constants of the formula as it is read, the fitted values
        inserted (f = e^b·r⁻⁶ with b = 86 fitted is 2.8·10³⁷·r⁻⁶)."""
        reason = self.fit.refused
        if reason or not self.fit.ok:
            return reason
        shown = []
        for term in self.candidate.terms(self.fit.linear, self.fit.nonlinear):
            for expression in (term.expression, term.density):
                if expression is not None:
                    shown += [float(x) for x in term.numeric(expression).atoms(sympy.Float)]
        return oversized(shown)

    def to_potential(self, problem: FitProblem, metadata: dict | None = None) -> Potential:
        terms = self.candidate.terms(self.fit.linear, self.fit.nonlinear)
        species = problem.geometry.species
        reference = {s: float(e) for s, e in zip(species, self.fit.reference_energies)}
        return Potential(tuple(terms), problem.cutoff, tuple(species), reference, metadata or {})


# rise of the loss up to which a rounded constant counts as exact: 1 % of the loss, or a
# millionth of the data's own size (the loss of predicting nothing), for fits at the
# data's noise floor (loss ~7e-8 on the SW data), where rounding r^(2e-8) to 1 without a
# refit moves the loss by percents
ROUNDING_TOLERANCE = 0.01
ROUNDING_FLOOR = 1e-6
# beyond this a nonlinear constant is rounded to infinity, not zero: next to distances
# (a few Å), cosines and densities it only sets a scale the linear coefficients absorb
# ((r + 9.7e5) varies by 4e-6 of itself over a 4 Å cutoff)
LARGE_CONSTANT = 1e4


def _digest(key: str) -> str:
    return hashlib.blake2b(key.encode(), digest_size=8).hexdigest()


#: the fit (and property) caches of the latest fit problems a worker process held, by the problem's id
_WORKER_CACHES: dict[int, tuple[FitProblem, dict, dict]] = {}


def worker_scorer(problem: FitProblem, max_evaluations: int, max_complexity: int) -> Scorer:
    """A :class:`Scorer` for a task on a worker (fitting in that process): a fresh
    count of fits, but the cache of every task of this process on ``problem``, so an
    island does not refit what an earlier task fitted. Its :meth:`Scorer.state` is the
    candidates the task scored, cached or not: the same on any worker."""
    compiled.use_folder(problem.compiled)
    held = _WORKER_CACHES.get(id(problem))
    if held is None or held[0] is not problem:
        while len(_WORKER_CACHES) >= 2:
            _WORKER_CACHES.pop(next(iter(_WORKER_CACHES)))
        held = _WORKER_CACHES[id(problem)] = (problem, {}, {})
    scorer = Scorer(problem, max_evaluations, max_complexity)
    scorer._cache, scorer._judged = held[1], held[2]
    return scorer


def _fit(problem: FitProblem, job: tuple[Candidate, int]) -> FitResult:
    """One candidate's fit on a worker: ``job`` is (candidate, refinement budget)."""
    candidate, budget = job
    compiled.use_folder(problem.compiled)
    return fit_constants(problem, candidate, budget)


class Scorer:
    """Fits candidates on one :class:`FitProblem`, with a cache.

    Candidates whose formula has more than ``max_complexity`` nodes are not fitted
    (expanding a GP tree can multiply its size) and score as failed."""

    def __init__(
        self, problem: FitProblem, max_evaluations: int = 40, max_complexity: int = 60, executor: Executor | None = None
    ):
        self.problem = problem
        self.executor = executor or Executor()
        self._shared = None  # the problem as the executor's workers hold it, sent on first use
        self.max_evaluations = max_evaluations
        self.max_complexity = max_complexity
        self._cache: dict[str, Scored] = {}
        self._judged: dict[str, float] = {}  # property penalties, by candidate and constants
        self._fitted: set[str] = set()  # digests of every candidate fitted, over resumed sessions too
        self._operations: dict[str, float] = {}  # evaluation costs, by candidate

    def score_candidate(self, candidate: Candidate, max_evaluations: int | None = None) -> Scored:
        """Fit ``candidate`` (θ refined with ``max_evaluations``, default the scorer's)."""
        budget = self.max_evaluations if max_evaluations is None else max_evaluations
        key = f"{candidate.key}|{budget}"
        cached = self._cache.get(key)
        if cached is not None:
            if cached.complexity <= self.max_complexity:  # fitted, perhaps by another scorer sharing the cache
                self._fitted.add(_digest(key))
            return cached
        size = candidate.complexity
        if size > self.max_complexity:
            fit = FitResult(
                False,
                FAILED,
                np.zeros(len(candidate.bases)),
                np.array(candidate.initial),
                np.zeros(0),
                "formula too large",
            )
        else:
            fit = fit_constants(self.problem, candidate, budget)
            self._fitted.add(_digest(key))
        scored = Scored(candidate, fit, size)
        self._cache[key] = scored
        return scored

    def operations(self, scored: Scored) -> float:
        """Operations per atom of evaluating ``scored``'s formula over the fitting data
        (:meth:`Potential.operations_per_atom`: POET's cost, the archive's tie-break), or
        NaN for a problem without structures (the guided engine's curves)."""
        geometry = getattr(self.problem, "geometry", None)
        if geometry is None or not scored.fit.ok:
            return math.nan
        key = scored.candidate.key
        if key not in self._operations:
            self._operations[key] = scored.to_potential(self.problem).operations_per_atom(geometry)
        return self._operations[key]

    def judge(self, scored: Scored) -> Scored:
        """``scored`` with its property penalty, when the problem has a property target
        (evaluated once per candidate, kept with the fit cache's lifetime)."""
        target = self.problem.properties
        if target is None or not scored.fit.ok:
            return scored
        key = f"{scored.candidate.key}|{scored.fit.nonlinear.tobytes().hex()}"
        if key not in self._judged:
            try:
                _, self._judged[key] = target.judge(scored.to_potential(self.problem))
            except UNFIT:
                self._judged[key] = target.weight * MISSING
        return replace(scored, penalty=self._judged[key])

    def score_many(self, candidates: list[Candidate], max_evaluations: int | None = None) -> list[Scored]:
        """:meth:`score_candidate` of each of ``candidates``, the fits not yet cached done
        at once on the executor's workers; the results, and what the cache and the count
        of fits record, are those of fitting them one by one in this order."""
        return list(self.score_stream(candidates, len(candidates), max_evaluations, urgent=True))

    def score_stream(
        self,
        candidates: Iterable[Candidate | None],
        count: int,
        max_evaluations: int | None = None,
        urgent: bool = False,
    ) -> Iterator[Scored | None]:
        """:meth:`score_many` of about ``count`` candidates as they come (None for a
        formula that could not be built: None back), each fit sent to the workers as
        soon as its candidate arrives and the scores given back in order as they
        finish: building candidates and using the scores (pruning) overlap the fits.
        In this process the same fits happen in the same order, one at a time."""
        budget = self.max_evaluations if max_evaluations is None else max_evaluations
        # a fit without refinement (pruning's) is a linear solve: quicker here than a round trip
        # to workers busy with the fits of a whole generation
        if count > 1 and budget > 0 and self.executor.workers > 1:
            batch = self.executor.batch(_fit, self._problem_handle(), count, urgent)
        else:
            batch = Batch(_fit, self.problem)
        order, sent = [], set()
        for candidate in candidates:
            key = None if candidate is None else f"{candidate.key}|{budget}"
            new = (
                key is not None
                and key not in self._cache
                and key not in sent
                and candidate.complexity <= self.max_complexity
            )
            if new:
                sent.add(key)
                batch.submit((candidate, budget))
            order.append((candidate, key, new))
        fits = batch.results()
        for candidate, key, new in order:
            if candidate is None:
                yield None
                continue
            if new:
                self._cache[key] = Scored(candidate, next(fits), candidate.complexity)
            yield self.score_candidate(candidate, max_evaluations)

    def _problem_handle(self):
        """The fit problem as the executor's workers hold it (sent to each once)."""
        if self._shared is None:
            self._shared = self.executor.share(self.problem)
        return self._shared

    def map(self, function, items: list) -> list:
        """``function(problem, item)`` for each item, on the executor's workers, which
        hold the fit problem (sent to each once)."""
        return self.executor.map(function, items, self._problem_handle())

    @property
    def fits(self) -> int:
        """Distinct candidates fitted so far (a resumed run counts its first session's too)."""
        return len(self._fitted)

    def count(self, digests: list[str]) -> None:
        """Count as fitted the candidates of another scorer's :meth:`state` (an island's
        task on a worker)."""
        self._fitted.update(digests)

    def state(self) -> list[str]:
        """What :meth:`restore` needs to go on counting: the digests of the fitted candidates."""
        return sorted(self._fitted)

    def restore(self, fitted: list[str]) -> None:
        """Count the candidates of a checkpoint's :meth:`state` as fitted (a resumed run
        that fits one again does not count it twice)."""
        self._fitted = {str(k) for k in fitted}

    @cached_property
    def _data_size(self) -> float:
        """The loss of predicting zero everywhere (the norm of the weighted targets)."""
        return float(np.linalg.norm(self.problem.target))

    def prune(self, scored: Scored) -> list[Scored]:
        """Simpler formulas inside a fitted one, for the archive to weigh.

        Backward elimination: drop, one at a time, the basis whose removal raises the
        loss least (nonlinear constants held at their fitted values, linear part
        refitted), down to a single basis; every step is returned, so the archive sees
        the simpler formulas hiding inside a bloated one (r⁻¹² + r⁻⁶ + tiny junk).
        Constant rounding: each nonlinear constant set to zero, the others held, the
        linear part refitted; where a fit left a constant at nearly nothing,
        (r − 2·10⁻⁸)/r, this is the formula without it, (r)/r = 1; a constant grown
        huge, (r − 8·10³³)·e, is rounded to infinity: e; a tiny constant under a huge
        coefficient, C·(exp(ε·r⁻⁴) − 1), to its first order, r⁻⁴. Roundings that cost
        nothing accumulate (see ``_rounded``). The formulas of one elimination step are
        fitted at once (on the executor's workers when there are several)."""
        steps = self._rounded(scored)
        current = scored
        while current.fit.ok and len(current.candidate.bases) > 1:
            fewer = [current.candidate.without(k, current.fit.nonlinear) for k in range(len(current.candidate.bases))]
            options = [o for o in self.score_many(fewer, max_evaluations=0) if o.fit.ok]
            if not options:
                break
            current = min(options, key=lambda o: o.loss)
            steps.append(current)
        return steps

    def _rounded(self, scored: Scored) -> list[Scored]:
        """Each nonlinear constant rounded in turn: to zero, or to ±inf (its leading
        term) from beyond ±``LARGE_CONSTANT``; where zero alone costs accuracy, to zero
        at first order too (see ``Candidate.with_constant``). A rounding that leaves the
        loss as it was (``ROUNDING_TOLERANCE``, ``ROUNDING_FLOOR``) is kept for the
        next, so a formula with two near-zero constants also comes back without both."""
        out, current = [], scored
        for symbol in scored.candidate.parameters:
            if symbol not in current.candidate.parameters:
                continue  # went with a basis an earlier rounding removed
            index = current.candidate.parameters.index(symbol)
            value = current.fit.nonlinear[index]
            roundings = (
                [(math.copysign(math.inf, value), False)] if abs(value) > LARGE_CONSTANT else [(0, False), (0, True)]
            )
            for rounded, first_order in roundings:
                simpler = current.candidate.with_constant(index, rounded, current.fit.nonlinear, first_order)
                result = None if simpler is None else self.score_candidate(simpler, max_evaluations=0)
                if result is None or not result.fit.ok:
                    continue
                out.append(result)
                if result.loss <= current.loss * (1 + ROUNDING_TOLERANCE) + ROUNDING_FLOOR * self._data_size:
                    current = result
                    break
        return out
