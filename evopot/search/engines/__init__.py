"""Search engines: propose candidate formulas and receive their fitness."""
