"""Molecular dynamics with a compiled evopot potential, on the CPU or a GPU.

Velocity Verlet (NVE) and Langevin (NVT, the BAOAB splitting of Leimkuhler and
Matthews) in ASE's units (Å, eV, amu; time in ASE's unit, ``ase.units.fs`` per fs), so
positions and velocities mean what they mean on an ASE ``Atoms``. Initial velocities
come from the ``Atoms`` (set them with ASE's ``MaxwellBoltzmannDistribution``).
Thermo lines (step, time, T, E_kin, E_pot, E_total) every ``thermo_every`` steps;
frames through ``ase.io`` (extxyz) every ``trajectory_every`` steps.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import ase.io
import numpy as np
import torch
from ase import units
from ase.calculators.singlepoint import SinglePointCalculator

from evopot.errors import EvopotError
from evopot.md.forcefield import ForceField


@dataclass
class Thermo:
    step: int
    time_ps: float
    temperature: float  # K
    kinetic: float  # eV
    potential: float  # eV
    total: float  # eV


@dataclass
class MDResult:
    atoms: object  # the final ase.Atoms, with velocities
    thermo: list[Thermo] = field(default_factory=list)
    neighbor_builds: int = 0
    wall_time: float = 0.0


class MolecularDynamics:
    """Integrate ``atoms`` with ``forcefield``; ``thermostat`` None (NVE) or "langevin"."""

    def __init__(
        self,
        atoms,
        forcefield: ForceField,
        timestep_fs: float,
        thermostat: str | None = None,
        temperature: float = 300.0,
        friction_per_ps: float = 1.0,
        seed: int = 0,
    ):
        if not timestep_fs > 0:
            raise EvopotError(f"time step must be > 0 fs, got {timestep_fs}")
        if thermostat not in (None, "langevin"):
            raise EvopotError(f"thermostat {thermostat!r} unknown; use none (NVE) or langevin")
        self.atoms, self.forcefield = atoms.copy(), forcefield
        ff = forcefield
        self.positions, self.cell, self.pbc, self.species = ff.tensors(atoms)
        self.velocities = torch.as_tensor(atoms.get_velocities(), dtype=ff.dtype, device=ff.device)
        self.masses = torch.as_tensor(atoms.get_masses(), dtype=ff.dtype, device=ff.device)[:, None]
        self.dt = timestep_fs * units.fs
        self.thermostat, self.temperature = thermostat, temperature
        self.friction = friction_per_ps / (1000 * units.fs)
        self.generator = torch.Generator(device=ff.device).manual_seed(seed)
        self.energy, self.forces, _ = ff(self.positions, self.cell, self.pbc, self.species)
        self.step_count = 0
        self._check_start()
        self.start_temperature = self.thermo().temperature

    def _check_start(self) -> None:
        """A clear error for a start the potential cannot describe (non-finite energy or
        forces), a warning for atoms closer than any pair the potential was fitted on."""
        closest = self.forcefield.closest_pair(self.positions, self.cell, self.pbc)
        fitted = self.forcefield.potential.metadata.get("shortest_distance")
        where = ""
        if closest is not None:
            r, i, j = closest
            where = f"atoms {i} and {j} are {r:.3f} Å apart" + (
                f" (the potential was fitted on distances ≥ {fitted:.3f} Å)" if fitted else ""
            )
        if not (bool(torch.isfinite(self.energy)) and bool(torch.isfinite(self.forces).all())):
            raise EvopotError(
                f"the potential gives a non-finite energy or forces for the starting "
                f"structure{'; ' + where if where else ''}: "
                "check the structure (units Å, no overlapping atoms)"
            )
        if closest is not None and fitted and closest[0] < fitted:
            warnings.warn(
                f"{where}: closer than any pair in the training data, so the formula is extrapolated there",
                stacklevel=3,
            )

    def kinetic_energy(self) -> float:
        return float(0.5 * (self.masses * self.velocities**2).sum())

    def thermo(self) -> Thermo:
        kinetic = self.kinetic_energy()
        dof = max(3 * len(self.positions) - 3, 1)  # momentum is conserved: Stationary initial velocities
        return Thermo(
            self.step_count,
            self.step_count * self.dt / (1000 * units.fs),
            2 * kinetic / (dof * units.kB),
            kinetic,
            float(self.energy),
            kinetic + float(self.energy),
        )

    def step(self) -> None:
        dt, m = self.dt, self.masses
        self.velocities = self.velocities + 0.5 * dt * self.forces / m
        if self.thermostat == "langevin":
            self.positions = self.positions + 0.5 * dt * self.velocities
            c1 = math.exp(-self.friction * dt)
            noise = torch.randn(
                self.velocities.shape,
                generator=self.generator,
                dtype=self.velocities.dtype,
                device=self.velocities.device,
            )
            self.velocities = c1 * self.velocities + torch.sqrt((1 - c1**2) * units.kB * self.temperature / m) * noise
            self.positions = self.positions + 0.5 * dt * self.velocities
        else:
            self.positions = self.positions + dt * self.velocities
        self.energy, self.forces, _ = self.forcefield(self.positions, self.cell, self.pbc, self.species)
        self.velocities = self.velocities + 0.5 * dt * self.forces / m
        self.step_count += 1

    def snapshot(self):
        """The current state as an ase.Atoms with velocities, energy and forces."""
        atoms = self.atoms.copy()
        atoms.positions = self.positions.detach().cpu().numpy().astype(np.float64)
        atoms.set_velocities(self.velocities.detach().cpu().numpy().astype(np.float64))
        atoms.calc = SinglePointCalculator(
            atoms, energy=float(self.energy), forces=self.forces.detach().cpu().numpy().astype(np.float64)
        )
        return atoms

    def run(
        self,
        steps: int,
        thermo_every: int = 100,
        trajectory: str | Path | None = None,
        trajectory_every: int = 100,
        progress: bool = False,
        report=None,
    ) -> MDResult:
        """Run ``steps`` steps; ``report(thermo)`` is called with each thermo line."""
        import time

        if trajectory is not None:
            Path(trajectory).unlink(missing_ok=True)
        result = MDResult(None)
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=steps, desc="evopot md", unit="step", dynamic_ncols=True)
        start = time.perf_counter()
        try:
            for k in range(steps + 1):
                if k > 0:
                    self.step()
                    if bar is not None:
                        bar.update(1)
                if k % thermo_every == 0 or k == steps:
                    line = self.thermo()
                    kept = (
                        f"; the trajectory up to the last frame written is kept in {trajectory}"
                        if trajectory is not None
                        else ""
                    )
                    if not math.isfinite(line.total):
                        raise EvopotError(
                            f"MD blew up at step {self.step_count} (energy {line.total}); use a smaller time "
                            f"step or check the structure{kept}"
                        )
                    limit = max(20 * max(self.start_temperature, self.temperature if self.thermostat else 0.0), 10000.0)
                    if line.temperature > limit:
                        raise EvopotError(
                            f"MD temperature exploded to {line.temperature:.0f} K at step {self.step_count} "
                            f"(started at {self.start_temperature:.0f} K, "
                            f"limit {limit:.0f} K); use a smaller time step or check the structure and the "
                            f"potential{kept}"
                        )
                    result.thermo.append(line)
                    if report is not None:
                        report(line)
                    if bar is not None:
                        bar.set_postfix(
                            T=f"{line.temperature:.0f} K", E=f"{line.total / len(self.positions):.5f} eV/atom"
                        )
                if trajectory is not None and (k % trajectory_every == 0 or k == steps):
                    ase.io.write(trajectory, self.snapshot(), format="extxyz", append=True)
        finally:
            if bar is not None:
                bar.close()
        result.wall_time = time.perf_counter() - start
        result.atoms = self.snapshot()
        result.neighbor_builds = self.forcefield.neighbors.builds
        return result


def thermalized(atoms, temperature: float, seed: int = 0):
    """A copy of ``atoms`` with Maxwell–Boltzmann velocities at ``temperature`` (K) and
    no centre-of-mass motion (ASE's thermalize_momenta, or its older name)."""
    from ase.md import velocitydistribution

    atoms = atoms.copy()
    thermalize = (
        getattr(velocitydistribution, "thermalize_momenta", None) or velocitydistribution.MaxwellBoltzmannDistribution
    )
    thermalize(atoms, temperature_K=temperature, rng=np.random.default_rng(seed))
    velocitydistribution.Stationary(atoms)
    return atoms
