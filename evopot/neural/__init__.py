"""The neural correction: descriptors, networks, training, hybrids."""
