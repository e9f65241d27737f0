"""Export a Potential to other codes; one module per target file format.

- :mod:`evopot.export.lammps` chooses LAMMPS styles for a potential's terms and writes
  the files with an ``in.evopot`` snippet (its entry point is :func:`export_lammps`);
- :mod:`evopot.export.lammps_table` (pair terms → ``pair_style table``),
  :mod:`evopot.export.lammps_sw` (Stillinger–Weber-form terms → ``pair_style sw``),
  :mod:`evopot.export.eam_setfl` (pair + embedding → ``pair_style eam/alloy``);
- :mod:`evopot.export.lammps_run` runs real LAMMPS on a structure to check an export.

Exporters read a Potential and nothing upstream of it.
"""
