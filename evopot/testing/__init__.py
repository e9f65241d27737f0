"""Published potentials, formula equivalence and rediscovery problems for tests and benchmarks."""
