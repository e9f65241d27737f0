"""Real DFT labelling with GPAW (``make dft``): seconds per frame of ``evopot data`` on
8-atom Si cells on 2 Dask workers, and GPAW PBE forces on bundled mlearn Si frames
against the VASP PBE forces stored there (force MAE between the two codes).

    .venv/bin/python benchmarks/gpaw_reference.py [--frames 4] [--ecut 400] [--compare 4]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import ase.io
import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
SI = ROOT / "examples" / "data" / "Si" / "training.extxyz"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=4, help="8-atom Si cells labelled by evopot data")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--ecut", type=float, default=400.0, help="plane-wave cutoff, eV")
    parser.add_argument("--kpoint-density", type=float, default=3.0, help="k-points per Å⁻¹")
    parser.add_argument("--compare", type=int, default=4, help="smallest mlearn frames recomputed with GPAW")
    parser.add_argument("--types", nargs="+", help="only frames of these config_types (e.g. AIMD-NVT Elastic)")
    parser.add_argument("--skip-data", action="store_true", help="only the comparison with VASP")
    args = parser.parse_args()

    from evopot.config.generation import GPAWReference
    from evopot.learn.reference import describe

    reference = {"calculator": "gpaw", "ecut": args.ecut, "kpoint_density": args.kpoint_density, "smearing": 0.05}
    print(f"GPAW {describe(GPAWReference(**reference))}")
    if not args.skip_data:
        label_cells(reference, args.frames, args.workers)
    compare_with_vasp(reference, args.compare, args.types, args.workers)


def label_cells(reference: dict, frames: int, workers: int) -> None:
    """evopot data with GPAW on ``frames`` rattled and strained 8-atom Si cells."""
    from evopot.learn.generate import generate

    sampler = {"kind": "crystal", "structure": "diamond", "a": 5.47, "repeat": [1, 1, 1], "frames": frames}
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "si.yaml"
        fields = {"output": "si.extxyz", "species": ["Si"], "reference": reference, "workers": workers}
        config.write_text(yaml.safe_dump({**fields, "isolated_atoms": False, "sampling": [sampler]}))
        start = time.perf_counter()
        result = generate(config, progress=False)
        wall = time.perf_counter() - start
    print(
        f"evopot data: {result.labelled} 8-atom Si cells on {workers} workers in {wall:.1f} s: "
        f"{result.seconds_per_frame:.1f} s per frame on a worker, {wall / max(result.labelled, 1):.1f} s per frame "
        f"of wall time ({len(result.failed)} failed)"
    )


def compare_with_vasp(reference: dict, count: int, types: list[str] | None, workers: int) -> None:
    """GPAW's forces on the ``count`` smallest mlearn Si frames (of ``types``) against VASP's."""
    from evopot.config.generation import GPAWReference
    from evopot.executor import open_executor
    from evopot.learn.reference import label

    frames = [a for a in ase.io.read(SI, ":") if not types or a.info.get("config_type") in types]
    frames = sorted(frames, key=len)[:count]
    settings = GPAWReference(**reference)
    with open_executor(workers) as executor:
        start = time.perf_counter()
        done = executor.map(label, [(str(k), a) for k, a in enumerate(frames)], executor.share(settings))
        wall = time.perf_counter() - start
    errors, energies = [], []
    print(f"{'frame':>5} {'type':>8} {'atoms':>5} {'force MAE':>10} {'max |ΔF|':>9} {'|F| VASP':>9} {'seconds':>8}")
    for k, (atoms, ours) in enumerate(zip(frames, done)):
        if ours.atoms is None:
            print(f"{k:5d} {atoms.info.get('config_type'):>8} {len(atoms):5d} failed: {ours.error}")
            continue
        delta = ours.atoms.get_forces() - atoms.get_forces()
        errors.append(np.abs(delta).ravel())
        energies.append((ours.atoms.get_potential_energy() - atoms.get_potential_energy()) / len(atoms))
        print(
            f"{k:5d} {atoms.info.get('config_type'):>8} {len(atoms):5d} {np.abs(delta).mean():10.4f} "
            f"{np.abs(delta).max():9.4f} {np.abs(atoms.get_forces()).mean():9.4f} {ours.seconds:8.1f}"
        )
    if errors:
        shift = np.array(energies)
        print(
            f"GPAW vs VASP (both PBE) on {len(errors)} mlearn Si frames: force MAE {np.concatenate(errors).mean():.4f} "
            f"eV/Å; energy per atom differs by a constant {shift.mean():.3f} eV (PAW datasets' zero) with spread "
            f"{1000 * shift.std():.1f} meV/atom; {wall:.0f} s on {workers} workers"
        )


if __name__ == "__main__":
    main()
