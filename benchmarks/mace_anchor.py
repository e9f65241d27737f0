"""Train and test a small MACE model (mace-torch) on given extxyz splits: the anchor
that `benchmarks/hybrid.py --anchor mace` prints beside evopot's models.

Runs under the Python of a separate environment that has mace-torch (`make mace-anchor`
makes `.venv-mace`); it does not import evopot, and evopot does not depend on
mace-torch. The splits carry `REF_energy` (info) and `REF_forces` (arrays); the last
line printed is a JSON object with the test errors and the training time.

    .venv-mace/bin/python benchmarks/mace_anchor.py --train T.xyz --valid V.xyz --test X.xyz --out DIR
        [--epochs 60] [--seed 1] [--r-max 5.0] [--channels 32] [--max-l 1]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import ase.io
import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for name in ("train", "valid", "test", "out"):
        parser.add_argument(f"--{name}", required=True)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--r-max", type=float, default=5.0, help="cutoff in Å (evopot's correction: 5 Å)")
    parser.add_argument("--channels", type=int, default=32, help="channels of the hidden irreps")
    parser.add_argument("--max-l", type=int, default=1, help="the hidden features' highest angular order")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    out = Path(args.out).resolve()
    args.train, args.valid, args.test = (str(Path(f).resolve()) for f in (args.train, args.valid, args.test))
    out.mkdir(parents=True, exist_ok=True)
    irreps = " + ".join(f"{args.channels}x{ell}{'e' if ell % 2 == 0 else 'o'}" for ell in range(args.max_l + 1))
    command = [
        sys.executable,
        "-m",
        "mace.cli.run_train",
        "--name=anchor",
        f"--seed={args.seed}",
        f"--train_file={args.train}",
        f"--valid_file={args.valid}",
        "--energy_key=REF_energy",
        "--forces_key=REF_forces",
        "--E0s=average",
        "--model=MACE",
        f"--hidden_irreps={irreps}",
        f"--r_max={args.r_max}",
        "--num_interactions=2",
        "--correlation=3",
        "--max_ell=3",
        f"--batch_size={args.batch_size}",
        f"--valid_batch_size={args.batch_size}",
        f"--max_num_epochs={args.epochs}",
        "--forces_weight=100",
        "--energy_weight=1",
        "--lr=0.01",
        "--scheduler_patience=5",
        "--device=cpu",
        "--default_dtype=float64",
        "--eval_interval=1",
        "--error_table=PerAtomMAE",
        f"--model_dir={out}",
        f"--log_dir={out / 'logs'}",
        f"--checkpoints_dir={out / 'checkpoints'}",
        f"--results_dir={out / 'results'}",
        "--restart_latest",
    ]
    environment = {"OMP_NUM_THREADS": str(args.threads), "PATH": "/usr/bin:/bin"}
    start = time.perf_counter()
    done = subprocess.run(command, cwd=out, env=environment, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    (out / "train.log").write_text(done.stdout + done.stderr)
    if done.returncode:
        sys.exit(
            f"mace_run_train failed (exit {done.returncode}); its output is in {out / 'train.log'}:\n"
            + (done.stdout + done.stderr)[-3000:]
        )

    import torch
    from mace.calculators import MACECalculator

    torch.set_num_threads(args.threads)
    model = out / "anchor.model"
    calculator = MACECalculator(model_paths=str(model), device="cpu", default_dtype="float64")
    force_errors, energy_errors = [], []
    for atoms in ase.io.read(args.test, ":"):
        reference_energy, reference_forces = atoms.info["REF_energy"], atoms.arrays["REF_forces"]
        atoms.calc = calculator
        force_errors.append(np.abs(atoms.get_forces() - reference_forces).ravel())
        energy_errors.append(abs(atoms.get_potential_energy() - reference_energy) / len(atoms))
    parameters = sum(p.numel() for p in torch.load(model, weights_only=False).parameters())
    print(
        json.dumps(
            {
                "force_mae": float(np.concatenate(force_errors).mean()),  # over components, as evopot
                "energy_mae": float(np.mean(energy_errors) * 1000),
                "seconds": seconds,
                "epochs": args.epochs,
                "hidden_irreps": irreps,
                "parameters": int(parameters),
            }
        )
    )


if __name__ == "__main__":
    main()
