"""Export a Potential to other codes; one module per target file format.

- :mod:`evopot.export.registry`: the formats ``evopot export --format`` chooses from;
- :mod:`evopot.export.lammps` chooses LAMMPS styles for a potential's terms and writes
  the files with an ``in.evopot`` snippet (its entry point is :func:`export_lammps`);
- :mod:`evopot.export.lammps_table` (pair terms → ``pair_style table``),
  :mod:`evopot.export.lammps_sw` (Stillinger–Weber-form terms → ``pair_style sw``),
  :mod:`evopot.export.eam_setfl` (pair + embedding → ``pair_style eam/alloy``),
  :mod:`evopot.export.lammps_tersoff` (Tersoff bond-order terms ↔ ``pair_style tersoff``),
  :mod:`evopot.export.lammps_threebody` (other three-body terms → ``threebody/table``);
- :mod:`evopot.export.lammps_run` runs real LAMMPS on a structure to check an export.

Exporters read a Potential and nothing upstream of it.
"""
