"""Hybrid vs network alone over seeds and training settings, many trainings at once.

Each variant is one word list: ``alone``, ``hybrid`` or ``formula`` (see MODELS)
followed by ``key=value`` pairs that override the `correction:` defaults (any
CorrectionConfig field, e.g. ``seed=2 patience=1500 hidden=128,128 loss=mse
formula_inputs=false config_type_weights=Surface:4``), and ``train_fraction=0.25``
to train on that share of each config type's training frames (the same frames for
every model and seed: a learning curve). The network inputs and their
Jacobians are built once per descriptor and shared (memory-mapped) by the worker
processes, so a sweep of a dozen variants on a many-core machine (or one GPU) costs
little more than one. Prints each variant's validation force MAE (to choose by), Si
test force and energy MAE, its best epoch and training time, then, for variants that
differ only in their seed, the MAE of their mean prediction (an ensemble), and for a
hybrid setting beside the network alone's same setting, the gap between their (mean)
predictions' force MAE with a 95 % bootstrap interval over the test frames: how much of
the gap which frames the test set happens to hold could explain. With
``--cache DIR`` each finished training's predictions are kept in DIR under a hash of
everything that decides them (run, member, model, seed, settings, train_fraction),
and a later sweep reuses them: add seeds 5–8 to an ensemble without training 1–4
again, or compare another member with the network alone without training that again.

    .venv/bin/python benchmarks/hybrid_sweep.py --run RUN [--member K] [--jobs J] [--device cuda] [--cache DIR] \
        "alone seed=1" "hybrid seed=1" "hybrid seed=1 energy_weight=1"
"""

from __future__ import annotations

import argparse
import hashlib
import json
import signal
import sys
import tempfile
import time
from dataclasses import replace
from multiprocessing import get_context
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from paired import paired_gap, verdict
from run_member import load_member

from evopot.config.schema import CorrectionConfig
from evopot.data.geometry import build_geometry
from evopot.devices import resolve_device
from evopot.model.evaluate import evaluate
from evopot.model.potential import Potential
from evopot.neural.correct import (
    check_frame_weights,
    descriptor_for,
    frame_weights,
    residual_for,
    symmetry_functions,
    training_settings,
)
from evopot.neural.hybrid import formula_only
from evopot.neural.network import network_inputs
from evopot.neural.residual import ensemble_prediction, train_correction

DESCRIPTOR_KEYS = (
    "cutoff",
    "angular_cutoff",
    "radial_functions",
    "angular_shells",
    "moment_channels",
    "formula_inputs",
)
#: alone: DFT labels, symmetry functions only; hybrid: DFT minus the formula, with the
#: formula's term energies as inputs unless formula_inputs=false; formula: the formula's
#: own labels (how hard the formula is for the network)
MODELS = ("alone", "hybrid", "formula")


def data_key(model: str, fields: dict) -> tuple:
    """Variants with the same key share their network inputs."""
    return (*(fields[k] for k in DESCRIPTOR_KEYS[:-1]), model != "alone" and fields["formula_inputs"])


class Variant(NamedTuple):
    name: str
    model: str
    seed: int
    fraction: float  # of each config type's training frames
    fields: dict  # CorrectionConfig


def parse(variant: str, defaults: dict) -> Variant:
    words = variant.split()
    if not words or words[0] not in MODELS:
        raise SystemExit(f"variant '{variant}': start with one of {MODELS}")
    fields, seed, fraction = dict(defaults), 1, 1.0
    for word in words[1:]:
        key, _, value = word.partition("=")
        if key == "seed":
            seed = int(value)
        elif key == "train_fraction":
            fraction = float(value)
            if not 0 < fraction <= 1:
                raise SystemExit(f"variant '{variant}': train_fraction must be in (0, 1]")
        elif key == "hidden":
            fields[key] = [int(v) for v in value.split(",")]
        elif key == "config_type_weights":  # Surface:4,Vacancy:2
            fields[key] = {name: float(w) for name, _, w in (pair.partition(":") for pair in value.split(","))}
        else:
            fields[key] = value
    return Variant(variant, words[0], seed, fraction, CorrectionConfig(**fields).model_dump())


def subset(config_types: list[str], fraction: float) -> np.ndarray:
    """Frame indices: ``fraction`` of each config type's frames (at least one), drawn
    with a fixed seed so that every model and seed trains on the same ones."""
    rng, types = np.random.default_rng(0), np.array(config_types)
    chosen = [
        rng.permutation(np.flatnonzero(types == t))[: max(1, round(fraction * np.sum(types == t)))]
        for t in sorted(set(config_types))
    ]
    return np.sort(np.concatenate(chosen))


def cache_file(cache: Path | None, run_path: Path, potential: Potential, number: int, v: Variant) -> Path | None:
    """Where the cache keeps this training (None without a ``cache`` folder); the device
    is left out of the key (CUDA and CPU agree to rounding). The network alone does not
    see the formula, so its key names the symmetry functions instead of the member: one
    training serves every member's comparison."""
    if cache is None:
        return None
    source = symmetry_functions(potential, CorrectionConfig(**v.fields)).to_dict() if v.model == "alone" else number
    settings = {k: value for k, value in v.fields.items() if k != "device"}
    key = [str(run_path.resolve()), source, v.model, v.seed, settings] + ([v.fraction] if v.fraction < 1 else [])
    key = json.dumps(key, sort_keys=True)
    return cache / f"{hashlib.sha256(key.encode()).hexdigest()[:16]}.npz"


def train_one(data_file: str, model: str, seed: int, fraction: float, fields: dict, threads: int) -> dict:
    torch.set_num_threads(threads)
    settings = CorrectionConfig(**fields)
    data = torch.load(data_file, mmap=True, weights_only=False)
    descriptor = network_inputs(data["descriptor"], data_file, formula_only(Potential.load(data["formula"])))
    device = resolve_device(settings.device)
    weights = {
        split: frame_weights(types, settings.config_type_weights) for split, types in data["config_types"].items()
    }
    splits = {
        split: replace(
            d,
            energies=data["targets"][model][split][0],
            forces=data["targets"][model][split][1],
            frame_weights=None if weights[split] is None else torch.as_tensor(weights[split]),
        ).to(device)
        for split, d in data["splits"].items()
    }
    if fraction < 1:
        splits["train"] = splits["train"].batch(subset(data["config_types"]["train"], fraction))
    start = time.perf_counter()
    correction, log = train_correction(
        descriptor, splits["train"], splits["validation"], training_settings(settings, seed), progress=False
    )
    seconds = time.perf_counter() - start
    energies, forces = ensemble_prediction(correction, splits["test"])
    validation = float(
        (ensemble_prediction(correction, splits["validation"])[1].mean(0) - splits["validation"].forces).abs().mean()
    )
    return {
        "forces": forces.mean(0).cpu().numpy(),
        "energies": energies.mean(0).cpu().numpy(),
        "seconds": seconds,
        "validation": validation,
        "epochs": [n["best_epoch"] for n in log.networks],
        "frames": splits["train"].n_frames,
    }


def _train(job: tuple) -> tuple[Variant, dict]:
    variant, data_file, threads = job
    return variant, train_one(data_file, variant.model, variant.seed, variant.fraction, variant.fields, threads)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", required=True, help="a finished run directory (its splits and a front member)")
    parser.add_argument(
        "--member", type=int, help="front member (default: the one with the lowest validation force MAE)"
    )
    parser.add_argument("--jobs", type=int, default=2, help="trainings at once")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per training")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--epochs", type=int, default=1500)
    parser.add_argument("--patience", type=int, default=150)
    parser.add_argument("--ensemble", type=int, default=1)
    parser.add_argument("--batch-frames", type=int, default=8)
    parser.add_argument("--cache", type=Path, help="folder where finished trainings are kept and found again")
    parser.add_argument("variants", nargs="+")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    run, number, potential, _, dataset = load_member(args.run, args.member)
    splits = dataset.splits()
    defaults = {
        "epochs": args.epochs,
        "patience": args.patience,
        "ensemble": args.ensemble,
        "device": args.device,
        "batch_frames": args.batch_frames,
    }
    variants = [parse(v, defaults) for v in args.variants]
    for v in variants:
        check_frame_weights(v.fields["config_type_weights"], splits["train"], splits["validation"])
    print(f"formula: member {number} of {run.path}: {potential.formula()}", flush=True)

    types = sorted(set(splits["test"].config_types))
    formulas = {
        split: evaluate(potential, build_geometry(splits[split], potential.reach, potential.species))
        for split in ("train", "validation", "test")
    }
    test = splits["test"]
    counts = np.array([len(a) for a in test.atoms])
    kind = np.repeat(np.array(test.config_types), counts)
    labels = {
        "alone": (test.energies, np.concatenate(test.forces)),
        "hybrid": (test.energies - formulas["test"].energies, np.concatenate(test.forces) - formulas["test"].forces),
        "formula": (formulas["test"].energies, formulas["test"].forces),
    }

    def atom_errors(model: str, forces: np.ndarray) -> np.ndarray:
        """Each test atom's mean absolute force-component error (eV/Å): the hybrid's (its
        network's prediction plus the formula) against DFT."""
        return np.abs(forces - labels[model][1]).mean(1)

    def row(model: str, forces: np.ndarray, energies: np.ndarray) -> tuple[float, float, dict]:
        """Test force MAE, energy MAE (meV/atom) and force MAE per config type."""
        deviation = atom_errors(model, forces)
        return (
            float(deviation.mean()),
            float(np.mean(np.abs(energies - labels[model][0]) / counts)) * 1000,
            {t: float(deviation[kind == t].mean()) for t in types},
        )

    results, to_train = {}, []
    paths = {v.name: cache_file(args.cache, run.path, potential, number, v) for v in variants}
    for v in variants:
        path = paths[v.name]
        if path is None or not path.exists():
            to_train.append(v)
            continue
        with np.load(path) as saved:
            r = {
                "forces": saved["forces"],
                "energies": saved["energies"],
                "seconds": float(saved["seconds"]),
                "validation": float(saved["validation"]),
                "epochs": saved["epochs"].tolist(),
                "frames": int(saved["frames"]) if "frames" in saved else len(splits["train"]),
            }
        results[v.name] = r | dict(zip(("force", "energy", "by_type"), row(v.model, r["forces"], r["energies"])))
        print(f"  {v.name}: {results[v.name]['force']:.4f} eV/Å (kept in {path})", flush=True)
    if args.cache is not None:
        args.cache.mkdir(parents=True, exist_ok=True)

    folder = Path(tempfile.mkdtemp())
    potential.save(
        folder / "formula.json"
    )  # the workers rebuild the network's inputs from it (lambdified functions do not pickle)
    files = {}
    for v in to_train:
        key = data_key(v.model, v.fields)
        if key in files:
            continue
        settings = CorrectionConfig(**v.fields)
        descriptor = (
            symmetry_functions(potential, settings) if v.model == "alone" else descriptor_for(potential, settings)
        )
        start = time.perf_counter()
        data = {
            "descriptor": descriptor.to_dict(),
            "formula": str(folder / "formula.json"),
            "splits": {},
            "targets": {"alone": {}, "hybrid": {}, "formula": {}},
            "config_types": {split: list(splits[split].config_types) for split in ("train", "validation", "test")},
        }
        for split in ("train", "validation", "test"):
            dft = residual_for(None, splits[split], descriptor)
            formula = formulas[split]
            data["splits"][split] = dft
            data["targets"]["alone"][split] = (dft.energies, dft.forces)
            data["targets"]["hybrid"][split] = (
                dft.energies - torch.as_tensor(formula.energies),
                dft.forces - torch.as_tensor(formula.forces),
            )
            data["targets"]["formula"][split] = (torch.as_tensor(formula.energies), torch.as_tensor(formula.forces))
        files[key] = str(folder / f"data{len(files)}.pt")
        torch.save(data, files[key])
        print(
            f"  {descriptor.n_features} inputs {dict(zip(DESCRIPTOR_KEYS, key))}: {time.perf_counter() - start:.0f} s",
            flush=True,
        )

    jobs = [(v, files[data_key(v.model, v.fields)], args.threads) for v in to_train]
    signal.signal(
        signal.SIGTERM, lambda *_: sys.exit(143)
    )  # so that a kill leaves the with-block and its workers go too
    with get_context("spawn").Pool(
        args.jobs
    ) as pool:  # leaving the block (an error, ^C, SIGTERM) terminates the workers
        for v, r in pool.imap_unordered(_train, jobs):
            results[v.name] = r | dict(zip(("force", "energy", "by_type"), row(v.model, r["forces"], r["energies"])))
            if paths[v.name] is not None:
                np.savez(
                    paths[v.name],
                    forces=r["forces"],
                    energies=r["energies"],
                    seconds=r["seconds"],
                    validation=r["validation"],
                    epochs=np.array(r["epochs"]),
                    frames=r["frames"],
                )
            print(
                f"  {v.name}: {results[v.name]['force']:.4f} eV/Å, {results[v.name]['energy']:.2f} meV/atom, "
                f"{r['seconds']:.0f} s",
                flush=True,
            )
    print(f"\nSi test set ({len(splits['test'])} frames); device {args.device}, {args.jobs} at once")
    print(
        f"{'variant':<50} {'frames':>6} {'val F-MAE':>10} {'F-MAE eV/Å':>11} {'E-MAE meV/at':>13} {'s':>6} "
        f"{'best epoch':>11}   " + "  ".join(types)
    )
    groups = {}
    for v in variants:
        r = results[v.name]
        print(
            f"{v.name:<50} {r['frames']:6d} {r['validation']:10.4f} {r['force']:11.4f} {r['energy']:13.2f} "
            f"{r['seconds']:6.0f} {','.join(map(str, r['epochs'])):>11}   "
            + "  ".join(f"{r['by_type'][t]:.3f}" for t in types)
        )
        groups.setdefault((v.model, " ".join(w for w in v.name.split() if not w.startswith("seed="))), []).append(r)
    for (model, name), members in groups.items():
        if len(members) > 1:  # the seeds of one setting as an ensemble: the mean of their predictions
            force, energy, by_type = row(
                model, np.mean([m["forces"] for m in members], 0), np.mean([m["energies"] for m in members], 0)
            )
            print(
                f"{f'{name}: ensemble of {len(members)} seeds':<50} {'':>6} {'':>10} {force:11.4f} "
                f"{energy:13.2f} {'':>6} {'':>11}   "
                + "  ".join(f"{by_type[t]:.3f}" for t in types)
                + f"   (members' mean {np.mean([m['force'] for m in members]):.4f})"
            )
    for (model, name), members in groups.items():
        alone_name = " ".join(["alone"] + name.split(maxsplit=1)[1:])
        alone = groups.get(("alone", alone_name))
        if model != "hybrid" or alone is None:
            continue
        # the same comparison on test sets drawn from this one: is the gap more than which frames happen to be in it?
        hybrid_errors, alone_errors = (
            atom_errors(m, np.mean([r["forces"] for r in rs], 0)) for m, rs in (("hybrid", members), ("alone", alone))
        )
        gap, low, high = paired_gap(hybrid_errors, alone_errors, counts)
        seeds = f"{len(members)} and {len(alone)} seeds" if len(members) > 1 or len(alone) > 1 else "one seed each"
        print(
            f"{name} minus {alone_name} ({seeds}): {gap:+.4f} eV/Å, 95 % interval over resampled test frames "
            f"{low:+.4f} … {high:+.4f}: {verdict(gap, low, high)}"
        )


if __name__ == "__main__":
    main()
