"""The neural-guided start of a search (``engine: {name: guided}``): fit the separable
neural potential to the search frames, distil each learned function into formulas,
and hand them to the GP engine as its first individuals (the rest of the population
is random as usual; the search then goes on normally)."""

from __future__ import annotations

import time

import torch

from evopot.config.schema import GuidedConfig
from evopot.errors import EvopotError
from evopot.executor import Executor
from evopot.model.cutoff import Cutoff
from evopot.model.terms import KINDS
from evopot.search.engines.distill import Distilled, distill, slot_curves
from evopot.search.engines.neural import NeuralData, SeparableNetwork, fit_network
from evopot.search.engines.space import SearchSpace, term_shapes

#: the term kinds the separable network of :mod:`evopot.search.engines.neural` models:
#: those whose slots may hold any function
SEPARABLE_KINDS = {name for name, kind in KINDS.items() if kind.has_slot_energies()}


def check_distiller(space: SearchSpace, settings: GuidedConfig, where: str) -> None:
    """Refuse, before any work (an old run's folder included), a distiller that cannot
    run here or cannot handle ``space``: PySR needs Julia, and it fits a learned curve
    whole, so it cannot give what multiplies a term's vanishing envelope."""
    unsupported = sorted({t.kind for t in space.terms} - SEPARABLE_KINDS)
    if unsupported:
        raise EvopotError(
            f"{where}: engine.name: guided: the separable network has no {', '.join(unsupported)} terms (search space "
            f"{space.name!r}); use engine.name: gp"
        )
    if settings.distill_with != "pysr":
        return
    enveloped = [f"{i + 1} ({term.kind})" for i, term in enumerate(space.terms) if term.envelope != "none"]
    if enveloped:
        raise EvopotError(
            f"{where}: engine.guided.distill_with: pysr cannot distil terms with an envelope (search space "
            f"{space.name!r}, "
            f"term {', '.join(enveloped)}: envelope: vanish): PySR fits the whole learned curve, vanishing "
            f"included, while the "
            "search wants only what multiplies it. Use distill_with: deap (the default), or a copy of the "
            "search space with envelope: none."
        )
    from evopot.search.engines.pysr_backend import available

    available()


def guided_seeds(
    space: SearchSpace,
    problem,
    cutoff: Cutoff,
    settings: GuidedConfig,
    seed: int,
    log=print,
    executor: Executor | None = None,
) -> tuple[list[list[str]], Distilled, dict]:
    """Seed individuals (one tree string per slot) for ``space``, the distillation
    record, and timings, from the labelled geometry of ``problem`` (a FitProblem);
    the slots are distilled side by side on ``executor``'s workers.
    :func:`check_distiller` is the caller's, before any work."""
    started = time.perf_counter()
    network, data, fit = fit_separable_network(space, problem, cutoff, settings, seed)
    trained = time.perf_counter()
    stiffness = network.stiffnesses()
    log(
        f"guided: separable network fitted in {trained - started:.1f} s (loss {fit['loss']:.4g}"
        + "".join(f"; {k} envelope stiffness {v:.4g} Å" for k, v in stiffness.items())
        + ")"
    )
    if settings.distill_with == "pysr":
        distilled = _distill_with_pysr(network, data, space, settings, seed)
    else:
        distilled = distill(
            network,
            data,
            space,
            cutoff.radius,
            settings.distill_population,
            settings.distill_generations,
            settings.keep,
            seed,
            executor=executor,
        )
    for s in distilled.slots:
        log(
            f"guided: slot {s['slot']}({s['variable']}) distilled to "
            + "; ".join(f"{t} (rel. error {e:.3g})" for t, e in s["trees"][:3])
        )
    timings = {
        "network_seconds": trained - started,
        "distill_seconds": time.perf_counter() - trained,
        "network_loss": fit["loss"],
        "envelope_stiffness": stiffness,
    }
    return distilled.seeds(settings.seeds), distilled, timings


def fit_separable_network(
    space: SearchSpace, problem, cutoff: Cutoff, settings: GuidedConfig, seed: int
) -> tuple[SeparableNetwork, NeuralData, dict]:
    """The separable network of ``space`` (its envelopes included) fitted to the labelled
    geometry of ``problem`` (a FitProblem) with ``settings``' size and iterations, its
    data, and :func:`fit_network`'s summary."""
    shapes = term_shapes(space)
    data = NeuralData(problem.geometry, problem.energies, problem.forces)
    torch.manual_seed(seed)
    network = SeparableNetwork(
        shapes,
        cutoff,
        problem.geometry.species,
        tuple(settings.hidden),
        tuple(term.envelope == "vanish" for term in space.terms),
    )
    fit = fit_network(
        network,
        data,
        epochs=settings.epochs,
        force_weight=problem.force_weight,
        energy_weight=problem.energy_weight,
        seed=seed,
        polish=settings.polish,
    )
    return network, data, fit


def _distill_with_pysr(network, data, space: SearchSpace, settings: GuidedConfig, seed: int) -> Distilled:
    from evopot.search.engines.pysr_backend import equations_to_trees, fit_curve

    result = Distilled()
    for name, variable, x, y, operators in slot_curves(network, data, space):
        model = fit_curve(x, y, operators, seed=seed)
        result.slots.append(
            {
                "slot": name,
                "variable": variable,
                "x": x.tolist(),
                "y": y.tolist(),
                "trees": equations_to_trees(model, variable, operators, settings.keep),
            }
        )
    return result
