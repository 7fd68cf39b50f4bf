"""Dimension reduction for ApproxKNN: SageMaker's "sign" and "fjlt" random projections.

Both map R^d to R^target and preserve squared norms (and so distances) in expectation, within
the Johnson–Lindenstrauss bound: with probability 1 - δ, pairwise squared distances of n points
change by a factor within 1 ± ε when target ≳ 8 ln(n / δ) / ε².

* ``sign``: x ↦ x R with R a dense d × target matrix of independent ±1 / √target entries.
  O(d · target) per row, one GEMM.
* ``fjlt``: the subsampled randomized Hadamard transform x ↦ (H D x)[S] / √target, with D random
  signs, H the Walsh–Hadamard matrix of the next power of two ≥ d (x zero-padded) and S a random
  subset of target coordinates. O(d log d) per row, in the Cython kernel ``_fjlt.pyx``.
"""

from __future__ import annotations

import numpy as np

from .._kernels import fjlt


class SignProjection:
    """Dense random ±1 projection scaled by 1/√target.

    Parameters
    ----------
    n_features, target : int
    dtype : numpy dtype
    random_state : numpy.random.RandomState

    Attributes
    ----------
    matrix : ndarray of shape (n_features, target)
    """

    kind = "sign"

    def __init__(self, n_features: int, target: int, dtype, random_state):
        signs = random_state.randint(0, 2, size=(n_features, target)) * 2 - 1
        self.matrix = (signs / np.sqrt(target)).astype(dtype)
        self.n_features, self.target = n_features, target

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Project rows: (n_samples, n_features) → (n_samples, target), X's dtype."""
        return np.asarray(X @ self.matrix.astype(X.dtype, copy=False), dtype=X.dtype)


class FJLTProjection:
    """Fast Johnson–Lindenstrauss transform (subsampled randomized Hadamard).

    Attributes
    ----------
    signs : ndarray of shape (n_features,)
    selected : ndarray of shape (target,), int64
    padded : int
        The Hadamard size: the next power of two ≥ n_features.
    """

    kind = "fjlt"

    def __init__(self, n_features: int, target: int, dtype, random_state):
        self.padded = 1 << max(int(np.ceil(np.log2(max(n_features, 2)))), 1)
        if target > self.padded:
            raise ValueError(f"fjlt target {target} exceeds the Hadamard size {self.padded}")
        self.signs = (random_state.randint(0, 2, size=n_features) * 2 - 1).astype(dtype)
        self.selected = np.sort(random_state.choice(self.padded, target, replace=False))
        self.n_features, self.target = n_features, target

    def transform(self, X) -> np.ndarray:
        """Project rows: (n_samples, n_features) → (n_samples, target), X's dtype."""
        if hasattr(X, "toarray"):
            X = X.toarray()
        return fjlt(np.asarray(X), self.signs.astype(X.dtype, copy=False), self.selected,
                    self.padded)


PROJECTIONS = {"sign": SignProjection, "fjlt": FJLTProjection}
