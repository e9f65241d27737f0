"""The separable neural potential: the search space's own structure with a small MLP in
every slot, fitted to DFT forces and energies like a formula is.

    E = Σ_pairs V(r)·fc(r) + Σ_angles g(cos θ)·h(r_ij)·h(r_ik)·fc·fc (or V3(r_ij, r_ik, cos θ)·fc·fc)
        + Σ_atoms F(ρ_i), ρ_i = Σ_j f(r_ij)·fc(r_ij), + Σ_atoms e_ref(species)

The energies are the term kinds' own (:meth:`~evopot.model.terms.base.TermKind.slot_energies`,
with the networks in the slots a formula fills), over the full neighbour list of
:mod:`evopot.model.evaluate_torch`: the same kinds, species restrictions and cutoffs as a
fitted formula; forces are −∂E/∂positions by autograd. Once fitted, each slot is a learned one- or
three-variable function that :mod:`evopot.search.engines.distill` turns into formulas.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from evopot.data.geometry import Geometry
from evopot.model.cutoff import Cutoff
from evopot.model.evaluate_torch import BondIndex
from evopot.search.candidate import TermShape

#: A scale for each slot variable, so the MLP sees numbers of order one.
_SCALE = {"r": 3.0, "rij": 3.0, "rik": 3.0, "costheta": 1.0, "rho": 1.0}
_DISTANCES = {"r", "rij", "rik"}
#: Nodes of the cubic Hermite table through which a slot of cos θ alone is evaluated.
TABLE_NODES = 257


class SlotNetwork(nn.Module):
    """An MLP of the slot's variables (n,) each → values (n,); with ``radius`` rc (a slot
    of one distance r whose search-space term has ``envelope: vanish``) the MLP is
    multiplied by exp(s/(r − rc)), the stiffness s > 0 learned with the weights (started
    at rc/2, as the search starts it), so the learned function vanishes as the searched
    one must and the MLP only learns what multiplies the envelope.

    A slot of cos θ alone is evaluated through a cubic Hermite table of its MLP on
    ``TABLE_NODES`` nodes over [−1, 1], values and slopes taken from the MLP (and
    differentiable in its weights): the angles outnumber the nodes many times over (8×
    the pairs on the Stillinger–Weber data, where the MLP on every angle was three
    quarters of a training step), and the table differs from the MLP by O(h⁴), ~1e-10
    of a smooth curve."""

    def __init__(self, variables: tuple[str, ...], hidden: tuple[int, ...] = (32, 32), radius: float | None = None):
        super().__init__()
        layers, width = [], len(variables) + sum(v in _DISTANCES for v in variables)
        for size in hidden:
            layers += [nn.Linear(width, size), nn.Tanh()]
            width = size
        self.mlp = nn.Sequential(*layers, nn.Linear(width, 1))
        self.variables = variables
        self.register_buffer("scale", torch.ones((), dtype=torch.float64))  # eV, set from the data
        self.radius = radius
        if radius is not None:
            self.log_stiffness = nn.Parameter(torch.tensor(np.log(radius / 2), dtype=torch.float64))

    def multiplier(self, *values: torch.Tensor) -> torch.Tensor:
        """The MLP part alone (what multiplies the envelope), (n,)."""
        columns = [v / _SCALE[name] for v, name in zip(values, self.variables)]
        columns += [
            _SCALE[name] / v for v, name in zip(values, self.variables) if name in _DISTANCES
        ]  # steep repulsive walls
        x = torch.stack(columns, dim=1)
        return self.mlp(x).squeeze(1) * self.scale

    def tabulated(self, x: torch.Tensor) -> torch.Tensor:
        """The cubic Hermite interpolant of the MLP of cos θ at ``x`` (n,)."""
        nodes = torch.linspace(-1.0, 1.0, TABLE_NODES, dtype=x.dtype, device=x.device)
        step = 2.0 / (TABLE_NODES - 1)
        with torch.enable_grad():
            z = nodes.requires_grad_(True)
            y = self.multiplier(z)
            (slope,) = torch.autograd.grad(y.sum(), z, create_graph=True)
        k = torch.clamp(((x.detach() + 1.0) / step).floor().long(), 0, TABLE_NODES - 2)
        t = (x - nodes.detach()[k]) / step
        t2, t3 = t * t, t * t * t
        return (
            (2 * t3 - 3 * t2 + 1) * y[k]
            + (t3 - 2 * t2 + t) * step * slope[k]
            + (3 * t2 - 2 * t3) * y[k + 1]
            + (t3 - t2) * step * slope[k + 1]
        )

    def forward(self, *values: torch.Tensor) -> torch.Tensor:
        if self.variables == ("costheta",):
            return self.tabulated(values[0])
        value = self.multiplier(*values)
        if self.radius is None:
            return value
        # r − rc kept below zero so r = rc gives exp(−∞) = 0 with a finite gradient
        return value * torch.exp(self.log_stiffness.exp() / torch.clamp(values[0] - self.radius, max=-1e-9))

    @property
    def stiffness(self) -> float | None:
        """s of the envelope exp(s/(r − rc)) in Å, or None without one."""
        return float(self.log_stiffness.detach().exp()) if self.radius is not None else None


class SeparableNetwork(nn.Module):
    """One :class:`SlotNetwork` per slot of every term shape, plus reference energies.
    ``enveloped[t]`` (default none) says term t has the search space's ``envelope:
    vanish``: its slots of one distance r get the envelope at the term's cutoff radius."""

    def __init__(
        self,
        shapes: list[TermShape],
        cutoff: Cutoff,
        species: tuple[str, ...],
        hidden: tuple[int, ...] = (32, 32),
        enveloped: tuple[bool, ...] | None = None,
    ):
        super().__init__()
        self.shapes, self.cutoff, self.species = list(shapes), cutoff, tuple(species)
        enveloped = enveloped or (False,) * len(self.shapes)
        self.slots = nn.ModuleDict(
            {
                f"{t}_{slot.name}": SlotNetwork(
                    slot.variables,
                    hidden,
                    self.cutoff_of(shape).radius if enveloped[t] and slot.variables == ("r",) else None,
                )
                for t, shape in enumerate(self.shapes)
                for slot in shape.slots
            }
        )
        self.reference = nn.Parameter(torch.zeros(len(species), dtype=torch.float64))
        self.double()

    def slot(self, term: int, name: str, *values: torch.Tensor) -> torch.Tensor:
        """The learned function of slot ``name`` of term ``term`` at ``values``."""
        return self.slots[f"{term}_{name}"](*values)

    def stiffnesses(self) -> dict[str, float]:
        """The learned envelope stiffness s (Å) of every enveloped slot, by "term_slot"."""
        return {key: slot.stiffness for key, slot in self.slots.items() if slot.radius is not None}

    def cutoff_of(self, shape: TermShape) -> Cutoff:
        return shape.cutoff or self.cutoff


@dataclass(frozen=True)
class TermNetworks:
    """The networks of term ``term`` as its kind's slot functions
    (:class:`~evopot.model.terms.base.SlotFunctions`)."""

    network: SeparableNetwork
    term: int

    def __call__(self, name: str, *values: torch.Tensor) -> torch.Tensor:
        return self.network.slot(self.term, name, *values)

    def symmetric(self, name: str) -> bool:
        return False  # a network of (rij, rik, cos θ) has no reason to be


class NeuralData:
    """A geometry's neighbour list as tensors, and its labels: built once per dataset."""

    def __init__(self, geometry: Geometry, energies: np.ndarray, forces: np.ndarray):
        def tensor(a, dtype=torch.float64):
            return torch.as_tensor(np.asarray(a), dtype=dtype)

        self.geometry = geometry
        self.index = BondIndex.of(geometry)
        self.positions = tensor(geometry.positions)
        self.atom_frame = tensor(geometry.atom_frame, torch.long)
        self.counts = tensor(geometry.atoms_per_frame)
        self.species_counts = tensor(geometry.species_counts)
        self.energies, self.forces = tensor(energies), tensor(np.asarray(forces).reshape(-1, 3))

    def predict(self, network: SeparableNetwork, create_graph: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Energies (n_frames,) eV and forces (n_atoms, 3) eV/Å of ``network``: every
        term's kind adds its per-atom energies with the networks in its slots."""
        with torch.enable_grad():
            positions = self.positions.clone().requires_grad_(True)
            bonds = self.index.bonds(positions)
            atom_energy = positions.new_zeros(len(positions))
            for t, shape in enumerate(network.shapes):
                slots = TermNetworks(network, t)
                cutoff = network.cutoff_of(shape)
                atom_energy = atom_energy + shape.spec.slot_energies(shape.form, slots, cutoff, shape.species, bonds)
            energies = positions.new_zeros(len(self.counts)).index_add(0, self.atom_frame, atom_energy)
            energies = energies + self.species_counts @ network.reference
            (gradient,) = torch.autograd.grad(energies.sum(), positions, create_graph=create_graph)
        return energies, -gradient


#: L-BFGS polishes in chunks of this many iterations and stops after a chunk that
#: lowered the loss by less than POLISH_GAIN (relative). Data a separable network
#: describes exactly (Stillinger–Weber's) gains 9–80 % per chunk all the way down to
#: 1e-5; on DFT silicon the loss is flat at ~0.02 after two chunks (3 %, 2 %, then
#: 0.5 %), where the remaining 700 iterations only sharpened the envelopes.
POLISH_CHUNK = 100
POLISH_GAIN = 0.02


def fit_network(
    network: SeparableNetwork,
    train: NeuralData,
    validation: NeuralData | None = None,
    epochs: int = 400,
    learning_rate: float = 1e-2,
    force_weight: float = 1.0,
    energy_weight: float = 0.1,
    seed: int = 0,
    polish: int = 200,
    progress=None,
) -> dict:
    """Full-batch Adam on w_F·mean(ΔF²) + w_E·mean((ΔE/n)²), learning rate decayed
    tenfold over the run, then at most ``polish`` L-BFGS iterations (fewer once they stop
    paying, :data:`POLISH_GAIN`); keeps the weights with the lowest validation (else
    training) loss."""
    import copy

    torch.manual_seed(seed)
    scale = float(train.forces.pow(2).mean().sqrt()) or 1.0  # eV/Å × 1 Å: the size of the energies per bond
    for slot in network.slots.values():
        slot.scale.fill_(scale if slot.variables != ("costheta",) else 1.0)
    counts = train.species_counts
    network.reference.data = torch.linalg.lstsq(counts, train.energies.unsqueeze(1)).solution.squeeze(1)
    optimiser = torch.optim.Adam(network.parameters(), lr=learning_rate)
    schedule = torch.optim.lr_scheduler.ExponentialLR(optimiser, gamma=0.1 ** (1 / max(epochs, 1)))

    def loss(data: NeuralData, create_graph: bool):
        energies, forces = data.predict(network, create_graph)
        return (
            force_weight * (forces - data.forces).pow(2).mean()
            + energy_weight * ((energies - data.energies) / data.counts).pow(2).mean()
        )

    best, best_state, done = float("inf"), copy.deepcopy(network.state_dict()), 0
    for epoch in range(epochs):
        value = loss(train, True)
        optimiser.zero_grad()
        value.backward()
        optimiser.step()
        schedule.step()
        check = float(loss(validation, False)) if validation is not None else float(value.detach())
        if check < best:
            best, best_state = check, copy.deepcopy(network.state_dict())
        if progress is not None:
            progress(epoch, check)
    network.load_state_dict(best_state)
    if polish:
        # full-batch quasi-Newton to finish: the data sets here are small, and L-BFGS
        # takes the fit far below where Adam's noise floor leaves it
        lbfgs = torch.optim.LBFGS(
            network.parameters(),
            lr=1.0,
            max_iter=POLISH_CHUNK,
            history_size=50,
            tolerance_grad=0.0,
            tolerance_change=0.0,
            line_search_fn="strong_wolfe",
        )

        def closure():
            lbfgs.zero_grad()
            value = loss(train, True)
            value.backward()
            return value

        before = float(loss(train, False).detach())
        while done < polish:  # in chunks (the history carries over): stop once a chunk gains too little
            chunk = min(POLISH_CHUNK, polish - done)
            lbfgs.param_groups[0]["max_iter"] = chunk
            lbfgs.step(closure)
            done += chunk
            after = float(loss(train, False).detach())
            if not after < (1 - POLISH_GAIN) * before:
                break
            before = after
        check = float(loss(validation, False)) if validation is not None else float(loss(train, False).detach())
        if not check < best:
            network.load_state_dict(best_state)
        best = min(best, check)
    return {"loss": best, "epochs": epochs, "polish": done}
