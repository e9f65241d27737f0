"""Two models' force errors on the same test frames: is their gap more than which frames
the test set happens to hold?"""

from __future__ import annotations

import numpy as np


def paired_gap(
    first: np.ndarray, second: np.ndarray, atoms: np.ndarray, draws: int = 10000
) -> tuple[float, float, float]:
    """Force MAE of ``first`` minus that of ``second`` (per-atom errors of two models on
    the same atoms, frame after frame, ``atoms`` in each frame) and its 95 % bootstrap
    interval: whole frames drawn with replacement, the same draw for both models."""
    atoms = np.asarray(atoms)
    frame = np.repeat(np.arange(len(atoms)), atoms)
    sums = np.array([np.bincount(frame, weights=e, minlength=len(atoms)) for e in (first, second)])
    draw = np.random.default_rng(0).integers(0, len(atoms), (draws, len(atoms)))
    gaps = (sums[0][draw].sum(1) - sums[1][draw].sum(1)) / atoms[draw].sum(1)
    low, high = np.percentile(gaps, [2.5, 97.5])
    return float(first.mean() - second.mean()), float(low), float(high)


def verdict(gap: float, low: float, high: float) -> str:
    """How to read a gap (first minus second) and its interval."""
    if high < 0:
        return "better, beyond the test set's sampling"
    if low > 0:
        return "worse, beyond the test set's sampling"
    return f"{'lower' if gap < 0 else 'not lower'}, within the test set's sampling (a tie)"
