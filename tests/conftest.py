"""Shared fixtures: seeded data, dense and sparse, in both float dtypes."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import make_blobs


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(params=[np.float32, np.float64], ids=["float32", "float64"])
def float_dtype(request):
    return request.param


@pytest.fixture
def blobs(float_dtype):
    """(X, y, true_centers): 600 rows, 8 features, 5 well-separated clusters."""
    X, y, centers = make_blobs(n_samples=600, n_features=8, centers=5, cluster_std=0.6,
                               random_state=0, return_centers=True)
    return X.astype(float_dtype), y, centers.astype(float_dtype)


@pytest.fixture
def sparse_blobs(blobs):
    """The blobs with about 40 % of entries zeroed, as (dense X, CSR X, y)."""
    X, y, _ = blobs
    mask = np.random.default_rng(1).random(X.shape) < 0.4
    X = np.where(mask, 0, X).astype(X.dtype)
    return X, sp.csr_matrix(X), y
