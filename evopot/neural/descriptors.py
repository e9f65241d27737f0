"""Behler–Parrinello symmetry functions: what the residual network sees of an atom's
neighbourhood.

With the cosine cutoff fc(r) = ½(cos(πr/rc) + 1) for r < rc:

- radial G²_i = Σ_j exp(−η (r_ij − r_s)²) fc(r_ij), one column per (η, r_s) and
  neighbour species;
- angular G⁴_i = 2^(1−ζ) Σ_{j<k} (1 + λ cos θ_jik)^ζ exp(−η (r_ij² + r_ik² + r_jk²))
  fc(r_ij) fc(r_ik) fc(r_jk), one column per (ζ, λ, η) and unordered pair of neighbour
  species; each angle counts once;
- angular shells (ANI's radial shells on G⁴): the same with exp(−η (½(r_ij + r_ik) − r_s)²)
  fc(r_ij) fc(r_ik) instead, one column per (ζ, λ, η, r_s) and species pair: the angle
  distribution of each neighbour shell on its own;
- moment invariants (the moment tensors of Shapeev's MTP): per channel c = (η, r_s,
  neighbour species), the vector V_c = Σ_j R_c(r_ij) r̂_ij and the traceless tensor
  T_c = Σ_j R_c(r_ij) (r̂_ij r̂_ijᵀ − I/3), R_c = exp(−η (r − r_s)²) fc(r) to the angular
  cutoff; their rotation invariants V_a·V_b and T_a:T_b (three-body) and V_aᵀ T_b V_c and
  tr(T_a T_b T_c) (four-body: dihedral information the G⁴ functions lack). In a perfect
  tetrahedron V and T vanish, so these measure exactly the distortions of a covalent
  neighbourhood.

Everything is torch, differentiable with respect to the bond vectors d (n_bonds, 3) Å of
a full neighbour list sorted by centre atom, so forces follow by autograd and the
columns' Jacobians can be taken one column at a time (:meth:`SymmetryFunctions.column`).
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass

import torch

from evopot.data.neighbors import angle_pairs
from evopot.errors import EvopotError


@dataclass(frozen=True)
class SymmetryFunctions:
    """Radial (η Å⁻², r_s Å), angular (ζ, λ, η Å⁻²) and shell (ζ, λ, η Å⁻², r_s Å)
    parameter sets, their cutoffs (Å) and the species order; ``n_features`` columns per
    atom."""

    species: tuple[str, ...]
    cutoff: float
    angular_cutoff: float
    radial: tuple[tuple[float, float], ...]
    angular: tuple[tuple[float, float, float], ...]
    shells: tuple[tuple[float, float, float, float], ...] = ()
    moments: tuple[tuple[float, float], ...] = ()

    def __post_init__(self):
        if not 0 < self.angular_cutoff <= self.cutoff:
            raise EvopotError(
                f"symmetry functions: angular cutoff {self.angular_cutoff} Å must be in (0, cutoff {self.cutoff} Å]"
            )
        for zeta, lam, eta, *_ in self.angular + self.shells:
            if zeta < 1 or lam not in (-1.0, 1.0) or eta < 0:
                raise EvopotError(
                    f"symmetry functions: angular set (zeta {zeta}, lambda {lam}, eta {eta}) needs zeta ≥ 1, "
                    f"lambda ±1, eta ≥ 0"
                )
        if not self.radial:
            raise EvopotError("symmetry functions: give at least one radial function")
        if any(eta <= 0 for eta, _ in self.moments):
            raise EvopotError(f"symmetry functions: moment channels {self.moments} need eta > 0")

    @classmethod
    def default(
        cls,
        species,
        cutoff: float,
        angular_cutoff: float | None = None,
        radial_count: int = 16,
        shell_count: int = 6,
        moment_count: int = 0,
    ) -> SymmetryFunctions:
        """Evenly spaced radial Gaussians from 1 Å to the cutoff (width = spacing);
        ζ ∈ {1, 2, 4, 8}, λ = ±1 with two η scaled by the angular cutoff; the same ζ and λ
        on ``shell_count`` shells from 2 Å to 0.7 Å inside the angular cutoff; and
        ``moment_count`` moment channels per species placed as the shells are."""
        angular_cutoff = angular_cutoff or cutoff
        centres = [1.0 + k * (cutoff - 1.0) / (radial_count - 1) for k in range(radial_count)]
        spacing = (cutoff - 1.0) / (radial_count - 1)
        radial = tuple((round(0.5 / spacing**2, 6), round(c, 6)) for c in centres)
        etas = (round(0.5 / angular_cutoff**2, 6), round(2.0 / angular_cutoff**2, 6))
        angular = tuple((float(z), float(lam), e) for e in etas for z in (1, 2, 4, 8) for lam in (1, -1))
        shells = tuple(
            (float(z), float(lam), eta, shift)
            for eta, shift in _shells(angular_cutoff, shell_count)
            for z in (1, 2, 4, 8)
            for lam in (1, -1)
        )
        return cls(
            tuple(species),
            float(cutoff),
            float(angular_cutoff),
            radial,
            angular,
            shells,
            _shells(angular_cutoff, moment_count),
        )

    @property
    def species_pairs(self) -> list[tuple[int, int]]:
        n = len(self.species)
        return list(itertools.combinations_with_replacement(range(n), 2))

    @functools.cached_property
    def moment_invariants(self) -> list[tuple[str, tuple[int, ...]]]:
        """(kind, channels) of each moment column: 'vv' (a ≤ b), 'tt' (a ≤ b), 'vtv'
        (b; a ≤ c), 'ttt' (a ≤ b ≤ c); channel = moment set × species."""
        channels = range(len(self.moments) * len(self.species))
        pairs = list(itertools.combinations_with_replacement(channels, 2))
        return (
            [("vv", p) for p in pairs]
            + [("tt", p) for p in pairs]
            + [("vtv", (a, b, c)) for b in channels for a, c in pairs]
            + [("ttt", t) for t in itertools.combinations_with_replacement(channels, 3)]
        )

    @property
    def n_features(self) -> int:
        return (
            len(self.radial) * len(self.species)
            + (len(self.angular) + len(self.shells)) * len(self.species_pairs)
            + len(self.moment_invariants)
        )

    def to_dict(self) -> dict:
        return {
            "species": list(self.species),
            "cutoff": self.cutoff,
            "angular_cutoff": self.angular_cutoff,
            "radial": [list(p) for p in self.radial],
            "angular": [list(p) for p in self.angular],
            "shells": [list(p) for p in self.shells],
            "moments": [list(p) for p in self.moments],
        }

    @classmethod
    def from_dict(cls, data: dict, where: str = "descriptor") -> SymmetryFunctions:
        try:
            return cls(
                tuple(data["species"]),
                float(data["cutoff"]),
                float(data["angular_cutoff"]),
                tuple((float(a), float(b)) for a, b in data["radial"]),
                tuple((float(a), float(b), float(c)) for a, b, c in data["angular"]),
                tuple((float(a), float(b), float(c), float(e)) for a, b, c, e in data.get("shells", [])),
                tuple((float(a), float(b)) for a, b in data.get("moments", [])),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise EvopotError(
                f"{where}: malformed symmetry functions ({exc}); expected species, cutoff, angular_cutoff, "
                f"radial, angular"
            ) from exc

    def _fc(self, r: torch.Tensor, rc: float) -> torch.Tensor:
        return torch.where(r < rc, 0.5 * (torch.cos(math.pi * r / rc) + 1.0), torch.zeros_like(r))

    def neighbourhood(
        self, d: torch.Tensor, center: torch.Tensor, neighbor: torch.Tensor, species: torch.Tensor, n_atoms: int
    ) -> dict:
        """The bonds and angles inside the cutoffs, shared by all columns."""
        r = torch.linalg.norm(d, dim=1)
        t1, t2 = angle_pairs(center, r, self.angular_cutoff, n_atoms)
        d1, d2 = d[t1], d[t2]
        r1, r2 = r[t1], r[t2]
        r3 = torch.linalg.norm(d2 - d1, dim=1)
        s1, s2 = species[neighbor[t1]], species[neighbor[t2]]
        n = len(self.species)
        hood = {
            "r": r,
            "center": center,
            "n_atoms": n_atoms,
            "bond_species": species[neighbor],
            "fc": self._fc(r, self.cutoff),
            "angle_center": center[t1],
            "cos": ((d1 * d2).sum(1) / (r1 * r2)).clamp(-1.0, 1.0),
            "squares": r1**2 + r2**2 + r3**2,
            "mean": 0.5 * (r1 + r2),
            "fc2": self._fc(r1, self.angular_cutoff) * self._fc(r2, self.angular_cutoff),
            "fc3": self._fc(r1, self.angular_cutoff)
            * self._fc(r2, self.angular_cutoff)
            * self._fc(r3, self.angular_cutoff),
            "angle_species": torch.minimum(s1, s2) * n + torch.maximum(s1, s2),
        }
        if self.moments:
            eta, shift = (torch.as_tensor([m[k] for m in self.moments], dtype=d.dtype, device=d.device) for k in (0, 1))
            weight = torch.exp(-eta * (r[:, None] - shift) ** 2) * self._fc(r, self.angular_cutoff)[:, None]
            weight = (
                weight[:, None, :]
                * (hood["bond_species"][:, None, None] == torch.arange(n, device=d.device)[None, :, None])
            ).reshape(len(r), -1)
            unit = d / r[:, None]
            outer = unit[:, :, None] * unit[:, None, :] - torch.eye(3, dtype=d.dtype, device=d.device) / 3
            channels = weight.shape[1]
            hood["V"] = r.new_zeros(n_atoms, channels, 3).index_add(0, center, weight[:, :, None] * unit[:, None, :])
            hood["T"] = r.new_zeros(n_atoms, channels, 3, 3).index_add(
                0, center, weight[:, :, None, None] * outer[:, None]
            )
        return hood

    def column(self, hood: dict, k: int) -> torch.Tensor:
        """Column ``k`` of the features, shape (n_atoms,)."""
        n_radial = len(self.radial) * len(self.species)
        out = hood["r"].new_zeros(hood["n_atoms"])
        if k < n_radial:
            (eta, shift), element = self.radial[k % len(self.radial)], k // len(self.radial)
            value = _radial(hood["r"], hood["fc"], eta, shift) * (hood["bond_species"] == element)
            return out.index_add(0, hood["center"], value)
        k -= n_radial
        sets = self.angular + self.shells
        if k >= len(sets) * len(self.species_pairs):
            kind, channels = self.moment_invariants[k - len(sets) * len(self.species_pairs)]
            return _invariant(kind, hood["V"], hood["T"], *channels)
        (zeta, lam, eta, *shift), (a, b) = sets[k % len(sets)], self.species_pairs[k // len(sets)]
        value = _angle_shape(hood["cos"], zeta, lam) * _angle_distance(hood, eta, *shift)
        value = value * (hood["angle_species"] == a * len(self.species) + b)
        return out.index_add(0, hood["angle_center"], value)

    def features(self, hood: dict) -> torch.Tensor:
        """All columns at once (n_atoms, n_features): the same numbers as :meth:`column`
        for each k, in a few whole-array operations instead of one pass over the bonds and
        angles per column (what MD with a hybrid pays every step)."""
        n_atoms, n = hood["n_atoms"], len(self.species)
        r = hood["r"]
        eta, shift = (r.new_tensor([p[k] for p in self.radial]) for k in (0, 1))
        value = _radial(r[:, None], hood["fc"][:, None], eta, shift)
        # row (atom, neighbour species) of an (n_atoms · n_species, n_radial) sum: column k = species · n_radial + set
        radial = r.new_zeros(n_atoms * n, len(self.radial)).index_add(
            0, hood["center"] * n + hood["bond_species"], value
        )
        blocks = [radial.reshape(n_atoms, -1)]
        if self.angular or self.shells:
            shapes, distances, wanted = self._angular_plan
            angle = torch.stack([_angle_shape(hood["cos"], zeta, lam) for zeta, lam in shapes], dim=1)
            distance = torch.stack([_angle_distance(hood, *d) for d in distances], dim=1)
            # the angle's species pair as its index in species_pairs (code a · n + b, a ≤ b)
            pair = torch.full((n * n,), -1, dtype=torch.long, device=r.device)
            for index, (a, b) in enumerate(self.species_pairs):
                pair[a * n + b] = index
            pairs = len(self.species_pairs)
            rows = _Segments(hood["angle_center"] * pairs + pair[hood["angle_species"]], n_atoms * pairs)
            # Σ over each row's angles of distance factor × angle factor, every (distance, shape)
            # combination at once as a batched matrix product of the angles padded per row
            sums = rows.pad(distance).transpose(1, 2) @ rows.pad(angle)
            angular = sums.reshape(n_atoms * pairs, -1)[:, wanted]
            blocks.append(angular.reshape(n_atoms, -1))
        if self.moments:
            blocks.append(self._invariants(hood["V"], hood["T"]))
        return torch.cat(blocks, dim=1)

    def _invariants(self, V: torch.Tensor, T: torch.Tensor) -> torch.Tensor:
        """The moment invariants' columns, in :attr:`moment_invariants`' order."""
        out = []
        for kind in ("vv", "tt", "vtv", "ttt"):
            channels = [c for k, c in self.moment_invariants if k == kind]
            out.append(_invariant(kind, V, T, *(torch.as_tensor(i, device=V.device) for i in zip(*channels))))
        return torch.cat(out, dim=1)

    @functools.cached_property
    def _angular_plan(self) -> tuple[list, list, list[int]]:
        """(the distinct (ζ, λ) shapes, the distinct (η[, r_s]) distance factors, and
        for each angular set its column in their (distance × shape) product)."""
        sets = self.angular + self.shells
        shapes = sorted({(zeta, lam) for zeta, lam, *_ in sets})
        distances = sorted({(eta, *shift) for _, _, eta, *shift in sets})
        wanted = [distances.index((eta, *shift)) * len(shapes) + shapes.index((z, lam)) for z, lam, eta, *shift in sets]
        return shapes, distances, wanted

    def __call__(self, d, center, neighbor, species, n_atoms) -> torch.Tensor:
        """Features (n_atoms, n_features) from bond vectors ``d`` (n_bonds, 3) Å from atom
        ``center`` to ``neighbor`` (full list sorted by centre) and species indices."""
        return self.features(self.neighbourhood(d, center, neighbor, species, n_atoms))


def _radial(r, fc, eta, shift):
    """G²'s term exp(−η (r − r_s)²) fc(r)."""
    return torch.exp(-eta * (r - shift) ** 2) * fc


def _angle_shape(cos, zeta: float, lam: float):
    """G⁴'s angular factor 2^(1−ζ) (1 + λ cos θ)^ζ."""
    return (2.0 ** (1 - zeta)) * (1 + lam * cos) ** zeta


def _angle_distance(hood: dict, eta: float, *shift: float):
    """G⁴'s distance factor: exp(−η (½(r_ij + r_ik) − r_s)²) fc fc for a shell, else
    exp(−η (r_ij² + r_ik² + r_jk²)) fc fc fc."""
    if shift:
        return torch.exp(-eta * (hood["mean"] - shift[0]) ** 2) * hood["fc2"]
    return torch.exp(-eta * hood["squares"]) * hood["fc3"]


def _invariant(kind: str, V, T, a, b, c=None):
    """A moment invariant of channels a, b (, c): V_a·V_b, T_a:T_b, V_aᵀ T_b V_c or
    tr(T_a T_b T_c); channels are numbers (one column) or index tensors (several)."""
    if kind == "vv":
        return (V[:, a] * V[:, b]).sum(-1)
    if kind == "tt":
        return (T[:, a] * T[:, b]).sum((-2, -1))
    if kind == "vtv":
        return torch.einsum("...i,...ij,...j->...", V[:, a], T[:, b], V[:, c])
    return torch.einsum("...ij,...jk,...ki->...", T[:, a], T[:, b], T[:, c])


class _Segments:
    """Rows ``key`` (n,) of items out of ``size`` rows, for padding per-item values into
    an array (size, longest row, columns) that a batched product can sum over."""

    def __init__(self, key: torch.Tensor, size: int):
        ordered = len(key) < 2 or bool((key[1:] >= key[:-1]).all())  # one species: angles come by centre
        self.order = None if ordered else torch.argsort(key, stable=True)
        self.key = key if ordered else key[self.order]
        counts = torch.bincount(self.key, minlength=size)
        self.slot = torch.arange(len(key), device=key.device) - (torch.cumsum(counts, 0) - counts)[self.key]
        self.size, self.longest = size, int(counts.max()) if len(key) else 0

    def pad(self, values: torch.Tensor) -> torch.Tensor:
        """(size, longest, columns) with the values of each row's items, zero after them."""
        padded = values.new_zeros(self.size, self.longest, values.shape[1])
        return padded.index_put((self.key, self.slot), values if self.order is None else values[self.order])


def _shells(angular_cutoff: float, count: int) -> tuple[tuple[float, float], ...]:
    """(η Å⁻², r_s Å) of ``count`` neighbour shells from 2 Å to 0.7 Å inside the angular
    cutoff, each as wide as the spacing (at least 0.3 Å)."""
    if not count:
        return ()
    step = (angular_cutoff - 2.7) / max(count - 1, 1)
    eta = round(0.5 / max(step, 0.3) ** 2, 6)
    return tuple((eta, round(2.0 + k * step, 6)) for k in range(count))
