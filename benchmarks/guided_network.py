"""What the guided engine's separable network learns of Stillinger–Weber (issue 8).

Fits the separable network (``stillinger_weber.yaml``'s structure: V(r), g(cos θ), h(r),
V and h with their envelope) to the Stillinger–Weber rediscovery data exactly as a guided
search does (the run's training frames, the default settings), once per seed, and prints
per seed: the fit time and loss, each learned curve's relative RMS distance from the true
SW function (best scale fitted, sampled where the data has pairs and angles, as
distillation samples it) and the learned envelope stiffnesses (SW: 2.095 Å for V, 2.514 Å
for h).

    .venv/bin/python benchmarks/guided_network.py [--seeds 6] [--first-seed 0] [--epochs N] [--polish N]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from evopot.config.schema import GuidedConfig, load_config
from evopot.data.dataset import dataset_from_config
from evopot.model.cutoff import cutoff_from_config
from evopot.search.engines.distill import slot_samples
from evopot.search.engines.guided import fit_separable_network
from evopot.search.engines.space import load_search_space, resolve_search_space_path
from evopot.search.fitting import FitProblem
from evopot.testing.known import SW_SILICON as SW
from evopot.testing.rediscovery import PROBLEMS, write_problem

RC = SW["a"] * SW["sig"]


def true_curve(slot: str, x: np.ndarray) -> np.ndarray:
    if slot == "h":
        return np.exp(SW["gam"] * SW["sig"] / (x - RC))
    if slot == "g":
        return (x - SW["cos0"]) ** 2
    return SW["A"] * SW["eps"] * (SW["B"] * (SW["sig"] / x) ** SW["p"] - 1) * np.exp(SW["sig"] / (x - RC))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=6)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, help="Adam epochs (default: the guided engine's)")
    parser.add_argument("--polish", type=int, help="L-BFGS iterations (default: the guided engine's)")
    args = parser.parse_args()
    settings = GuidedConfig(**{k: v for k, v in (("epochs", args.epochs), ("polish", args.polish)) if v is not None})
    problem = PROBLEMS["stillinger-weber"]()
    space = load_search_space(resolve_search_space_path(problem.search_space))
    print(
        f"separable network {settings.hidden}, {settings.epochs} Adam epochs + {settings.polish} L-BFGS iterations",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as folder:
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            config = load_config(write_problem(problem, Path(folder), seed))
            dataset = dataset_from_config(config)
            cutoff = cutoff_from_config(config.cutoff)
            fit_problem = FitProblem.from_frames(
                dataset.train, cutoff, tuple(dataset.species), config.fitness.forces, config.fitness.energies
            )
            start = time.perf_counter()
            network, data, fit = fit_separable_network(space, fit_problem, cutoff, settings, seed)
            seconds = time.perf_counter() - start
            distances = []
            for name, _, x, y in slot_samples(network, data):
                truth = true_curve(name, x)
                scale = float(truth @ y / (truth @ truth))
                distances.append(f"{name} {np.sqrt(np.mean((y - scale * truth) ** 2)) / np.std(y):.4f}")
            stiffness = ", ".join(f"{key.split('_')[1]} {value:.3f}" for key, value in network.stiffnesses().items())
            print(
                f"seed {seed}: {seconds:.0f} s, loss {fit['loss']:.3g}; curve distance from SW (relative "
                f"RMS): {', '.join(distances)}; "
                f"stiffness Å: {stiffness}",
                flush=True,
            )


if __name__ == "__main__":
    main()
