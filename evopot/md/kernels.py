"""Compile a Potential into one generated torch function for energies, forces and stress.

The generated source is plain Python you can print (:attr:`Kernel.source`): one
function per term slot with its value and exact symbolic derivatives (sympy ``cse``
shares their common subexpressions, constants are inlined), the cutoff functions, and
one ``compute`` that makes a single pass over the bonds of a full neighbour list and
the angles built from them. A separable three-body term whose g(cos θ) is a polynomial
(Stillinger–Weber, mW) needs no angles at all: per-atom angular moments give the same
sum over pairs of bonds exactly (:func:`evopot.model.terms.threebody.moment_lines`),
in time linear in the bonds.
Per-bond work is laid out component-major, (3, n_bonds), because scatters along the
last axis are the fast ones on the CPU. No autograd at run time; the device and dtype
are those of the tensors passed in (float64 or float32, CPU or CUDA). ``torch.compile``
of ``compute`` is optional (:func:`compile_kernel` with ``optimize=True``); the first
call then costs tens of seconds, later calls reuse torch's compile cache (on the CPU it
measured slower than the plain kernel: benchmarks/md_speed.py).

``compute(d, center, neighbor, species, n_atoms)`` takes the bond vectors ``d``
(n_bonds, 3) Å from atom ``center`` to atom ``neighbor`` (every pair in both
directions) and per-atom species indices; it returns the energy (eV), the forces
(n_atoms, 3) eV/Å, and the virial W = Σ d ⊗ ∂E/∂d (3, 3) eV: the strain derivative
∂E/∂ε, so that W / volume is ASE's stress.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from evopot.model.potential import Potential
from evopot.model.terms.codegen import KernelContext


@dataclass(frozen=True)
class Kernel:
    """A compiled potential: ``compute`` and the ``source`` it was made from."""

    potential: Potential
    source: str
    compute: Callable
    reach: float  # Å, the potential's neighbour radius (Potential.reach)


def generate_source(potential: Potential, moments: bool = True) -> str:
    """The Python source of the kernel for ``potential``; ``moments`` False keeps the
    triplet loop even where g(cos θ) is a polynomial (for comparisons). Each term's
    lines come from its kind (:meth:`evopot.model.terms.TermKind.kernel`)."""
    reach = potential.reach
    context = KernelContext(tuple(potential.species), reach, moments)
    body = [term.spec.kernel(term, potential.cutoff_of(term), k, context) for k, term in enumerate(potential.terms)]
    helpers = context.helpers

    header = (
        f'"""evopot kernel (generated) for: {potential.formula()}"""\n\nimport torch\n\nfrom '
        f"evopot.data.neighbors import angle_pairs\n"
    )
    compute = textwrap.dedent(f'''\
        def compute(d, center, neighbor, species, n_atoms):
            """Energy (eV), forces (n_atoms, 3) eV/Å and virial Σ d⊗∂E/∂d (3, 3) eV from bond
            vectors d (n_bonds, 3) of a full neighbour list sorted by center."""
            r = torch.linalg.norm(d, dim=1)
            # only bonds inside the largest cutoff ({reach!r} Å) matter; the list has a skin
            inside = torch.nonzero(r < {reach!r}).squeeze(1)
            d, r = d.index_select(0, inside), r.index_select(0, inside)
            center, neighbor = center.index_select(0, inside), neighbor.index_select(0, inside)
            unit = (d / r[:, None]).T.contiguous()  # (3, n_bonds)
            energy = r.new_zeros(())
            slope = torch.zeros_like(r)          # ∂E/∂r per bond, from radial terms
            # from angular terms, per bond, component-major (scatters along the last axis are
            # the fast ones on the CPU): row 0 adds to the slope, rows 1–3 are the rest of ∂E/∂d
            per_bond = r.new_zeros((4, len(r)))

        ''')
    compute += textwrap.indent("\n\n".join(body), "    ") + "\n\n"
    compute += textwrap.indent(
        textwrap.dedent("""\
        gradient = per_bond[1:] + (slope + per_bond[0]) * unit   # ∂E/∂d, (3, n_bonds)
        # E depends on positions through d = x[neighbor] − x[center] (+ shift)
        forces = gradient.new_zeros((3, n_atoms)).index_add(1, center, gradient).index_add(1, neighbor, -gradient)
        virial = d.T @ gradient.T
        return energy, forces.T.contiguous(), virial"""),
        "    ",
    )
    return header + "\n\n" + "\n\n\n".join(helpers) + "\n\n\n" + compute + "\n"


@lru_cache(maxsize=32)
def _compiled(source: str, optimize: bool) -> Callable:
    import torch

    namespace: dict = {}
    exec(compile(source, "<evopot kernel>", "exec"), namespace)  # our own generated code, from safely parsed formulas
    compute = namespace["compute"]
    return torch.compile(compute, dynamic=True) if optimize else compute


def compile_kernel(potential: Potential, optimize: bool = False, moments: bool = True) -> Kernel:
    """Generate and compile the kernel of ``potential``; ``optimize`` wraps it in
    ``torch.compile`` (slow first call); ``moments`` as in :func:`generate_source`."""
    source = generate_source(potential, moments)
    return Kernel(potential, source, _compiled(source, optimize), potential.reach)
