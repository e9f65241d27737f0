"""Formulas, cutoffs, terms, potentials and their evaluation."""
