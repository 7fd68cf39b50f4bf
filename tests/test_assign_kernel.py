"""The chunked GEMM nearest-center kernel."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import pairwise_distances_argmin_min
from threadpoolctl import threadpool_limits

from skmk._kernels import _chunk_rows, effective_n_threads, nearest_centers


def _reference(X, C):
    sq = ((X[:, None, :].astype(np.float64) - C[None, :, :]) ** 2).sum(axis=2)
    return sq.argmin(axis=1), sq.min(axis=1)


@pytest.mark.parametrize("n_samples", [0, 1, 255, 256, 257, 1000])
@pytest.mark.parametrize("n_centers", [1, 7, 300])
def test_matches_brute_force(float_dtype, n_samples, n_centers, rng):
    X = rng.standard_normal((n_samples, 13)).astype(float_dtype)
    C = rng.standard_normal((n_centers, 13)).astype(float_dtype)
    labels, sq = nearest_centers(X, C)
    assert labels.dtype == np.int32 and sq.dtype == float_dtype
    assert labels.shape == sq.shape == (n_samples,)
    _, ref_sq = _reference(X, C)
    rtol = 1e-4 if float_dtype == np.float32 else 1e-10
    np.testing.assert_allclose(sq, ref_sq, rtol=rtol, atol=rtol)
    # Labels may differ only where two centers are equally near within rounding.
    chosen = ((X.astype(np.float64) - C[labels]) ** 2).sum(axis=1) if n_samples else ref_sq
    np.testing.assert_allclose(chosen, ref_sq, rtol=rtol, atol=rtol)


def test_agrees_with_scikit_learn(blobs):
    X, _, centers = blobs
    labels, sq = nearest_centers(X, centers)
    ref_labels, ref_dist = pairwise_distances_argmin_min(X, centers)
    np.testing.assert_array_equal(labels, ref_labels)
    np.testing.assert_allclose(np.sqrt(sq), ref_dist, rtol=1e-4)


def test_distance_of_a_row_on_a_center_is_exactly_non_negative(float_dtype, rng):
    C = (rng.standard_normal((20, 50)) * 1e3).astype(float_dtype)
    labels, sq = nearest_centers(C.copy(), C)
    np.testing.assert_array_equal(labels, np.arange(20))
    assert (sq >= 0).all()


def test_ties_go_to_the_lowest_index(float_dtype):
    C = np.array([[1.0, 0.0], [-1.0, 0.0], [1.0, 0.0]], dtype=float_dtype)
    X = np.array([[0.0, 0.0], [0.0, 5.0], [1.0, 0.0]], dtype=float_dtype)
    labels, _ = nearest_centers(X, C)
    np.testing.assert_array_equal(labels, [0, 0, 0])


@pytest.mark.parametrize("n_centers", [1, 2, 15, 16, 17, 31, 32, 33, 64, 65, 200])
def test_nearest_breaks_ties_to_the_lowest_index_across_the_lanes(float_dtype, n_centers, rng):
    """Small integer coordinates make many distances tie exactly; the nearest is the lowest
    index among them wherever the ties fall among the vector lanes of the argmin."""
    X = rng.integers(-3, 4, (400, 5)).astype(float_dtype)
    C = rng.integers(-3, 4, (n_centers, 5)).astype(float_dtype)
    sq = ((X[:, None, :].astype(np.float64) - C[None]) ** 2).sum(axis=2)
    labels, sq_distances = nearest_centers(X, C)
    np.testing.assert_array_equal(labels, sq.argmin(axis=1))
    np.testing.assert_array_equal(sq_distances, sq.min(axis=1))


@pytest.mark.parametrize("n_threads", [1, 2, None])
def test_same_answer_for_any_thread_count_and_chunk_size(n_threads, rng):
    X = rng.standard_normal((2000, 32)).astype(np.float32)
    C = rng.standard_normal((64, 32)).astype(np.float32)
    expected = nearest_centers(X, C, n_threads=1, chunk_size=2000)
    for chunk_size in (1, 17, 256):
        labels, sq = nearest_centers(X, C, n_threads=n_threads, chunk_size=chunk_size)
        np.testing.assert_array_equal(labels, expected[0])
        np.testing.assert_allclose(sq, expected[1], rtol=1e-5)


@pytest.mark.parametrize("n_rows, n_centers, n_threads", [
    (5000, 110, 2), (5000, 50, 2), (60000, 10, 2), (1001, 100, 4), (5000, 110, 3)])
def test_chunks_split_evenly_over_the_threads(n_rows, n_centers, n_threads):
    # Chunks go to threads statically: a count that is a multiple of the threads leaves no
    # thread with one chunk more than the others.
    chunk = _chunk_rows(n_centers, None, n_rows, n_threads)
    assert chunk <= _chunk_rows(n_centers, None)
    assert -(-n_rows // chunk) % n_threads == 0
    assert _chunk_rows(n_centers, 300, n_rows, n_threads) == 300  # the caller's size is kept


def test_non_contiguous_input_is_handled(rng):
    X = rng.standard_normal((100, 10))[:, ::2]
    C = np.asfortranarray(rng.standard_normal((5, 5)))
    labels, _ = nearest_centers(X, C)
    np.testing.assert_array_equal(labels, _reference(X, C)[0])


def test_bad_inputs_name_the_problem(rng):
    X = rng.standard_normal((10, 4))
    with pytest.raises(TypeError, match="dtype"):
        nearest_centers(X, X.astype(np.float32))
    with pytest.raises(TypeError, match="dtype"):
        nearest_centers(X.astype(int), X.astype(int))
    with pytest.raises(ValueError, match="same number of columns"):
        nearest_centers(X, X[:, :3].copy())
    with pytest.raises(ValueError, match="at least one row"):
        nearest_centers(X, X[:0])


def test_thread_count_follows_the_usual_limits():
    assert effective_n_threads(1) == 1
    assert effective_n_threads(-1) == effective_n_threads()
    with threadpool_limits(limits=1, user_api="openmp"):
        assert effective_n_threads() == 1


def test_two_nearest_centers_dense_and_sparse(float_dtype, rng):
    import scipy.sparse as sp

    from skmk._kernels import two_nearest_centers

    X = rng.standard_normal((700, 9)).astype(float_dtype)
    X[X < 0.3] = 0
    C = rng.standard_normal((12, 9)).astype(float_dtype)
    sq = ((X[:, None, :].astype(np.float64) - C[None]) ** 2).sum(axis=2)
    order = np.argsort(sq, axis=1, kind="stable")
    rtol = 1e-4 if float_dtype == np.float32 else 1e-10
    for data in (X, sp.csr_matrix(X)):
        first, second, d1, d2 = two_nearest_centers(data, C)
        np.testing.assert_array_equal(first, order[:, 0])
        np.testing.assert_array_equal(second, order[:, 1])
        np.testing.assert_allclose(d1, sq[np.arange(700), order[:, 0]], rtol=rtol, atol=rtol)
        np.testing.assert_allclose(d2, sq[np.arange(700), order[:, 1]], rtol=rtol, atol=rtol)


@pytest.mark.parametrize("n_samples", [1, 300, 3000])
def test_nearest_and_two_nearest_in_one_pass(float_dtype, n_samples, rng):
    """One GEMM pass gives what the two separate kernels give: the nearest of the first set,
    the two nearest of the second, and the rows' squared norms."""
    from skmk._kernels import nearest_and_two_nearest, two_nearest_centers

    X = rng.standard_normal((n_samples, 20)).astype(float_dtype)
    extra = rng.standard_normal((37, 20)).astype(float_dtype)
    tentative = rng.standard_normal((5, 20)).astype(float_dtype)
    labels, sq, first, second, d1, d2, x_sq = nearest_and_two_nearest(X, extra, tentative)
    expected_labels, expected_sq = _reference(X, extra)
    np.testing.assert_array_equal(labels, expected_labels)
    rtol = 1e-4 if float_dtype == np.float32 else 1e-10
    np.testing.assert_allclose(sq, expected_sq, rtol=rtol, atol=rtol)
    for got, expected in zip((first, second, d1, d2), two_nearest_centers(X, tentative)):
        np.testing.assert_allclose(got, expected, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(x_sq, (X.astype(np.float64) ** 2).sum(axis=1), rtol=rtol)
    assert labels.dtype == first.dtype == np.int32 and sq.dtype == d1.dtype == float_dtype


@pytest.mark.parametrize("n_centers", [2, 3, 17, 40, 100])
def test_two_nearest_centers_break_ties_to_the_lower_index(float_dtype, n_centers, rng):
    """Duplicate centers tie exactly: the lower index comes first, the duplicate second,
    wherever the duplicates fall among the kernel's lanes."""
    from skmk._kernels import two_nearest_centers

    X = rng.integers(-3, 4, (300, 5)).astype(float_dtype)
    C = rng.integers(-3, 4, (n_centers, 5)).astype(float_dtype)
    C[-1] = C[0]  # an exact duplicate, far apart in index
    sq = ((X[:, None, :].astype(np.float64) - C[None]) ** 2).sum(axis=2)
    order = np.argsort(sq, axis=1, kind="stable")
    first, second, d1, d2 = two_nearest_centers(X, C)
    np.testing.assert_array_equal(first, order[:, 0])
    np.testing.assert_array_equal(second, order[:, 1])
    rows = np.arange(X.shape[0])
    np.testing.assert_allclose(d1, sq[rows, order[:, 0]], rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(d2, sq[rows, order[:, 1]], rtol=1e-5, atol=1e-4)


def test_weighted_sums_match_numpy_for_any_thread_count(rng):
    import scipy.sparse as sp

    from skmk._kernels import accumulate_weighted_sums

    X = rng.standard_normal((500, 6))
    X[X < 0] = 0
    labels = rng.integers(0, 7, 500).astype(np.int32)
    weights = rng.random(500)
    expected = np.zeros((7, 6))
    np.add.at(expected, labels, weights[:, None] * X)
    for data in (X, sp.csr_matrix(X)):
        for n_threads in (1, 2, 3):
            sums, totals = accumulate_weighted_sums(data, weights, labels, 7,
                                                    n_threads=n_threads)
            np.testing.assert_allclose(sums, expected, rtol=1e-12)
            np.testing.assert_allclose(totals, np.bincount(labels, weights, 7), rtol=1e-12)


def test_absorb_into_means_matches_numpy_for_any_thread_count(float_dtype, rng):
    """Rows folded into their cells' and centers' running means in one kernel: the same means
    numpy's weighted averages give; a cell or center that only got zero-weight rows keeps its
    mean."""
    from skmk._kernels import absorb_into_means

    n, d, n_centers = 400, 7, 5
    X = rng.standard_normal((n, d)).astype(float_dtype)
    weight = rng.random(n).astype(float_dtype)
    center_of_row = rng.integers(0, n_centers - 1, n)  # the last center gets no row
    sub_of_row = rng.integers(0, 3, n)
    weight[(center_of_row == 0) & (sub_of_row == 2)] = 0  # a cell with zero weight
    keys, cell_of_row = np.unique(center_of_row * 3 + sub_of_row, return_inverse=True)
    cell_center = keys // 3
    starts = np.flatnonzero(np.r_[True, cell_center[1:] != cell_center[:-1]])
    hit = cell_center[starts]
    cell_weights = np.bincount(cell_of_row, weights=weight.astype(np.float64))
    cell_old = rng.random(keys.size) * (cell_weights > 0)  # the zero-weight cell is new
    cell_means0 = rng.standard_normal((keys.size + 3, d)).astype(float_dtype)
    slots = rng.permutation(keys.size + 3)[: keys.size]
    center_old = rng.random(hit.size)
    centers0 = rng.standard_normal((n_centers, d)).astype(float_dtype)
    center_total = center_old + np.add.reduceat(cell_weights, starts)

    expected_cells = cell_means0.copy()
    expected_centers = centers0.copy()
    for c in range(keys.size):
        rows = cell_of_row == c
        total = cell_old[c] + cell_weights[c]
        if total > 0:
            expected_cells[slots[c]] = (cell_old[c] * cell_means0[slots[c]] + (
                weight[rows, None].astype(np.float64) * X[rows]).sum(axis=0)) / total
    for h, center in enumerate(hit):
        rows = center_of_row == center
        expected_centers[center] = (center_old[h] * centers0[center] + (
            weight[rows, None].astype(np.float64) * X[rows]).sum(axis=0)) / center_total[h]
    rtol = 1e-5 if float_dtype == np.float32 else 1e-12
    for n_threads in (1, 2, 3):
        cell_means, centers = cell_means0.copy(), centers0.copy()
        absorb_into_means(X, weight, cell_of_row, slots, cell_old, cell_old + cell_weights,
                          cell_means, hit, np.r_[starts, keys.size], center_old, center_total,
                          centers, n_threads=n_threads)
        np.testing.assert_allclose(cell_means, expected_cells, rtol=rtol, atol=rtol)
        np.testing.assert_allclose(centers, expected_centers, rtol=rtol, atol=rtol)


def test_kmeans_plusplus_reads_the_gram_matrix_when_given(float_dtype, rng):
    """The seeding from a precomputed Gram matrix picks the same rows as the one that computes
    its dot products round by round (same random draws)."""
    from skmk._kernels import gram_matrix, kmeans_plusplus

    X = rng.standard_normal((300, 12)).astype(float_dtype)
    weight = rng.random(300).astype(float_dtype)
    plain = kmeans_plusplus(X, weight, 9, np.random.RandomState(3))
    with_gram = kmeans_plusplus(X, weight, 9, np.random.RandomState(3), gram=gram_matrix(X))
    np.testing.assert_array_equal(with_gram[1], plain[1])
    np.testing.assert_array_equal(with_gram[0], X[plain[1]])
