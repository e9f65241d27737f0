"""Molecular dynamics that finds new structures: the ``md`` sampler of ``evopot data``
and the exploration of ``evopot learn`` (Langevin MD with evopot's own engine)."""

from __future__ import annotations

import warnings

from ase import Atoms

from evopot.config.generation import MDSampler, sampler_name
from evopot.data.structures import crystal, generator
from evopot.errors import EvopotError
from evopot.md.dynamics import MolecularDynamics, thermalized
from evopot.md.forcefield import ForceField
from evopot.model.potential import Model
from evopot.neural.hybrid import load_model


def trajectory(
    model: Model, start: Atoms, temperature: float, steps: int, every: int, timestep: float = 1.0, seed: int = 0
) -> list[Atoms]:
    """Snapshots every ``every`` steps of ``steps`` Langevin steps at ``temperature`` (K)
    from ``start``; a run that blows up (the potential is wrong there: what active
    learning looks for) ends early with the snapshots so far and the last sane one."""
    forcefield = ForceField(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # closer than the training data: expected while exploring
        md = MolecularDynamics(
            thermalized(start, temperature, seed), forcefield, timestep, "langevin", temperature, seed=seed
        )
        snapshots = []
        try:
            for _ in range(steps // every):
                md.run(every, thermo_every=every)
                snapshots.append(_bare(md.snapshot()))
        except EvopotError:
            pass
    return snapshots


def _bare(atoms: Atoms) -> Atoms:
    atoms = Atoms(atoms.get_chemical_symbols(), positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
    atoms.wrap()
    return atoms


def sampler_model(sampler: MDSampler) -> Model:
    """The potential an ``md`` sampler runs (a formula or a hybrid)."""
    if not sampler.potential.is_file():
        raise EvopotError(f"sampler {sampler_name(sampler)}: potential {sampler.potential} not found")
    return load_model(sampler.potential)


def md_snapshot(sampler: MDSampler, species: list[str], seed: int, k: int, model: Model | None = None) -> Atoms:
    """Frame ``k`` of an ``md`` sampler: its rattled crystal after ``steps`` Langevin steps
    with its potential at a temperature drawn from its range."""
    rng = generator(seed, sampler, k)
    model = model or sampler_model(sampler)
    start = crystal(sampler, species)
    start.positions = start.positions + rng.normal(0.0, sampler.rattle, start.positions.shape)
    temperature = float(rng.uniform(*sampler.temperatures))
    snapshots = trajectory(
        model, start, temperature, sampler.steps, sampler.steps, sampler.timestep, int(rng.integers(2**31))
    )
    if not snapshots:
        raise EvopotError(
            f"sampler {sampler_name(sampler)}: MD with {sampler.potential} blew up at {temperature:.0f} K; lower "
            f"temperatures or timestep, or use a sounder potential"
        )
    atoms = snapshots[-1]
    atoms.info["config_type"] = sampler_name(sampler)
    return atoms
