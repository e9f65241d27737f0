"""Real DFT silicon (mlearn Si, VASP PBE): the best discovered formula against baselines.

Runs `evopot search` with a config (default examples/silicon_pair.yaml: train on
training.extxyz, validation split from it, report on test.extxyz), picks the front
member with the lowest validation force MAE, and prints its test force MAE and energy
MAE next to two baselines measured here on the same test frames: predicting zero
force, and the classical Stillinger–Weber potential (matscipy, PRB 31, 5262
parameters). Ratios below 1 mean the discovered formula is better.

    .venv/bin/python benchmarks/silicon.py [--config examples/silicon_pair.yaml] [--generations N]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

import evopot
from evopot.config.schema import load_config
from evopot.data.dataset import read_frames
from evopot.model.metrics import zero_force_errors

ROOT = Path(__file__).resolve().parents[1]


def stillinger_weber_errors(frames) -> dict[str, float]:
    from matscipy.calculators.manybody import Manybody
    from matscipy.calculators.manybody.explicit_forms import StillingerWeber
    from matscipy.calculators.manybody.explicit_forms.stillinger_weber import Stillinger_Weber_PRB_31_5262_Si

    calculator = Manybody(**StillingerWeber(Stillinger_Weber_PRB_31_5262_Si))
    errors = []
    for atoms, reference in zip(frames.atoms, frames.forces):
        copy = atoms.copy()
        copy.calc = calculator
        errors.append(copy.get_forces() - reference)
    e = np.concatenate(errors)
    return {"force_mae": float(np.abs(e).mean()), "force_rmse": float(np.sqrt((e**2).mean()))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "examples/silicon_pair.yaml"))
    parser.add_argument("--generations", type=int)
    parser.add_argument("--seed", type=int)
    args = parser.parse_args()
    overrides = {k: v for k, v in {"engine.generations": args.generations, "seed": args.seed}.items() if v is not None}
    config = load_config(args.config, overrides)
    with tempfile.TemporaryDirectory() as folder:
        config = config.model_copy(update={"output": Path(folder) / "run"})
        result = evopot.search(config, progress=False, config_path=args.config)
    best = result.best("validation")
    test = read_frames(config.data.test)
    zero = zero_force_errors(test)
    sw = stillinger_weber_errors(test)
    found = best.errors["test"]
    print(
        f"config {args.config}, seed {config.seed}, {result.generations} generations, {result.wall_time:.0f} "
        f"s on this machine"
    )
    print(
        f"front: {len(result.front)} members; chosen by validation force MAE: member {best.member}, "
        f"{best.complexity} nodes"
    )
    print(f"formula: {best.formula}")
    print(f"{'Si test set':34s} {'force MAE eV/Å':>15s} {'force RMSE':>11s} {'energy MAE meV/atom':>20s}")
    print(
        f"{'discovered formula':34s} {found['force_mae']:15.4f} {found['force_rmse']:11.4f} {found['energy_mae']:20.1f}"
    )
    print(f"{'zero force':34s} {zero['force_mae']:15.4f} {zero['force_rmse']:11.4f} {'':>20s}")
    print(f"{'Stillinger-Weber (matscipy)':34s} {sw['force_mae']:15.4f} {sw['force_rmse']:11.4f} {'':>20s}")
    print(
        f"ratio to zero force: {found['force_mae'] / zero['force_mae']:.3f}; ratio to Stillinger-Weber: "
        f"{found['force_mae'] / sw['force_mae']:.3f}"
    )
    pick = result.recommended()
    print(
        f"recommended (simplest within 5 % of the best validation MAE): member {pick.member}, {pick.complexity} nodes, "
        f"test force MAE {pick.errors['test']['force_mae']:.4f} eV/Å, energy MAE "
        f"{pick.errors['test']['energy_mae']:.1f} meV/atom"
    )
    print(f"  {pick.formula}")


if __name__ == "__main__":
    main()
