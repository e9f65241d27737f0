"""How fast the neural correction trains, per device: CPU here, CUDA where a GPU is.

The network alone on the bundled Si DFT data (`examples/silicon_threebody.yaml`'s
training and validation splits, default symmetry functions to 5 Å), one Behler–Parrinello
MLP (or, with ``--models``, an interaction network too), a fixed number of epochs (no
early stopping), on each device given. Prints the time
to build the inputs (symmetry functions and their Jacobians; always on the CPU), seconds
per epoch on each device, and, with ``--reference`` (seconds per epoch measured elsewhere,
e.g. on the 2-core development machine), the speed-up over it.

    .venv/bin/python benchmarks/correction_speed.py [--devices cpu cuda] [--epochs 20] [--batch-frames 8 32]
    [--reference S]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch

from evopot.config.schema import CorrectionConfig, load_config
from evopot.data.dataset import dataset_from_config
from evopot.neural.correct import residual_for, training_settings
from evopot.neural.descriptors import SymmetryFunctions
from evopot.neural.residual import train_correction

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", nargs="+", default=["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--hidden", type=int, nargs="+", default=[64, 64])
    parser.add_argument("--batch-frames", type=int, nargs="+", default=[8])
    parser.add_argument(
        "--models", nargs="+", choices=("bpnn", "interaction"), default=["bpnn"], help="correction.model to time"
    )
    parser.add_argument(
        "--reference", type=float, help="seconds per epoch measured elsewhere at the first batch size, for the speed-up"
    )
    args = parser.parse_args()
    config = load_config(ROOT / "examples" / "silicon_threebody.yaml")
    splits = dataset_from_config(config).splits()
    descriptor = SymmetryFunctions.default(("Si",), 5.0)
    start = time.perf_counter()
    train, validation = (residual_for(None, splits[s], descriptor) for s in ("train", "validation"))
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads ({os.cpu_count()} cores); inputs "
        f"of {train.n_frames} + "
        f"{validation.n_frames} frames ({len(train.features)} + {len(validation.features)} atoms, "
        f"{descriptor.n_features} features, "
        f"{len(train.center)} + {len(validation.center)} bonds) built in {time.perf_counter() - start:.1f} s "
        f"on the CPU",
        flush=True,
    )
    for device in args.devices:
        name = torch.cuda.get_device_name(device) if device.startswith("cuda") else "CPU"
        there = (train.to(device), validation.to(device))
        for model, batch in [(m, b) for m in args.models for b in args.batch_frames]:
            settings = CorrectionConfig(
                ensemble=1,
                epochs=args.epochs,
                hidden=args.hidden,
                patience=args.epochs + 1,
                batch_frames=batch,
                device=device,
                model=model,
            )
            train_correction(
                descriptor, *there, training_settings(settings.model_copy(update={"epochs": 1}), 0), progress=False
            )  # warm-up
            _, log = train_correction(descriptor, *there, training_settings(settings, 0), progress=False)
            per_epoch = log.seconds / args.epochs
            line = (
                f"{device:6s} ({name}): {model} {args.hidden}, batch {batch} frames: {per_epoch:.3f} s per epoch "
                f"({args.epochs} epochs, validation force MAE {log.networks[0]['validation_force_mae']:.4f} eV/Å)"
            )
            if args.reference and batch == args.batch_frames[0]:
                line += (
                    f"; speed-up over the reference {args.reference:.3f} s per epoch: {args.reference / per_epoch:.1f}×"
                )
            print(line, flush=True)


if __name__ == "__main__":
    main()
