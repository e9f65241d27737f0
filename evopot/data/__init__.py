"""Datasets (ase.io), geometry (pairs, triplets), neighbour lists, sampling and labelling of structures."""
