"""Write each mlearn frame's stress in ASE's convention (extxyz ``stress=``: eV/Å³, 3x3,
positive when tensile) beside the source's ``virial_stress_raw`` (kBar, compressive
positive), which stays as it was.

mlearn stores six components whose shear order differs between its sources; the order
of each (element, config_type) below was read from the data (see README.md):

- Elastic frames: a shear strain in one plane moves one raw component only, which names it;
- AIMD-NVT and Vacancy frames: the shear stresses of a reference potential (LAMMPS's
  Si.tersoff; the mlearn paper's own Mo SNAP, Mo_Chen_PRM2017) correlate at 0.6-0.98
  with one raw component each and at < 0.25 with the others.

Surface frames get no stress: their diagonal components disagree with both reference
potentials (Mo: the raw zz correlates with SNAP's xx at -0.7), so their stress is not in
the frame of the stored cell.

Run from the repository root: ``python examples/data/add_stress.py`` (idempotent).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
#: raw component holding (xx, yy, zz, yz, xz, xy), by element and config_type
VASP = [0, 1, 2, 4, 5, 3]  # raw (xx yy zz xy yz zx)
SWAPPED = [0, 1, 2, 5, 4, 3]  # raw (xx yy zz xy zx yz)
ORDER = {
    ("Si", "Elastic"): VASP,
    ("Si", "AIMD-NVT"): SWAPPED,
    ("Si", "Vacancy"): SWAPPED,
    ("Mo", "Elastic"): SWAPPED,
    ("Mo", "AIMD-NVT"): SWAPPED,
    ("Mo", "Vacancy"): SWAPPED,
}
KBAR_TO_EV_PER_A3 = -0.1 / 160.21766208  # kBar → GPa, compressive → tensile; GPa → eV/Å³


def stress_field(element: str, comment: str) -> str | None:
    """The ``stress="…"`` field of a frame's comment line, or None when it gets none."""
    config_type = re.search(r"config_type=(\S+)", comment).group(1)
    order = ORDER.get((element, config_type))
    if order is None:
        return None
    raw = np.array(re.search(r'virial_stress_raw="([^"]+)"', comment).group(1).split(), dtype=float)
    xx, yy, zz, yz, xz, xy = KBAR_TO_EV_PER_A3 * raw[order]
    full = [xx, xy, xz, xy, yy, yz, xz, yz, zz]
    return 'stress="' + " ".join(f"{v:.10g}" for v in full) + '"'


def add_stress(path: Path, element: str) -> int:
    lines = path.read_text().splitlines(keepends=True)
    k, written = 0, 0
    while k < len(lines):
        count = int(lines[k].split()[0])
        comment = re.sub(r' stress="[^"]*"', "", lines[k + 1].rstrip("\n"))
        field = stress_field(element, comment)
        if field is not None:
            comment = comment.replace(" virial_stress_raw=", f" {field} virial_stress_raw=", 1)
            written += 1
        lines[k + 1] = comment + "\n"
        k += 2 + count
    path.write_text("".join(lines))
    return written


if __name__ == "__main__":
    for element in ("Si", "Mo"):
        for name in ("training.extxyz", "test.extxyz"):
            print(element, name, add_stress(HERE / element / name, element), "frames given a stress")
