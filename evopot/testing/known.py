"""Published potentials written as evopot formulas.

References for rediscovery, validation and export tests: each function returns a
:class:`~evopot.model.potential.Potential` whose terms are the published functional form
with the published constants, so that evopot's own evaluator, exporters and MD can be
checked against independent implementations (matscipy, LAMMPS).
"""

from __future__ import annotations

from evopot.model.cutoff import Cutoff
from evopot.model.formula import parse_formula
from evopot.model.potential import Potential, Term

#: LAMMPS ``Si.sw`` / Stillinger & Weber, Phys. Rev. B 31, 5262 (1985).
SW_SILICON = {
    "eps": 2.1683,
    "sig": 2.0951,
    "a": 1.80,
    "lam": 21.0,
    "gam": 1.20,
    "cos0": -1.0 / 3.0,
    "A": 7.049556277,
    "B": 0.6022245584,
    "p": 4.0,
    "q": 0.0,
}

#: Sutton & Chen, Phil. Mag. Lett. 61, 139 (1990), copper.
SUTTON_CHEN_COPPER = {"eps": 1.2382e-2, "c": 39.432, "a": 3.61, "n": 9.0, "m": 6.0}


def stillinger_weber(species: str = "Si", constants: dict | None = None) -> Potential:
    """Stillinger–Weber: E = Σ_pairs φ₂(r) + Σ_angles φ₃, with
    φ₂ = A ε [B (σ/r)^p − (σ/r)^q] exp(σ/(r − aσ)) and
    φ₃ = λ ε (cos θ − cos θ₀)² exp(γσ/(r_ij − aσ)) exp(γσ/(r_ik − aσ)).
    Both vanish smoothly at r = aσ, so the cutoff function is ``none`` at that radius."""
    c = dict(SW_SILICON if constants is None else constants)
    radius = c["a"] * c["sig"]
    names = ["r", "rij", "rik", "costheta", *c]
    pair = parse_formula("A*eps*(B*(sig/r)**p - (sig/r)**q)*exp(sig/(r - a*sig))", names)
    angle = parse_formula("lam*eps*(costheta - cos0)**2*exp(gam*sig/(rij - a*sig))*exp(gam*sig/(rik - a*sig))", names)
    pair_constants = {k: c[k] for k in ("A", "eps", "B", "sig", "p", "q", "a")}
    angle_constants = {k: c[k] for k in ("lam", "eps", "cos0", "gam", "sig", "a")}
    cutoff = Cutoff(radius, 0.0, "none")
    return Potential(
        (Term("pair", pair, pair_constants), Term("threebody", angle, angle_constants)),
        cutoff,
        (species,),
        {},
        {"name": "Stillinger-Weber"},
    )


def sutton_chen(species: str = "Cu", constants: dict | None = None, cutoff: Cutoff = Cutoff(7.0, 6.0)) -> Potential:
    """Sutton–Chen EAM: E = ε Σ_pairs (a/r)^n − ε c Σ_i √ρ_i, ρ_i = Σ_j (a/r)^m, each
    multiplied by the smooth ``cutoff`` (the published form is long-ranged)."""
    c = dict(SUTTON_CHEN_COPPER if constants is None else constants)
    names = ["r", "rho", *c]
    pair = Term("pair", parse_formula("eps*(a/r)**n", names), {k: c[k] for k in ("eps", "a", "n")})
    embedding = Term(
        "embedding",
        parse_formula("-eps*c*sqrt(rho)", names),
        {k: c[k] for k in ("eps", "c", "a", "m")},
        density=parse_formula("(a/r)**m", names),
    )
    return Potential((pair, embedding), cutoff, (species,), {}, {"name": "Sutton-Chen"})
