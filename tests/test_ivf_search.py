"""IVFFlat searched list by list with GEMMs answers as faiss's own IVF search does."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from skmk import ApproxKNN


def _data(seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((12, 24)) * 4
    X = (centers[rng.integers(0, 12, 3000)] + rng.standard_normal((3000, 24))).astype(np.float32)
    y = rng.integers(0, 3, 3000)
    return X, y, X[:400] + 0.3


@pytest.mark.parametrize("metric", ["L2", "INNER_PRODUCT", "COSINE"])
def test_batched_ivf_equals_faiss_ivf(metric):
    X, y, queries = _data()
    knn = ApproxKNN(k=7, index_type="faiss.IVFFlat", index_metric=metric, nprobe=3,
                    random_state=0).fit(X, y)
    distances, indices = knn.kneighbors(queries)
    knn._ivf_search_ = None  # faiss answers
    expected_distances, expected_indices = knn.kneighbors(queries)
    assert (indices == expected_indices).mean() > 0.999  # near-ties may swap
    np.testing.assert_allclose(distances, expected_distances, rtol=1e-4, atol=1e-4)


def test_lists_shorter_than_k_fall_back_to_every_list():
    X, y, queries = _data(1)
    knn = ApproxKNN(k=40, index_type="faiss.IVFFlat", faiss_index_ivf_nlists=200, nprobe=1,
                    random_state=0).fit(X, y)
    _, indices = knn.kneighbors(queries)
    assert (indices >= 0).all() and indices.shape == (400, 40)
    knn._ivf_search_ = None
    np.testing.assert_array_equal(np.sort(indices, axis=1),
                                  np.sort(knn.kneighbors(queries)[1], axis=1))


def test_pickle_drops_the_list_views_and_predicts_the_same():
    X, y, queries = _data(2)
    knn = ApproxKNN(k=5, index_type="faiss.IVFFlat", random_state=0).fit(X, y)
    expected = knn.predict(queries)
    assert knn._ivf_search_._lists is not None
    restored = pickle.loads(pickle.dumps(knn))
    assert restored._ivf_search_._lists is None
    np.testing.assert_array_equal(restored.predict(queries), expected)
