"""Hybrid potential on real DFT silicon (mlearn Si, VASP PBE): formula alone, the
network alone and formula + network, side by side on the test frames.

The formula is a front member of a run (default: run `evopot search
examples/silicon_threebody.yaml` first, or give --run); the network alone and the
hybrid's correction have the same symmetry functions, architecture, epochs and
ensemble, the network alone fitted to the raw DFT labels, the correction to DFT minus
the formula and reading the formula's per-atom term energies as more inputs
(`correction.formula_inputs`; --plain-hybrid adds a row without them). Then the ensemble's uncertainty: a hybrid
trained without the Surface
frames, its force spread on the (held-out) Surface frames over its spread on the
in-distribution test frames. Targets: test force MAE ≤ 0.06 eV/Å (MTP published 0.06,
GAP 0.07) and hybrid < network alone, by more than the test set's sampling (a 95 %
bootstrap interval over its frames, :mod:`paired`).

With ``--anchor mace`` a small MACE model (mace-torch, equivariant message passing)
is trained on the same train/validation split and tested on the same frames, by
``benchmarks/mace_anchor.py`` in its own environment (``make mace-anchor``; mace-torch
is never a dependency of evopot), its test errors and training time printed beside
evopot's.

    .venv/bin/python benchmarks/hybrid.py [--run RUN] [--member K] [--epochs N] [--ensemble M] [--device cuda]
    [--batch-frames B] [--anchor mace --anchor-epochs E]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

import ase.io
import numpy as np
import torch
from paired import paired_gap, verdict
from run_member import load_member, silicon_run

from evopot.config.schema import CorrectionConfig
from evopot.data.dataset import Frames, read_frames, split_by_config_type, split_by_fraction
from evopot.neural.correct import descriptor_for, errors, symmetry_functions, train_hybrid
from evopot.neural.hybrid import Hybrid, predict

ROOT = Path(__file__).resolve().parents[1]
TARGET = 0.06


def _concatenate(a: Frames, b: Frames) -> Frames:
    return Frames(
        a.atoms + b.atoms,
        np.concatenate([a.energies, b.energies]),
        a.forces + b.forces,
        a.config_types + b.config_types,
    )


def _errors(prediction, frames: Frames) -> dict:
    """:func:`errors` plus the force MAE of each config type and each atom's."""
    out = errors(prediction, frames)
    atom_type = np.repeat(frames.config_types, [len(a) for a in frames.atoms])
    deviation = np.abs(prediction.forces - np.concatenate(frames.forces)).mean(1)
    out["by_type"] = {t: float(deviation[atom_type == t].mean()) for t in set(frames.config_types)}
    out["by_atom"] = deviation
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", help="a finished run directory (default: search examples/silicon_threebody.yaml now)")
    parser.add_argument(
        "--member", type=int, help="front member (default: the one with the lowest validation force MAE)"
    )
    defaults = CorrectionConfig()
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--ensemble", type=int, default=1, help="networks per model in the three-way comparison")
    parser.add_argument("--hidden", type=int, nargs="+", default=defaults.hidden)
    parser.add_argument("--patience", type=int, default=defaults.patience)
    parser.add_argument("--uncertainty-ensemble", type=int, default=4)
    parser.add_argument("--uncertainty-epochs", type=int, default=300)
    parser.add_argument("--device", default="cpu", help="where the networks train: cpu, cuda, …")
    parser.add_argument("--batch-frames", type=int, default=8)
    parser.add_argument("--loss", choices=("mae", "mse"), default=defaults.loss)
    parser.add_argument(
        "--plain-hybrid", action="store_true", help="also a hybrid whose network sees the symmetry functions only"
    )
    parser.add_argument("--uncertainty-only", action="store_true", help="skip the three-way comparison")
    parser.add_argument("--no-uncertainty", action="store_true", help="skip the uncertainty measurement")
    parser.add_argument(
        "--model", choices=("bpnn", "interaction"), default=defaults.model, help="the networks' kind (correction.model)"
    )
    parser.add_argument("--width", type=int, default=defaults.interaction.width, help="interaction network width")
    parser.add_argument("--rounds", type=int, default=defaults.interaction.rounds, help="interaction rounds")
    parser.add_argument(
        "--anchor",
        choices=("mace",),
        help="also train a small MACE model on the same splits (mace-torch in its own environment: make mace-anchor)",
    )
    parser.add_argument("--anchor-epochs", type=int, default=60, help="MACE's epochs")
    parser.add_argument("--anchor-python", default=str(ROOT / ".venv-mace" / "bin" / "python"))
    args = parser.parse_args()
    torch.set_num_threads(2)

    run, number, potential, config, dataset = load_member(silicon_run(args.run), args.member)
    splits = dataset.splits()
    settings = CorrectionConfig(
        ensemble=args.ensemble,
        epochs=args.epochs,
        hidden=args.hidden,
        patience=args.patience,
        device=args.device,
        batch_frames=args.batch_frames,
        loss=args.loss,
        model=args.model,
        interaction={"width": args.width, "rounds": args.rounds},
    )
    symmetry, descriptor = symmetry_functions(potential, settings), descriptor_for(potential, settings)
    print(f"formula: member {number} of {run.path}: {potential.formula()}")
    inputs = f"{len(symmetry.moment_invariants)} moment invariants" if symmetry.moments else "no moment invariants"
    print(
        f"{symmetry.n_features} inputs: symmetry functions and {inputs} (radial to {symmetry.cutoff} Å, "
        f"angular to {symmetry.angular_cutoff} Å; the hybrid's network "
        f"also reads the formula's {len(potential.terms)} term energies), {args.ensemble} × "
        + (f"MLP {args.hidden}" if args.model == "bpnn" else f"interaction network {settings.interaction}")
        + f", {args.loss} loss, "
        f"{args.epochs} epochs ({settings.schedule} schedule), best epoch on {len(splits['validation'])} "
        f"validation frames"
    )

    if not args.uncertainty_only:
        compare(potential, splits, settings, symmetry, descriptor, config.seed, args)
    if not args.no_uncertainty:
        uncertainty(potential, dataset, splits, descriptor, config.seed, args)


def compare(potential, splits: dict, settings: CorrectionConfig, symmetry, descriptor, seed: int, args) -> None:
    """Formula alone, network alone and hybrid on the test split, side by side."""
    rows = [("formula alone", _errors(predict(potential, splits["test"]), splits["test"]), 0.0)]
    models = [("network alone", None, symmetry), ("hybrid", potential, descriptor)] + (
        [("plain hybrid", potential, symmetry)] if args.plain_hybrid else []
    )
    for name, formula, inputs in models:
        start = time.perf_counter()
        correction, _ = train_hybrid(formula, splits, settings, inputs, seed, progress=False)
        seconds = time.perf_counter() - start
        if formula is None:  # the network alone on top of a formula with no terms
            from dataclasses import replace

            model = Hybrid(replace(potential, terms=(), reference_energies={}), correction)
        else:
            model = Hybrid(potential, correction)
        rows.append((name, _errors(predict(model, splits["test"]), splits["test"]), seconds))
        print(f"  trained {name} in {seconds:.0f} s", flush=True)

    if args.anchor == "mace":
        anchor = mace_anchor(splits, seed, args)
        if anchor is not None:
            rows.append((f"MACE {anchor['hidden_irreps']}", anchor, anchor["seconds"]))

    where = (
        torch.cuda.get_device_name(args.device)
        if args.device.startswith("cuda")
        else f"CPU, {torch.get_num_threads()} threads"
    )
    print(
        f"\nSi test set ({len(splits['test'])} frames, {splits['test'].n_atoms} atoms); networks trained on "
        f"{args.device} ({where}), "
        f"batches of {args.batch_frames} frames"
    )
    types = sorted(set(splits["test"].config_types))
    print(
        f"{'model':<15} {'force MAE eV/Å':>15} {'energy MAE meV/atom':>20} {'training s':>11}   force MAE by "
        f"config type"
    )
    for name, e, seconds in rows:
        by_type = "  ".join(f"{t} {e['by_type'][t]:.3f}" for t in types if t in e.get("by_type", {}))
        print(f"{name:<15} {e['force_mae']:15.4f} {e['energy_mae']:20.2f} {seconds:11.0f}   {by_type}")
    hybrid, alone = rows[2][1], rows[1][1]  # the plain hybrid, if any, is row 3
    gap, low, high = paired_gap(hybrid["by_atom"], alone["by_atom"], [len(a) for a in splits["test"].atoms])
    print(
        f"hybrid / target {TARGET}: {hybrid['force_mae'] / TARGET:.2f}  "
        f"({'met' if hybrid['force_mae'] <= TARGET else 'NOT met'});  "
        f"hybrid / network alone: {hybrid['force_mae'] / alone['force_mae']:.2f}, hybrid minus network alone "
        f"{gap:+.4f} eV/Å "
        f"(95 % interval over resampled test frames {low:+.4f} … {high:+.4f}): {verdict(gap, low, high)}"
    )


def mace_anchor(splits: dict, seed: int, args) -> dict | None:
    """A small MACE model trained and tested on the same splits by
    ``benchmarks/mace_anchor.py`` under the Python that has mace-torch; None (and one
    line saying so) where there is none."""
    python = Path(args.anchor_python)
    found = python.exists() and subprocess.run([str(python), "-c", "import mace"], capture_output=True).returncode == 0
    if not found:
        print(
            f"  anchor MACE skipped: no mace-torch at {python} (it is not a dependency of evopot; `make mace-anchor` "
            f"installs it into .venv-mace, or give --anchor-python)",
            flush=True,
        )
        return None
    folder = Path(tempfile.mkdtemp(prefix="mace_anchor_"))
    files = {}
    for name in ("train", "validation", "test"):
        frames = splits[name]
        for atoms, energy, forces, config_type in zip(
            frames.atoms, frames.energies, frames.forces, frames.config_types
        ):
            atoms = atoms.copy()
            atoms.calc = None
            atoms.info = {"REF_energy": float(energy), "config_type": config_type}
            atoms.arrays["REF_forces"] = np.asarray(forces)
            ase.io.write(folder / f"{name}.xyz", atoms, format="extxyz", append=True)
        files[name] = folder / f"{name}.xyz"
    command = [
        str(python),
        str(Path(__file__).with_name("mace_anchor.py")),
        f"--train={files['train']}",
        f"--valid={files['validation']}",
        f"--test={files['test']}",
        f"--out={folder / 'model'}",
        f"--epochs={args.anchor_epochs}",
        f"--seed={seed}",
    ]
    print(f"  training MACE ({args.anchor_epochs} epochs) in {folder} …", flush=True)
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        print(f"  anchor MACE failed:\n{(done.stdout + done.stderr)[-2000:]}", flush=True)
        return None
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"  trained MACE in {result['seconds']:.0f} s ({result['parameters']} parameters)", flush=True)
    return result


def uncertainty(potential, dataset, splits: dict, descriptor, seed: int, args) -> None:
    """The ensemble's force spread on held-out Surface frames over its spread on
    in-distribution frames, trained without any Surface frame."""
    everything = (
        _concatenate(read_frames(dataset.train.source), splits["test"])
        if dataset.train.source
        else _concatenate(splits["train"], splits["test"])
    )
    parts = split_by_config_type(everything, {"held_out": ["Surface"]})
    inside = split_by_fraction(parts["train"], {"validation": 0.1, "test": 0.1}, seed)
    held = {"train": inside["train"], "validation": inside["validation"]}
    ensemble = CorrectionConfig(
        ensemble=args.uncertainty_ensemble,
        epochs=args.uncertainty_epochs,
        hidden=args.hidden,
        patience=args.patience,
        device=args.device,
        batch_frames=args.batch_frames,
        model=args.model,
        interaction={"width": args.width, "rounds": args.rounds},
    )
    start = time.perf_counter()
    correction, _ = train_hybrid(potential, held, ensemble, descriptor, seed, progress=False)
    model = Hybrid(potential, correction)
    seconds = time.perf_counter() - start
    spread_in = float(predict(model, inside["test"]).uncertainty.mean())
    spread_out = float(predict(model, parts["held_out"]).uncertainty.mean())
    print(
        f"\nuncertainty ({args.uncertainty_ensemble} networks trained without Surface frames, {seconds:.0f} "
        f"s): mean per-atom force spread "
        f"{spread_out:.4f} eV/Å on {len(parts['held_out'])} Surface frames vs {spread_in:.4f} on "
        f"{len(inside['test'])} in-distribution frames: "
        f"ratio {spread_out / spread_in:.2f}"
    )


if __name__ == "__main__":
    main()
