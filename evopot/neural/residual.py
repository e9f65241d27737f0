"""Train the residual network on what a formula leaves: DFT minus formula, energies and
forces, on the dataset's splits.

The symmetry functions of a dataset do not change while the network learns, so they
are computed once, together with their Jacobian with respect to every bond vector
(J[b, f] = ∂G_{center(b), f}/∂d_b, one autograd pass per feature column: G_i depends
only on the bonds of atom i). A training step then needs only the network and its
input gradient a = ∂E/∂G: the force on the atoms of bond b follows from
g_b = Σ_f a[center(b), f] · J[b, f], exactly −∇E, without rebuilding the geometry.
The loss is the mean absolute force and energy-per-atom error (or the mean squared),
each frame weighted by its config type's weight (``correction.config_type_weights``).
Mini-batches of frames, AdamW with a cosine decay of the step over a fixed number of
epochs (or a plateau schedule with early stopping), optionally an exponential moving
average of the weights; the weights (or their average) of the best validation epoch are
kept. An ensemble of M networks from M seeds.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from evopot.data.dataset import Frames
from evopot.data.geometry import build_geometry
from evopot.errors import EvopotError
from evopot.neural.descriptors import SymmetryFunctions
from evopot.neural.network import Correction


@dataclass
class ResidualData:
    """One split's network inputs and targets as torch tensors.

    ``features (n_atoms, n_features)``; ``species, atom_frame (n_atoms,)``;
    ``center, neighbor (n_bonds,)``; ``vectors (n_bonds, 3)`` Å, the bonds themselves
    (what an interaction network reads); ``jacobian (n_bonds, n_features, 3)`` Å⁻¹·[G];
    ``energies (n_frames,)`` eV and ``forces (n_atoms, 3)`` eV/Å to fit;
    ``atoms_per_frame (n_frames,)``; ``atom_start, bond_start (n_frames + 1,)`` offsets;
    ``frame_weights (n_frames,)``, each frame's weight in the loss (None: all alike).
    """

    features: torch.Tensor
    species: torch.Tensor
    atom_frame: torch.Tensor
    center: torch.Tensor
    neighbor: torch.Tensor
    jacobian: torch.Tensor
    energies: torch.Tensor
    forces: torch.Tensor
    atoms_per_frame: torch.Tensor
    atom_start: np.ndarray
    bond_start: np.ndarray
    frame_weights: torch.Tensor | None = None
    vectors: torch.Tensor | None = None

    @property
    def n_frames(self) -> int:
        return len(self.energies)

    def to(self, device) -> ResidualData:
        """A copy with its tensors on ``device`` (the offsets stay NumPy)."""
        return dataclasses.replace(
            self,
            **{
                f.name: getattr(self, f.name).to(device)
                for f in dataclasses.fields(self)
                if isinstance(getattr(self, f.name), torch.Tensor)
            },
        )

    def batch(self, frames) -> ResidualData:
        """The frames listed, renumbered from 0."""
        frames = np.asarray(frames)
        atoms = np.concatenate([np.arange(self.atom_start[f], self.atom_start[f + 1]) for f in frames])
        bonds = np.concatenate([np.arange(self.bond_start[f], self.bond_start[f + 1]) for f in frames])
        local = torch.full((len(self.features),), -1, dtype=torch.long, device=self.features.device)
        atoms_t = torch.as_tensor(atoms, device=self.features.device)
        local[atoms_t] = torch.arange(len(atoms), device=self.features.device)
        counts = self.atoms_per_frame[torch.as_tensor(frames, device=self.features.device)]
        bonds_t = torch.as_tensor(bonds, device=self.features.device)
        return ResidualData(
            self.features[atoms_t],
            self.species[atoms_t],
            torch.repeat_interleave(torch.arange(len(frames), device=counts.device), counts),
            local[self.center[bonds_t]],
            local[self.neighbor[bonds_t]],
            self.jacobian[bonds_t],
            self.energies[torch.as_tensor(frames, device=counts.device)],
            self.forces[atoms_t],
            counts,
            np.concatenate([[0], np.cumsum(counts.cpu().numpy())]),
            np.concatenate([[0], np.cumsum([self.bond_start[f + 1] - self.bond_start[f] for f in frames])]),
            None if self.frame_weights is None else self.frame_weights[torch.as_tensor(frames, device=counts.device)],
            None if self.vectors is None else self.vectors[bonds_t],
        )


def residual_data(
    frames: Frames,
    descriptor: SymmetryFunctions,
    energies: np.ndarray,
    forces: np.ndarray,
    device="cpu",
    chunk_atoms: int = 4000,
    frame_weights: np.ndarray | None = None,
) -> ResidualData:
    """Symmetry functions and their Jacobians of ``frames``, with targets ``energies``
    (n_frames,) eV and ``forces`` (n_atoms, 3) eV/Å (the residuals to fit) and the
    frames' weights in the loss (default 1)."""
    geometry = build_geometry(frames, descriptor.cutoff, descriptor.species)
    center, neighbor, vectors = geometry.centred_bonds()
    features = np.zeros((geometry.n_atoms, descriptor.n_features))
    jacobian = np.zeros((len(center), descriptor.n_features, 3))
    atom_start = np.concatenate([[0], np.cumsum(geometry.atoms_per_frame)])
    bond_start = np.searchsorted(center, atom_start)
    species = torch.as_tensor(geometry.atom_species)
    # chunks of whole frames keep the autograd graphs small
    first = 0
    while first < geometry.n_frames:
        last = first + 1
        while last < geometry.n_frames and atom_start[last + 1] - atom_start[first] <= chunk_atoms:
            last += 1
        a0, a1, b0, b1 = atom_start[first], atom_start[last], bond_start[first], bond_start[last]
        d = torch.as_tensor(vectors[b0:b1]).requires_grad_(True)
        c, n = torch.as_tensor(center[b0:b1] - a0), torch.as_tensor(neighbor[b0:b1] - a0)
        hood = descriptor.neighbourhood(d, c, n, species[a0:a1], int(a1 - a0))
        for k in range(descriptor.n_features):
            column = descriptor.column(hood, k)
            features[a0:a1, k] = column.detach().numpy()
            (grad,) = torch.autograd.grad(column.sum(), d, retain_graph=True, allow_unused=True)
            if grad is not None:
                jacobian[b0:b1, k] = grad.numpy()
        first = last

    def tensor(a, dtype=torch.float64):
        return torch.as_tensor(a, dtype=dtype, device=device)

    return ResidualData(
        tensor(features),
        tensor(geometry.atom_species, torch.long),
        tensor(geometry.atom_frame, torch.long),
        tensor(center, torch.long),
        tensor(neighbor, torch.long),
        tensor(jacobian),
        tensor(energies),
        tensor(np.asarray(forces).reshape(-1, 3)),
        tensor(geometry.atoms_per_frame, torch.long),
        atom_start,
        bond_start,
        None if frame_weights is None else tensor(frame_weights),
        tensor(vectors),
    )


def network_prediction(network, data: ResidualData, create_graph: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Energies (n_frames,) eV and forces (n_atoms, 3) eV/Å of one network on ``data``;
    ``create_graph`` keeps them differentiable in the network's weights."""
    from evopot.neural.interaction import atomic_energies

    bonds = getattr(network, "reads_bonds", False)
    with torch.enable_grad():
        features = data.features.detach().requires_grad_(True)
        if bonds:  # the energy reads the bond vectors directly too
            d = data.vectors.detach().requires_grad_(True)
            atomic = atomic_energies(network, features, data.species, d, data.center, data.neighbor)
            slope, direct = torch.autograd.grad(atomic.sum(), (features, d), create_graph=create_graph)
        else:
            atomic = atomic_energies(network, features, data.species)
            (slope,) = torch.autograd.grad(atomic.sum(), features, create_graph=create_graph)
    gradient = torch.einsum("bf,bfx->bx", slope[data.center], data.jacobian)  # ∂E/∂d per bond
    if bonds:
        gradient = gradient + direct
    forces = torch.zeros_like(data.forces).index_add(0, data.center, gradient).index_add(0, data.neighbor, -gradient)
    energies = data.energies.new_zeros(data.n_frames).index_add(0, data.atom_frame, atomic)
    if not create_graph:
        energies, forces = energies.detach(), forces.detach()
    return energies, forces


def ensemble_prediction(correction: Correction, data: ResidualData) -> tuple[torch.Tensor, torch.Tensor]:
    """Each network's energies (M, n_frames) and forces (M, n_atoms, 3)."""
    out = [network_prediction(net, data) for net in correction.networks]
    return torch.stack([e for e, _ in out]), torch.stack([f for _, f in out])


def force_uncertainty(member_forces: torch.Tensor) -> torch.Tensor:
    """Per-atom force uncertainty (n_atoms,) eV/Å: the root mean square over the ensemble
    of each network's deviation from the mean force vector."""
    deviation = member_forces - member_forces.mean(0)
    return deviation.pow(2).sum(2).mean(0).sqrt()


@dataclass
class TrainingSettings:
    """How the networks learn; the defaults and meanings are those of
    :class:`evopot.config.schema.CorrectionConfig`."""

    ensemble: int
    hidden: tuple[int, ...]
    activation: str
    epochs: int
    batch_frames: int
    learning_rate: float
    patience: int
    force_weight: float
    energy_weight: float
    seed: int
    weight_decay: float
    loss: str = "mae"
    schedule: str = "cosine"
    ema: float = 0.995
    interaction: dict | None = None  # None: Behler–Parrinello networks


@dataclass
class TrainingLog:
    """Per network: epochs run, best validation force MAE (eV/Å), seconds."""

    networks: list[dict] = field(default_factory=list)
    seconds: float = 0.0


def _loss(network, data: ResidualData, settings: TrainingSettings, create_graph: bool):
    """The mean force and energy-per-atom error, each frame weighing its
    ``frame_weights`` when there are any, and the forces predicted."""
    energies, forces = network_prediction(network, data, create_graph)
    measure = torch.abs if settings.loss == "mae" else torch.square
    force_errors, energy_errors = (
        measure(forces - data.forces),
        measure((energies - data.energies) / data.atoms_per_frame),
    )
    if data.frame_weights is None:
        force_term, energy_term = force_errors.mean(), energy_errors.mean()
    else:
        # frames of weight 0 alone (a batch of a config type weighted 0) weigh nothing: 0, not 0/0
        tiny = torch.finfo(data.frame_weights.dtype).tiny
        atom_weights = data.frame_weights[data.atom_frame]
        force_term = (force_errors.sum(1) * atom_weights).sum() / (3 * atom_weights.sum().clamp_min(tiny))
        energy_term = (energy_errors * data.frame_weights).sum() / data.frame_weights.sum().clamp_min(tiny)
    return settings.force_weight * force_term + settings.energy_weight * energy_term, forces


def _normalise(network, train: ResidualData) -> None:
    """Feature standardisation, per-species energy shift (least squares on the targets'
    energies) and an energy scale from the target forces."""
    network.feature_mean.copy_(train.features.mean(0))
    network.feature_std.copy_(train.features.std(0).clamp_min(1e-6))
    n_species = len(network.energy_shift)
    counts = torch.zeros(train.n_frames, n_species, dtype=torch.float64, device=train.features.device)
    counts.index_put_(
        (train.atom_frame, train.species), torch.ones_like(train.atom_frame, dtype=torch.float64), accumulate=True
    )
    shift = torch.linalg.lstsq(counts.cpu(), train.energies.cpu().unsqueeze(1)).solution.squeeze(1)
    network.energy_shift.copy_(shift)
    network.energy_scale.fill_(max(float(train.forces.pow(2).mean().sqrt()), 1e-3))


class _Schedule:
    """The learning-rate schedule of ``settings.schedule``: cosine decays the step to zero
    over all epochs; plateau halves it when the validation loss stalls and stops after
    ``patience`` epochs without a gain."""

    def __init__(self, optimiser, settings: TrainingSettings):
        self.plateau, self.patience = settings.schedule == "plateau", settings.patience
        if self.plateau:
            self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
                optimiser, factor=0.5, patience=max(settings.patience // 4, 2)
            )
        else:
            self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=settings.epochs)

    def step(self, validation_loss: float) -> None:
        if self.plateau:
            self.scheduler.step(validation_loss)
        else:
            self.scheduler.step()

    def stop(self, epoch: int, best_epoch: int) -> bool:
        return self.plateau and epoch - best_epoch >= self.patience


def train_network(
    network, train: ResidualData, validation: ResidualData, settings: TrainingSettings, seed: int, progress=None
) -> dict:
    """Fit one network; keeps the weights of the epoch with the lowest validation loss."""
    generator = np.random.default_rng(seed)
    torch.manual_seed(seed)
    _normalise(network, train)
    optimiser = torch.optim.AdamW(network.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay)
    schedule = _Schedule(optimiser, settings)
    average = None
    if settings.ema:
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

        average = AveragedModel(network, multi_avg_fn=get_ema_multi_avg_fn(settings.ema))
    judged = network if average is None else average.module  # the weights validated and kept
    best, best_state, best_epoch, epoch = math.inf, copy.deepcopy(network.state_dict()), 0, 0
    validation_mae = math.nan
    for epoch in range(1, settings.epochs + 1):
        order = generator.permutation(train.n_frames)
        for start in range(0, len(order), settings.batch_frames):
            batch = train.batch(order[start : start + settings.batch_frames])
            if batch.frame_weights is not None and not bool(batch.frame_weights.any()):
                continue  # only frames of weight 0: nothing to learn, not a step of weight decay
            loss, _ = _loss(network, batch, settings, True)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            if average is not None:
                average.update_parameters(network)
        loss, forces = _loss(judged, validation, settings, False)
        loss = float(loss)
        if not math.isfinite(loss):
            raise EvopotError(f"training diverged at epoch {epoch} (validation loss {loss}); lower learning_rate")
        schedule.step(loss)
        if loss < best:
            best, best_epoch, best_state = loss, epoch, copy.deepcopy(judged.state_dict())
            validation_mae = float((forces - validation.forces).abs().mean())
        if progress is not None:
            progress.update(1)
            progress.set_postfix(val_force_mae=f"{validation_mae:.4f}", lr=f"{optimiser.param_groups[0]['lr']:.1e}")
        if schedule.stop(epoch, best_epoch):
            break
    network.load_state_dict(best_state)
    return {"epochs": epoch, "best_epoch": best_epoch, "validation_force_mae": validation_mae}


def train_correction(
    descriptor: SymmetryFunctions,
    train: ResidualData,
    validation: ResidualData,
    settings: TrainingSettings,
    progress: bool = True,
) -> tuple[Correction, TrainingLog]:
    """An ensemble of ``settings.ensemble`` networks, network m seeded with seed + m."""
    correction = Correction.new(
        descriptor, settings.ensemble, settings.hidden, settings.activation, settings.seed, settings.interaction
    )
    correction.to(train.features.device)
    log, start = TrainingLog(), time.perf_counter()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=settings.epochs * settings.ensemble, desc="evopot correct", unit="epoch", dynamic_ncols=True)
    try:
        for m, network in enumerate(correction.networks):
            t0 = time.perf_counter()
            result = train_network(network, train, validation, settings, settings.seed + m, bar)
            result["seconds"] = time.perf_counter() - t0
            log.networks.append(result)
            if bar is not None:  # the epochs early stopping skipped
                bar.update(settings.epochs * (m + 1) - bar.n)
    finally:
        if bar is not None:
            bar.close()
    log.seconds = time.perf_counter() - start
    return correction, log
