"""Compiled kernels, the force field, molecular dynamics, the ASE calculator."""
