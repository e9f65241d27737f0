"""The residual network: atom-centred energies from symmetry functions, one small MLP
per species (Behler–Parrinello) or an interaction network on the neighbour graph
(:mod:`evopot.neural.interaction`), and an ensemble of such networks.

E_corr = Σ_i e_{s_i}(G_i), e_s = scale · MLP_s((G − mean) / std) + shift_s, so the
correction is a sum of smooth local terms and its forces are exact gradients (autograd
through the symmetry functions). An ensemble of M networks trained from different
seeds predicts their mean; the spread of their forces is the uncertainty.

Weights are saved with ``torch.save`` of the state dicts only and read back with
``weights_only=True``; the architecture lives in JSON (:meth:`Correction.spec`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from evopot.errors import EvopotError
from evopot.neural.descriptors import SymmetryFunctions

ACTIVATIONS = {"tanh": nn.Tanh, "silu": nn.SiLU, "softplus": nn.Softplus}
WEIGHTS_FORMAT = "evopot-correction-weights"
#: Keys of :meth:`Correction.spec` that describe the network; any others are its ``info``.
SPEC_KEYS = (
    "kind",
    "weights",
    "species",
    "ensemble",
    "hidden",
    "activation",
    "descriptor",
    "parameters",
    "interaction",
)
#: the correction's ``kind`` in JSON for each ``correction.model``
KINDS = {"bpnn": "behler-parrinello", "interaction": "interaction-network"}


class AtomicNetwork(nn.Module):
    """Per-species MLPs from ``n_features`` standardised features to an atomic energy (eV)."""

    def __init__(self, n_species: int, n_features: int, hidden: tuple[int, ...] = (32, 32), activation: str = "tanh"):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise EvopotError(f"activation '{activation}' unknown; choose one of {sorted(ACTIVATIONS)}")

        def mlp():
            layers, width = [], n_features
            for size in hidden:
                layers += [nn.Linear(width, size), ACTIVATIONS[activation]()]
                width = size
            return nn.Sequential(*layers, nn.Linear(width, 1))

        self.mlps = nn.ModuleList(mlp() for _ in range(n_species))
        self.register_buffer("feature_mean", torch.zeros(n_features, dtype=torch.float64))
        self.register_buffer("feature_std", torch.ones(n_features, dtype=torch.float64))
        self.register_buffer("energy_shift", torch.zeros(n_species, dtype=torch.float64))
        self.register_buffer("energy_scale", torch.ones((), dtype=torch.float64))

    def forward(self, features: torch.Tensor, species: torch.Tensor) -> torch.Tensor:
        """Atomic energies (n_atoms,) eV from features (n_atoms, n_features) and species
        indices (n_atoms,)."""
        x = (features - self.feature_mean) / self.feature_std
        out = features.new_zeros(len(features))
        for s, mlp in enumerate(self.mlps):
            atoms = torch.nonzero(species == s).squeeze(1)
            if len(atoms):
                out = out.index_put((atoms,), mlp(x[atoms]).squeeze(1))
        return out * self.energy_scale + self.energy_shift[species]


def network_inputs(data: dict, where: str, potential=None):
    """The inputs a correction's JSON describes (``descriptor`` entry): symmetry
    functions, followed by the terms of ``potential`` (the formula) when it says
    ``formula_terms``; a formula that is not the one it was trained with is an error."""
    symmetry = SymmetryFunctions.from_dict(data, where)
    terms = data.get("formula_terms")
    if terms is None:
        return symmetry
    if potential is None or len(potential.terms) != terms:
        raise EvopotError(
            f"{where}: the correction reads {terms} formula term(s) but the formula here has "
            f"{0 if potential is None else len(potential.terms)}; the network belongs to another formula — "
            f"train it again with evopot correct"
        )
    recorded = data.get("formula")
    if recorded is not None and recorded != potential.formula():
        raise EvopotError(
            f"{where}: the correction was trained reading the terms of {recorded!r}, not of this file's formula "
            f"{potential.formula()!r}; train it again with evopot correct (or restore the formula)"
        )
    from evopot.neural.formula_inputs import FormulaInputs

    return FormulaInputs(symmetry, potential)


@dataclass
class Correction:
    """An ensemble of :class:`AtomicNetwork` on one set of inputs: symmetry functions,
    possibly followed by the formula's term energies (:class:`evopot.neural.formula_inputs.FormulaInputs`)."""

    descriptor: SymmetryFunctions
    networks: list[nn.Module]
    hidden: tuple[int, ...] = (32, 32)
    activation: str = "tanh"
    info: dict = field(default_factory=dict)
    #: None: Behler–Parrinello networks; else the interaction network's options (width, rounds, radial, channels)
    interaction: dict | None = None

    @classmethod
    def new(
        cls,
        descriptor: SymmetryFunctions,
        size: int,
        hidden=(32, 32),
        activation="tanh",
        seed: int = 0,
        interaction: dict | None = None,
    ) -> Correction:
        from evopot.neural.interaction import DEFAULTS, InteractionNetwork

        if interaction is not None:
            interaction = {**DEFAULTS, **interaction}
        networks = []
        for m in range(size):
            torch.manual_seed(seed + m)
            if interaction is None:
                network = AtomicNetwork(len(descriptor.species), descriptor.n_features, tuple(hidden), activation)
            else:
                network = InteractionNetwork(
                    len(descriptor.species),
                    descriptor.n_features,
                    descriptor.cutoff,
                    hidden=tuple(hidden),
                    activation=activation,
                    **interaction,
                )
            networks.append(network.double())
        return cls(descriptor, networks, tuple(hidden), activation, interaction=interaction)

    @property
    def model(self) -> str:
        """``bpnn`` or ``interaction`` (``correction.model``)."""
        return "bpnn" if self.interaction is None else "interaction"

    @property
    def species(self) -> tuple[str, ...]:
        return self.descriptor.species

    @property
    def parameters(self) -> int:
        return sum(p.numel() for net in self.networks for p in net.parameters())

    def to(self, device, dtype=torch.float64) -> Correction:
        for net in self.networks:
            net.to(device=device, dtype=dtype)
        return self

    def bond_energies(self, d, center, neighbor, species, n_atoms, members: bool = False):
        """Energy (eV, ensemble mean) and its gradient ∂E/∂d (n_bonds, 3) eV/Å with respect
        to the bond vectors of a full neighbour list sorted by centre; with ``members``
        also each network's gradient (M, n_bonds, 3), for the uncertainty."""
        from evopot.neural.interaction import atomic_energies

        with torch.enable_grad():
            d = d.detach().requires_grad_(True)
            features = self.descriptor(d, center, neighbor, species, n_atoms)
            energies = torch.stack(
                [atomic_energies(net, features, species, d, center, neighbor).sum() for net in self.networks]
            )
            if members:
                gradients = torch.stack([torch.autograd.grad(e, d, retain_graph=True)[0] for e in energies])
                return energies.mean().detach(), gradients.mean(0), gradients
            (gradient,) = torch.autograd.grad(energies.mean(), d)
        return energies.mean().detach(), gradient, None

    def spec(self, weights_file: str) -> dict:
        """The JSON description of this correction (everything but the weights)."""
        return {
            "kind": KINDS[self.model],
            "weights": weights_file,
            "species": list(self.species),
            "ensemble": len(self.networks),
            "hidden": list(self.hidden),
            "activation": self.activation,
            "descriptor": self.descriptor.to_dict(),
            "parameters": self.parameters,
            **({} if self.interaction is None else {"interaction": dict(self.interaction)}),
            **self.info,
        }

    def save_weights(self, path: str | Path) -> None:
        torch.save(
            {
                "format": WEIGHTS_FORMAT,
                "species": list(self.species),
                "networks": [{k: v.detach().cpu() for k, v in net.state_dict().items()} for net in self.networks],
            },
            Path(path),
        )

    @classmethod
    def load(cls, spec: dict, folder: Path, where: str, potential=None) -> Correction:
        """The correction described by ``spec`` (from the potential's JSON), its weights
        read from ``folder``; ``potential`` is the formula, needed when the network reads
        its terms (:mod:`evopot.neural.formula_inputs`)."""
        weights = spec.get("weights") if isinstance(spec, dict) else None
        if isinstance(weights, str) and (Path(weights).name != weights or weights in ("", ".", "..")):
            raise EvopotError(
                f"{where}: correction.weights {weights!r} must name a file in the potential's own folder, not a path"
            )
        try:
            descriptor = network_inputs(spec["descriptor"], f"{where}: correction.descriptor", potential)
            hidden, activation, size, weights = (
                tuple(int(h) for h in spec["hidden"]),
                str(spec["activation"]),
                int(spec["ensemble"]),
                str(spec["weights"]),
            )
            kind = spec.get("kind", KINDS["bpnn"])
            if kind not in KINDS.values():
                raise ValueError(f"kind {kind!r} unknown; evopot knows {sorted(KINDS.values())}")
            interaction = None
            if kind == KINDS["interaction"]:
                interaction = {k: int(v) for k, v in dict(spec["interaction"]).items()}
        except (KeyError, TypeError, ValueError) as exc:
            raise EvopotError(
                f"{where}: malformed 'correction' entry ({exc}); expected weights, ensemble, hidden, "
                f"activation, descriptor"
            ) from exc
        path = folder / weights
        if not path.is_file():
            raise EvopotError(
                f"{where}: the correction's weights file {path} is missing; keep it beside the potential JSON"
            )
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises many kinds for a damaged file
            raise EvopotError(
                f"{path}: cannot read the network weights ({type(exc).__name__}: {exc}); the file is damaged "
                f"— train it again with evopot correct"
            ) from exc
        if (
            not isinstance(data, dict)
            or data.get("format") != WEIGHTS_FORMAT
            or not isinstance(data.get("networks"), list)
        ):
            raise EvopotError(f"{path}: not an evopot correction weights file")
        if list(data.get("species", [])) != list(descriptor.species):
            raise EvopotError(
                f"{path}: the network was trained for species {data.get('species')} but {where} describes "
                f"{list(descriptor.species)}"
            )
        if len(data["networks"]) != size:
            raise EvopotError(f"{path}: holds {len(data['networks'])} networks, {where} says the ensemble has {size}")
        correction = cls.new(descriptor, size, hidden, activation, interaction=interaction)
        for k, (net, state) in enumerate(zip(correction.networks, data["networks"])):
            try:
                net.load_state_dict(state)
            except (RuntimeError, TypeError, AttributeError) as exc:
                raise EvopotError(f"{path}: network {k} does not fit the architecture in {where} ({exc})") from exc
            if not all(torch.isfinite(v).all() for v in state.values()):
                raise EvopotError(f"{path}: network {k} has non-finite weights")
        correction.info = {k: v for k, v in spec.items() if k not in SPEC_KEYS}
        return correction
