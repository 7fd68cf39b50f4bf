"""The low-rank bounded search is exact: same neighbours and distances as brute force."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from skmk import ApproxKNN
from skmk._bounded_search import BoundedSearch, LowRankBound


def low_rank_data(n, d, rank, rng, dtype):
    """Rows near a rank-``rank`` subspace plus a little isotropic noise (like images)."""
    basis = rng.standard_normal((rank, d))
    X = rng.standard_normal((n, rank)) * np.linspace(3, 0.3, rank) @ basis
    return (X + 0.05 * rng.standard_normal((n, d)) + 4.0).astype(dtype)


def brute_force(Q, B, t):
    B = B.astype(np.float64)
    sq = np.array([((B - q) ** 2).sum(axis=1) for q in Q.astype(np.float64)])
    order = np.argsort(sq, axis=1, kind="stable")[:, :t]
    return np.take_along_axis(sq, order, axis=1), order


@pytest.mark.parametrize("t", [1, 3, 7])
def test_matches_brute_force(float_dtype, t):
    rng = np.random.default_rng(0)
    B = low_rank_data(3000, 96, 12, rng, float_dtype)
    Q = low_rank_data(200, 96, 12, rng, float_dtype)
    search = BoundedSearch(B, LowRankBound.fit(B, 16, np.random.RandomState(0)))
    sq, idx = search.search(Q, t)
    sq_ref, idx_ref = brute_force(Q, B, t)
    assert sq.dtype == float_dtype and idx.shape == (200, t)
    np.testing.assert_array_equal(idx, idx_ref)
    rtol = 1e-4 if float_dtype == np.float32 else 1e-10
    np.testing.assert_allclose(sq, sq_ref, rtol=rtol, atol=rtol)
    # the bound pruned: far fewer exact distances than brute force's 200 * 3000
    assert search.n_evaluated < 0.25 * Q.shape[0] * B.shape[0]


def test_exact_even_when_the_bound_prunes_nothing():
    rng = np.random.default_rng(1)
    B = rng.standard_normal((500, 40))
    Q = rng.standard_normal((50, 40))
    search = BoundedSearch(B, LowRankBound.fit(B, 4, np.random.RandomState(0)))
    sq, idx = search.search(Q, 5)
    sq_ref, idx_ref = brute_force(Q, B, 5)
    np.testing.assert_array_equal(idx, idx_ref)
    np.testing.assert_allclose(sq, sq_ref, rtol=1e-10)


def test_ties_go_to_the_lower_index():
    rng = np.random.default_rng(2)
    rows = low_rank_data(300, 64, 8, rng, np.float64)
    B = np.concatenate([rows, rows, rows])  # every row three times
    search = BoundedSearch(B, LowRankBound.fit(B, 8, np.random.RandomState(0)))
    sq, idx = search.search(rows[:40], 3)
    np.testing.assert_array_equal(idx, np.arange(40)[:, None] + np.array([0, 300, 600]))
    np.testing.assert_allclose(sq, 0, atol=1e-9)


def test_the_bound_is_below_every_distance(float_dtype):
    rng = np.random.default_rng(3)
    B = low_rank_data(400, 128, 10, rng, float_dtype)
    bound = LowRankBound.fit(B, 10, np.random.RandomState(0))
    low, sq = bound.coordinates(B)
    low, sq = low.astype(np.float64), sq.astype(np.float64)
    lower = sq[:, None] + sq[None] - 2 * low @ low.T
    B = B.astype(np.float64)
    exact = np.array([((B - row) ** 2).sum(axis=1) for row in B])
    allowance = bound.slack * (sq[:, None] + sq[None])
    assert np.all(lower - allowance <= exact)


def test_more_neighbours_than_a_tile_and_empty_queries():
    rng = np.random.default_rng(4)
    B = low_rank_data(2500, 32, 6, rng, np.float32)
    search = BoundedSearch(B, LowRankBound.fit(B, 6, np.random.RandomState(0)))
    sq, idx = search.search(B[:0], 4)
    assert sq.shape == (0, 4) and idx.shape == (0, 4)
    sq, idx = search.search(B[:5], 2500)  # every row, ascending
    assert np.all(np.diff(sq.astype(np.float64), axis=1) >= 0)
    assert sorted(idx[0]) == list(range(2500))


# -- ApproxKNN's faiss.Flat search -------------------------------------------------------------

@pytest.fixture(scope="module")
def images():
    """Image-like data large enough for the accelerator: 9,000 rows of 300 features, and
    enough queries (1,200) for it to build its bound."""
    rng = np.random.default_rng(5)
    X = low_rank_data(10200, 300, 40, rng, np.float32)
    y = rng.integers(0, 4, X.shape[0])
    return X[:9000], y[:9000], X[9000:]


@pytest.mark.parametrize("metric", ["L2", "COSINE"])
def test_flat_search_equals_faiss(images, metric):
    X, y, queries = images
    accelerated = ApproxKNN(k=5, index_metric=metric, random_state=0).fit(X, y)
    plain = ApproxKNN(k=5, index_metric=metric, random_state=0).fit(X, y)
    plain._flat_search_.enabled = False
    distances, indices = accelerated.kneighbors(queries)
    assert accelerated._flat_search_.enabled  # it did the searching
    expected_distances, expected_indices = plain.kneighbors(queries)
    np.testing.assert_array_equal(indices, expected_indices)
    np.testing.assert_allclose(distances, expected_distances, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(accelerated.predict(queries), plain.predict(queries))


def test_flat_search_waits_for_enough_queries(images):
    X, y, queries = images
    knn = ApproxKNN(k=5, random_state=0).fit(X, y)
    knn.kneighbors(queries[:100])
    assert knn._flat_search_._search is None  # faiss answered: too few queries to pay
    knn.kneighbors(queries)
    assert knn._flat_search_._search is not None


def test_flat_search_steps_aside_on_structureless_data():
    rng = np.random.default_rng(6)
    X = rng.standard_normal((9000, 300)).astype(np.float32)
    y = rng.integers(0, 2, 9000)
    knn = ApproxKNN(k=3).fit(X, y)
    plain = ApproxKNN(k=3).fit(X, y)
    plain._flat_search_.enabled = False
    queries = X[:1000] + 0.1
    np.testing.assert_array_equal(knn.kneighbors(queries)[1], plain.kneighbors(queries)[1])
    assert not knn._flat_search_.enabled


def test_flat_search_only_where_it_pays(images):
    X, y, _ = images
    assert ApproxKNN(index_type="faiss.IVFFlat").fit(X, y)._flat_search_ is None
    assert ApproxKNN(index_metric="INNER_PRODUCT").fit(X, y)._flat_search_ is None
    assert ApproxKNN().fit(X[:5000], y[:5000])._flat_search_ is None  # few rows
    assert ApproxKNN().fit(X[:, :100], y)._flat_search_ is None  # low dimension


def test_pickled_model_rebuilds_the_bound(images):
    X, y, queries = images
    knn = ApproxKNN(k=4, random_state=0).fit(X, y)
    expected = knn.kneighbors(queries)[1]
    restored = pickle.loads(pickle.dumps(knn))
    assert restored._flat_search_._search is None
    np.testing.assert_array_equal(restored.kneighbors(queries)[1], expected)
