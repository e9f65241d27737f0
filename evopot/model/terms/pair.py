"""Pair terms: V(r) per pair of atoms, E = Σ_{i<j} V(r_ij)·fc(r_ij).

A species-specific pair term names two species and acts between them in either order.
"""

from __future__ import annotations

import numpy as np

from evopot.model.terms.base import (
    Bonds,
    Curve,
    Prediction,
    Slot,
    TermKind,
    expression_operations,
    per_bond,
    values_and_slopes,
)


class Pair(TermKind):
    name = "pair"
    variables = ("r",)
    label = "V(r)"
    latex_label = "V(r)"
    species_count = 2

    def slots(self, form):
        return (Slot("V", ("r",), True),)

    def applies(self, term, species_pair) -> bool:
        """Whether ``term`` acts between atoms of ``species_pair`` (either order)."""
        return term.species is None or sorted(term.species) == sorted(species_pair)

    def value_and_slope(self, term, r: np.ndarray):
        """V(r) (eV) and dV/dr (eV/Å), each shaped like ``r`` (Å)."""
        value, (slope,) = values_and_slopes(term, term.expression, self.variables, r)
        return value, slope

    def curves(self, term, cutoff, r, r0):
        v, _ = self.value_and_slope(term, r)
        species = f" ({'-'.join(term.species)})" if term.species else ""
        return [Curve(f"pair term{species}", "r (Å)", "V(r)·fc(r) (eV)", r, {"": v * cutoff.value(r)})]

    def operations(self, term, cutoff, geometry):
        keep = geometry.pair_distances < cutoff.radius
        mask = geometry.pair_mask(term.species)
        pairs = np.count_nonzero(keep if mask is None else keep & mask)
        return expression_operations(term.expression) * pairs / max(geometry.n_atoms, 1)

    def prediction(self, term, cutoff, geometry):
        mask = geometry.pair_mask(term.species)
        selected = slice(None) if mask is None else np.nonzero(mask)[0]  # a slice: no copy
        v, dv = self.value_and_slope(term, geometry.pair_distances[selected])
        fc, dfc = (a[selected] for a in geometry.cutoff_values(cutoff))
        energy, slope = np.zeros(geometry.n_pairs), np.zeros(geometry.n_pairs)
        with np.errstate(all="ignore"):
            energy[selected], slope[selected] = v * fc, dv * fc + v * dfc
        return Prediction(
            geometry.energy_scatter @ energy,
            (geometry.force_scatter @ slope).reshape(-1, 3),
            ((geometry.virial_scatter, slope),),
        )

    def slot_energies(self, form, slots, cutoff, species, bonds: Bonds):
        import torch

        # every pair appears twice in the full list: half of each bond's value per centre
        keep = bonds.r < cutoff.radius
        if species is not None:
            a, b = sorted(bonds.index(s) for s in species)
            si, sj = bonds.species[bonds.center], bonds.species[bonds.neighbor]
            keep = keep & (torch.minimum(si, sj) == a) & (torch.maximum(si, sj) == b)
        value = per_bond(bonds, lambda r: slots("V", r) * cutoff.value(r, "torch"), keep)
        return bonds.r.new_zeros(bonds.n_atoms).index_add(0, bonds.center, 0.5 * value)

    def kernel(self, term, cutoff, k, context):
        fc = context.cutoff(cutoff)
        f = context.function(f"pair_{k}", self.variables, term.expression, term.constants)
        select = [f"(r < {cutoff.radius!r})"] if cutoff.radius < context.reach else []
        if term.species is not None:
            a, b = context.species_index(term.species)
            si, sj = "species[center]", "species[neighbor]"
            select.append(f"((({si} == {a}) & ({sj} == {b})) | (({si} == {b}) & ({sj} == {a})))")
        lines = [f"# pair term {k}: V(r)·fc(r), half of each bond's value (every pair appears twice)"]
        if select:
            lines += [f"b = torch.nonzero({' & '.join(select)}).squeeze(1)", f"v, dv = {f}(r[b])"]
        else:
            lines += [f"v, dv = {f}(r)"]
        if fc:
            lines += [f"c, dc = {fc}(r[b])" if select else f"c, dc = {fc}(r)", "v, dv = v * c, dv * c + v * dc"]
        lines += [
            "energy = energy + 0.5 * v.sum()",
            "slope = slope.index_add(0, b, 0.5 * dv)" if select else "slope = slope + 0.5 * dv",
        ]
        return "\n".join(lines)


PAIR = Pair()
