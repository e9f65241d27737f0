"""Tersoff bond-order terms ↔ LAMMPS ``pair_style tersoff`` files.

A ``.tersoff`` file has one entry per triplet of elements (i, j, k) with 17 fields:
element1 element2 element3 m γ λ₃ c d cos θ₀ n β λ₂ B R D λ₁ A. evopot's Tersoff term
(:func:`evopot.model.terms.bondorder.tersoff_term`) acts on all species alike, so an
export writes the same parameters for every triplet, and reading takes a file whose
entries all agree. Tersoff's cutoff ½ − ½ sin(π(r − R)/2D) is evopot's ``cosine``
cutoff from R − D to R + D.
"""

from __future__ import annotations

from itertools import product
from pathlib import Path

from evopot.errors import EvopotError
from evopot.model.cutoff import Cutoff
from evopot.model.potential import Potential, Term
from evopot.model.terms.bondorder import tersoff_parameters, tersoff_term

#: the order of a .tersoff entry's numbers after the three elements (h is LAMMPS's cos θ₀)
FIELDS = ("m", "gamma", "lambda3", "c", "d", "h", "n", "beta", "lambda2", "B", "R", "D", "lambda1", "A")


class NotTersoff(Exception):
    """The potential is not one Tersoff term with a Tersoff cutoff."""


def tersoff_entry(potential: Potential) -> tuple[Term, dict[str, float]]:
    """The bond-order term and its LAMMPS fields (m, R, D included); raises
    :class:`NotTersoff` with the reason."""
    bond = [t for t in potential.terms if t.kind == "bondorder"]
    if len(bond) != 1:
        raise NotTersoff(f"pair_style tersoff holds one bond-order term, the potential has {len(bond)}")
    (term,) = bond
    found = tersoff_parameters(term)
    if found is None:
        raise NotTersoff(
            "the bond-order term is not Tersoff's form in its named parameters (V(r, zeta) = "
            "A*exp(-lambda1*r) - B*exp(-lambda2*r)*(1 + (beta*zeta)**n)**(-1/(2*n)), xi = gamma*(1 + c**2/d**2 - "
            "c**2/(d**2 + (costheta - h)**2))*exp(lambda3**m*(rij - rik)**m), as evopot.model.terms.bondorder."
            "tersoff_term builds it), which is all pair_style tersoff can hold; run this formula in evopot "
            "(evopot md, or the ASE calculator of evopot.md.calculator)"
        )
    values, m = found
    cutoff = potential.cutoff_of(term)
    if cutoff.kind != "cosine":
        raise NotTersoff(f"Tersoff's cutoff is the cosine switch; this term's is {cutoff.kind}")
    R, D = (cutoff.radius + cutoff.onset) / 2, (cutoff.radius - cutoff.onset) / 2
    return term, {**values, "m": float(m), "R": R, "D": D}


def write_tersoff(potential: Potential, path: Path, header: list[str]) -> None:
    """Write ``path``: the potential's Tersoff term for every triplet of its species."""
    _, fields = tersoff_entry(potential)
    lines = [f"# {line}" for line in header]
    lines.append("# element1 element2 element3 " + " ".join(FIELDS))
    for triplet in product(potential.species, repeat=3):
        lines.append(" ".join(triplet) + " " + " ".join(f"{fields[k]:.17g}" for k in FIELDS))
    path.write_text("\n".join(lines) + "\n")


def read_tersoff(path: str | Path) -> Potential:
    """A Potential of the Tersoff term in a LAMMPS ``.tersoff`` file (whose entries must
    all have the same parameters)."""
    path = Path(path)
    if not path.is_file():
        raise EvopotError(f"{path}: Tersoff file not found")
    words = []
    for line in path.read_text().splitlines():
        words += line.split("#", 1)[0].split()
    if not words or len(words) % 17:
        raise EvopotError(f"{path}: a .tersoff file has entries of 17 fields (3 elements and 14 numbers)")
    entries = [words[k : k + 17] for k in range(0, len(words), 17)]
    try:
        numbers = [tuple(float(x) for x in e[3:]) for e in entries]
    except ValueError as exc:
        raise EvopotError(f"{path}: {exc}; fields 4–17 of each entry are numbers") from exc
    if len(set(numbers)) != 1:
        raise EvopotError(f"{path}: entries with different parameters; evopot's Tersoff term is one set for all")
    fields = dict(zip(FIELDS, numbers[0]))
    species = tuple(dict.fromkeys(e[0] for e in entries))
    term = tersoff_term({k: v for k, v in fields.items() if k not in ("m", "R", "D")}, int(fields["m"]))
    cutoff = Cutoff(fields["R"] + fields["D"], fields["R"] - fields["D"], "cosine")
    return Potential((term,), cutoff, species, {}, {"source": str(path)})
