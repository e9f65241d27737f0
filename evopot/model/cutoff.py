"""Smooth cutoff functions fc(r): 1 below the onset, 0 at and beyond the radius.

Each pair contribution is multiplied by fc(r), so energy and force both go to zero
continuously at the cutoff (value and slope of fc are zero there). Three standard
profiles, each a function of the switching coordinate s in [0, 1]:

- ``quintic`` (default): the C² smoothstep 1 − 10s³ + 15s⁴ − 6s⁵ with
  s = (r − r_on)/(r_c − r_on); value, slope and curvature are continuous at both ends
  (JuLIP; ASE's ``MorsePotential``).
- ``xplor``: the CHARMM/XPLOR switch (1 − s)²(1 + 2s) in the squared distance,
  s = (r² − r_on²)/(r_c² − r_on²) (JAX-MD; ASE's ``LennardJones(smooth=True)``).
- ``cosine``: ½(1 + cos πs) with s = (r − r_on)/(r_c − r_on); with onset 0 this is
  Behler's cosine cutoff, which damps the whole range.
- ``none``: 1 inside the radius. Only for formulas that already vanish smoothly at the
  radius themselves, such as Stillinger–Weber's exp(γσ/(r − aσ)) with radius aσ.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import sympy

from evopot.config.schema import CutoffConfig
from evopot.errors import EvopotError

_S = sympy.Symbol("s")
PROFILES = {
    "none": (sympy.Integer(1), False),
    "quintic": (1 - 10 * _S**3 + 15 * _S**4 - 6 * _S**5, False),
    "xplor": ((1 - _S) ** 2 * (1 + 2 * _S), True),
    "cosine": ((1 + sympy.cos(sympy.pi * _S)) / 2, False),
}


@dataclass(frozen=True)
class Cutoff:
    """A smooth cutoff of kind ``kind`` switching from 1 at ``onset`` to 0 at ``radius`` (Å)."""

    radius: float
    onset: float
    kind: str = "quintic"

    def __post_init__(self):
        if self.kind not in PROFILES:
            raise EvopotError(f"cutoff function '{self.kind}' is unknown; choose one of {sorted(PROFILES)}")
        if not self.radius > 0:
            raise EvopotError(f"cutoff radius must be > 0 Å, got {self.radius}")
        if not 0 <= self.onset < self.radius:
            raise EvopotError(f"cutoff onset must satisfy 0 ≤ onset < radius ({self.radius} Å), got {self.onset}")

    def to_dict(self) -> dict:
        return {"radius": self.radius, "onset": self.onset, "kind": self.kind}

    def switch_expr(self, r):
        """The switching coordinate s(r) (unclipped) as a sympy expression."""
        squared = PROFILES[self.kind][1]
        if squared:
            return (r**2 - self.onset**2) / (self.radius**2 - self.onset**2)
        return (r - self.onset) / (self.radius - self.onset)

    def sympy_expr(self, r: sympy.Symbol) -> sympy.Expr:
        """fc(r) as a sympy ``Piecewise`` (for printing and export)."""
        profile = PROFILES[self.kind][0].subs(_S, self.switch_expr(r))
        return sympy.Piecewise((1, r < self.onset), (profile, r < self.radius), (0, True))

    @cached_property
    def _lambdas(self):
        r = sympy.Symbol("r")
        s = self.switch_expr(r)
        profile = PROFILES[self.kind][0]
        dprofile_ds = sympy.diff(profile, _S)
        ds_dr = sympy.diff(s, r)
        return {
            module: (
                sympy.lambdify([_S], profile, modules=module),
                sympy.lambdify([_S, r], dprofile_ds * ds_dr, modules=module),
            )
            for module in ("numpy", "torch")
        }

    def switching_coordinate(self, r):
        """s(r) clipped to [0, 1]; works on NumPy arrays and torch tensors."""
        if PROFILES[self.kind][1]:
            s = (r * r - self.onset**2) / (self.radius**2 - self.onset**2)
        else:
            s = (r - self.onset) / (self.radius - self.onset)
        return s.clip(0.0, 1.0)

    def value(self, r, module: str = "numpy"):
        """fc(r) for distances ``r`` (Å) of any shape; ``module`` is "numpy" or "torch"."""
        return self._lambdas[module][0](self.switching_coordinate(r)) + 0 * r

    def value_and_derivative(self, r, module: str = "numpy"):
        """(fc(r), dfc/dr in 1/Å), both shaped like ``r``. The derivative vanishes
        outside (onset, radius) because the profile's slope is zero at s = 0 and 1."""
        profile, slope = self._lambdas[module]
        s = self.switching_coordinate(r)
        return profile(s) + 0 * r, slope(s, r) + 0 * r


def cutoff_from_config(config: CutoffConfig, where: str = "config") -> Cutoff:
    """The :class:`Cutoff` of a config's ``cutoff:`` section; an unknown function is an
    error naming the field."""
    if config.function not in PROFILES:
        raise EvopotError(
            f"{where}: cutoff.function: unknown cutoff function '{config.function}'; choose one of {sorted(PROFILES)}"
        )
    return Cutoff(config.radius, config.onset, config.function)
