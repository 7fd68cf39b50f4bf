"""StreamingKMeans: SageMaker's algorithm rules and scikit-learn's manners."""

from __future__ import annotations

import pickle
import warnings

import joblib
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import parametrize_with_checks

from skmk import StreamingKMeans
from skmk._streaming import Batch
from skmk.cluster._lloyd import weighted_lloyd
from skmk.cluster._state import KMeansState
from skmk.cluster._streaming_kmeans import resolve_center_factor


@parametrize_with_checks([StreamingKMeans(random_state=0)])
def test_scikit_learn_estimator_checks(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)


def _means(X, y):
    """The empirical mean of each true cluster: what a good k-means recovers."""
    return np.array([X[y == label].mean(axis=0) for label in np.unique(y)])


def _match(centers, true_centers):
    """Distance from each true center to the nearest found center."""
    d = ((true_centers[:, None, :] - centers[None, :, :]) ** 2).sum(axis=2)
    return np.sqrt(d.min(axis=1))


# -- the algorithm --------------------------------------------------------------------------------

def test_recovers_separated_blobs_in_one_pass(blobs):
    X, y, _ = blobs
    true_centers = _means(X, y)
    km = StreamingKMeans(k=5, mini_batch_size=100, random_state=0).fit(X)
    assert km.cluster_centers_.shape == (5, 8)
    assert _match(km.cluster_centers_, true_centers).max() < 0.05
    assert km.n_extra_centers_ == 20 and km.center_factor_ == 4  # "auto": 4 up to k=40
    assert km.labels_.dtype == np.int32 and km.labels_.shape == (600,)
    np.testing.assert_array_equal(km.labels_, km.predict(X))
    assert km.inertia_ == pytest.approx(-km.score(X), rel=1e-5)


@pytest.mark.parametrize(("k", "expected"), [(2, 4), (80, 4), (81, 5), (100, 5), (140, 7),
                                              (181, 10), (500, 10)])
def test_auto_center_factor_grows_with_k_from_4_to_sagemakers_10(k, expected):
    assert resolve_center_factor("auto", k) == expected
    assert resolve_center_factor(7, k) == 7


def test_refinalized_model_reports_the_streamed_center_factor(blobs):
    X, _, _ = blobs
    km = StreamingKMeans(k=5, mini_batch_size=100, random_state=0).fit(X)
    wider = km.refinalize(10)
    assert wider.center_factor_ == km.center_factor_ == 4
    assert wider.n_extra_centers_ == km.n_extra_centers_


def test_quality_close_to_lloyd_on_overlapping_data():
    X, _ = make_blobs(4000, 10, centers=30, cluster_std=3.0, random_state=1)
    km = StreamingKMeans(k=20, mini_batch_size=500, random_state=0).fit(X)
    reference = KMeans(20, n_init=3, random_state=0).fit(X)
    assert km.inertia_ <= 1.03 * reference.inertia_


def test_float32_stays_float32(blobs, float_dtype):
    X, _, _ = blobs
    km = StreamingKMeans(k=5, random_state=0).fit(X)
    assert km.cluster_centers_.dtype == float_dtype
    assert km.extra_centers_.dtype == float_dtype
    assert km.transform(X).dtype == float_dtype
    assert km.fit_transform(X).shape == (600, 5)


def test_sparse_and_dense_give_the_same_model(sparse_blobs):
    X, X_csr, _ = sparse_blobs
    dense = StreamingKMeans(k=5, mini_batch_size=128, random_state=0).fit(X)
    sparse = StreamingKMeans(k=5, mini_batch_size=128, random_state=0).fit(X_csr)
    np.testing.assert_allclose(sparse.cluster_centers_, dense.cluster_centers_, rtol=1e-4,
                               atol=1e-4)
    np.testing.assert_array_equal(sparse.predict(X_csr), dense.predict(X))
    np.testing.assert_allclose(sparse.transform(X_csr), dense.transform(X), rtol=1e-4,
                               atol=1e-4)
    assert sparse.score(X_csr) == pytest.approx(dense.score(X), rel=1e-4)


def test_same_random_state_same_model_and_different_seeds_differ(blobs):
    X, _, _ = blobs
    a = StreamingKMeans(k=7, init_method="kmeans++", random_state=3).fit(X)
    b = StreamingKMeans(k=7, init_method="kmeans++", random_state=3).fit(X)
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)
    c = StreamingKMeans(k=7, init_method="kmeans++", random_state=4).fit(X)
    assert not np.array_equal(a.extra_centers_, c.extra_centers_)


def _state(k=2, factor=1, half_life=0, n_features=2, seed=0):
    return KMeansState(k, k * factor, n_features, np.float64, "random", half_life,
                       np.random.RandomState(seed))


def test_running_mean_update():
    state = _state(k=1, factor=1)
    state.update(Batch(np.array([[0.0, 0.0]])))  # seeds the one center and absorbs the row
    state.update(Batch(np.array([[4.0, 0.0], [2.0, 0.0]])))
    # c <- (1 - p) c + p mean_batch, p = 2 / 3
    np.testing.assert_allclose(state.centers, [[2.0, 0.0]])
    np.testing.assert_allclose(state.weights, [3.0])
    assert state.n_seen == 3


def test_half_life_decay_halves_weight_after_h_rows():
    state = _state(k=2, factor=1, half_life=4)
    state.update(Batch(np.array([[0.0, 0.0], [10.0, 10.0]])))
    before = state.weights.copy()
    far_center = int(np.argmax(state.centers[:, 0]))
    # 4 more rows, all near the origin: the far center absorbs nothing and decays by 0.5
    state.update(Batch(np.zeros((4, 2)) + 0.1))
    assert state.weights[far_center] == pytest.approx(before[far_center] * 0.5)
    near = 1 - far_center
    assert state.weights[near] == pytest.approx(before[near] * 0.5 + 4)


def test_starved_center_is_reseeded_to_a_poorly_covered_row():
    state = _state(k=3, factor=1)
    state.update(Batch(np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0]])))
    state.centers[2] = [1e6, 1e6]  # a center no row will ever pick
    state.weights[2] = 0.0
    rows = np.array([[0.0, 0.0], [1.0, 0.0], [50.0, 50.0]])
    state.update(Batch(rows))
    assert state.n_reseeded == 1
    np.testing.assert_allclose(state.centers[2], [50.0, 50.0])  # the only uncovered row
    assert state.weights[2] == 0.0


def test_first_rows_fewer_than_extra_centers_keep_drawing():
    state = _state(k=2, factor=5)  # 10 extra centers
    state.update(Batch(np.arange(8.0).reshape(4, 2)))
    assert not state.initialized
    points, weights = state.coreset()
    assert points.shape == (4, 2) and weights.sum() == 4
    state.update(Batch(np.arange(16.0).reshape(8, 2) + 100))
    assert state.initialized and state.centers.shape == (10, 2)
    assert state.coreset()[1].sum() == pytest.approx(12)


def test_weighted_finalize_uses_weights():
    points = np.array([[0.0], [4.0]])
    result = weighted_lloyd(points, np.array([3.0, 1.0]), 1, init_method="kmeans++", max_iter=10,
                            tol=0.0, n_trials=1, random_state=np.random.RandomState(0))
    np.testing.assert_allclose(result.centers, [[1.0]])
    assert result.loss == pytest.approx(3 * 1 + 1 * 9)


def test_trials_keep_the_lowest_loss():
    X, _ = make_blobs(300, 4, centers=12, random_state=0)
    result = weighted_lloyd(X, np.ones(300), 12, init_method="random", max_iter=50, tol=1e-4,
                            n_trials=6, random_state=np.random.RandomState(0))
    assert len(result.trial_losses) == 6
    assert result.loss == pytest.approx(min(result.trial_losses))


@pytest.mark.parametrize("local_init_method", ["kmeans++", "random"])
def test_num_trials_and_local_init(blobs, local_init_method):
    X, y, _ = blobs
    true_centers = _means(X, y)
    km = StreamingKMeans(k=5, num_trials=4, local_init_method=local_init_method,
                         random_state=0).fit(X)
    assert km.num_trials_ == 4
    assert _match(km.cluster_centers_, true_centers).max() < 0.05
    assert StreamingKMeans(k=5, random_state=0).fit(X).num_trials_ == 1  # auto, warm start


def test_epochs_reread_the_data(blobs):
    X, y, _ = blobs
    true_centers = _means(X, y)
    km = StreamingKMeans(k=5, epochs=3, mini_batch_size=200, random_state=0).fit(X)
    assert km.streaming_state_.n_seen == 3 * X.shape[0]
    assert _match(km.cluster_centers_, true_centers).max() < 0.05


def test_merge_of_two_halves_matches_one_stream(blobs):
    X, y, _ = blobs
    true_centers = _means(X, y)
    km = StreamingKMeans(k=5, mini_batch_size=100, random_state=0)
    km._validate_params()
    left, right = km._new_state(Batch(X[:1])), km._new_state(Batch(X[:1]), random_state=1)
    for start in range(0, 300, 100):
        left.update(Batch(X[start:start + 100]))
        right.update(Batch(X[300 + start:400 + start]))
    merged = left.merge(right)
    assert merged.n_seen == 600 and merged.n_extra == 2 * 5 * 4  # two states of k × "auto"
    km._finalize_state(merged, n_features_in=8)
    assert _match(km.cluster_centers_, true_centers).max() < 0.05
    assert km.n_features_in_ == 8
    assert not hasattr(km, "labels_")


# -- re-finalizing the coreset --------------------------------------------------------------------

def test_refinalize_for_another_k_reads_no_data(blobs):
    X, y, _ = blobs
    true_centers = _means(X, y)
    km = StreamingKMeans(k=8, random_state=0).fit(X)
    five = km.refinalize(5)
    assert five.k == 5 and five.cluster_centers_.shape == (5, 8)
    assert _match(five.cluster_centers_, true_centers).max() < 0.1
    assert five.num_trials_ == 10  # auto without tentative centers for k=5
    assert km.k == 8 and km.cluster_centers_.shape == (8, 8)  # the original is untouched
    assert not hasattr(five, "labels_")
    with pytest.raises(ValueError, match="refinalize can change only"):
        km.refinalize(3, center_factor=2)


def test_elbow_curve_from_a_single_pass(blobs):
    X, _, _ = blobs
    km = StreamingKMeans(k=10, random_state=0).fit(X)
    ks = [2, 3, 4, 5, 6, 7, 8]
    ssd = km.elbow_curve(ks)
    assert ssd.shape == (7,)
    assert np.all(np.diff(ssd) <= 1e-6 * ssd[0])
    drops = -np.diff(ssd)
    assert ks[int(np.argmax(drops[:-1] / np.maximum(drops[1:], 1e-12))) + 1] == 5
    # the estimate is close to the SSD of the data under the model for that k
    five = km.refinalize(5)
    assert ssd[3] == pytest.approx(-five.score(X), rel=0.05)


# -- the scikit-learn face ------------------------------------------------------------------------

def test_partial_fit_is_usable_after_every_call(blobs):
    X, y, _ = blobs
    true_centers = _means(X, y)
    km = StreamingKMeans(k=5, random_state=0)
    for start in range(0, 600, 150):
        km.partial_fit(X[start:start + 150])
        assert km.predict(X[:3]).shape == (3,)
    assert km.streaming_state_.n_seen == 600
    assert _match(km.cluster_centers_, true_centers).max() < 0.1
    with pytest.raises(ValueError, match="features"):
        km.partial_fit(X[:10, :4])


def test_partial_fit_first_call_needs_k_rows():
    with pytest.raises(ValueError, match="n_samples=3 should be >= k=5"):
        StreamingKMeans(k=5).partial_fit(np.zeros((3, 2)))


def test_sample_weight_zero_ignores_rows_and_integer_weights_repeat_rows(blobs):
    X, _, _ = blobs
    weights = np.zeros(600)
    weights[:300] = 1
    with_zero = StreamingKMeans(k=5, random_state=0).fit(X, sample_weight=weights)
    extra_centers = with_zero.extra_centers_
    assert np.isfinite(extra_centers).all()
    assert with_zero.streaming_state_.coreset()[1].sum() == pytest.approx(300)
    # weights count: a heavy point pulls the one-cluster center to itself
    points = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 1.0]])
    km = StreamingKMeans(k=2, random_state=0).fit(points, sample_weight=[1, 100, 1])
    assert [10.0, 0.0] in km.cluster_centers_.tolist()


def test_evaluate_reports_sagemaker_metrics(blobs):
    X, _, _ = blobs
    km = StreamingKMeans(k=5, eval_metrics=["msd", "ssd"], random_state=0).fit(X)
    metrics = km.evaluate(X)
    sq = km.transform(X).min(axis=1).astype(np.float64) ** 2
    assert metrics["ssd"] == pytest.approx(sq.sum(), rel=1e-4)
    assert metrics["msd"] == pytest.approx(sq.mean(), rel=1e-4)
    assert set(StreamingKMeans(k=5, random_state=0).fit(X).evaluate(X)) == {"msd"}
    weighted = km.evaluate(X, sample_weight=np.full(600, 2.0))
    assert weighted["ssd"] == pytest.approx(2 * metrics["ssd"], rel=1e-6)
    assert weighted["msd"] == pytest.approx(metrics["msd"], rel=1e-6)


def test_pipeline_grid_search_clone_pickle_joblib(blobs, tmp_path):
    X, _, _ = blobs
    pipe = make_pipeline(StandardScaler(), StreamingKMeans(random_state=0))
    search = GridSearchCV(pipe, {"streamingkmeans__k": [3, 5, 7]}, cv=3, n_jobs=2).fit(X)
    assert search.best_params_["streamingkmeans__k"] == 7  # -SSD keeps improving with k
    km = StreamingKMeans(k=5, random_state=0).fit(X)
    assert clone(km).get_params() == km.get_params()
    restored = pickle.loads(pickle.dumps(km))
    np.testing.assert_array_equal(restored.predict(X), km.predict(X))
    joblib.dump(km, tmp_path / "km.joblib")
    np.testing.assert_array_equal(joblib.load(tmp_path / "km.joblib").predict(X), km.predict(X))
    np.testing.assert_array_equal(restored.partial_fit(X[:50]).predict(X[:5]).shape, (5,))


def test_set_output_and_feature_names(blobs):
    pd = pytest.importorskip("pandas")
    X, _, _ = blobs
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(8)])
    km = StreamingKMeans(k=3, random_state=0).set_output(transform="pandas").fit(frame)
    out = km.transform(frame)
    assert list(out.columns) == ["streamingkmeans0", "streamingkmeans1", "streamingkmeans2"]
    assert list(km.feature_names_in_) == list(frame.columns)
    np.testing.assert_array_equal(km.get_feature_names_out(), out.columns)


def test_wire_form_uses_sagemaker_names():
    wire = StreamingKMeans(k=10, num_trials=3, center_factor=4, max_iterations=50,
                           eval_metrics=["msd", "ssd"]).to_hyperparameters()
    assert wire["k"] == "10"
    assert wire["local_lloyd_num_trials"] == "3"
    assert wire["extra_center_factor"] == "4"
    assert wire["local_lloyd_max_iter"] == "50"
    assert wire["eval_metrics"] == '["msd", "ssd"]'
    default = StreamingKMeans()
    restored = StreamingKMeans.from_hyperparameters(default.to_hyperparameters())
    assert restored.get_params() == default.get_params()


# -- bad input ------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"k": 0}, "k"), ({"k": "a"}, "k"), ({"k": 2.7}, "k"),
        ({"init_method": 0}, "init_method"),
        ({"tol": 1.1}, "tol"), ({"half_life_time_size": -1}, "half_life_time_size"),
        ({"center_factor": 0}, "center_factor"), ({"eval_metrics": 0}, "eval_metrics"),
        ({"eval_metrics": "msd"}, "eval_metrics"), ({"mini_batch_size": 0}, "mini_batch_size"),
        ({"num_trials": 0}, "num_trials"), ({"epochs": 0}, "epochs"),
        ({"local_init_method": "x"}, "local_init_method"),
    ],
)
def test_invalid_hyperparameters_raise_at_fit(params, name):
    km = StreamingKMeans(**params)  # never raises
    with pytest.raises(InvalidParameterError, match=f"'{name}' parameter of StreamingKMeans"):
        km.fit(np.random.default_rng(0).random((20, 2)))


@pytest.mark.parametrize(
    ("X", "match"),
    [
        (np.array([[1.0, np.nan]] * 10), "NaN"),
        (np.array([[1.0, np.inf]] * 10), "infinity"),
        (np.arange(10.0), "Expected 2D array"),
        (np.zeros((10, 2, 2)), "dim 3"),
        (np.zeros((3, 2)), "n_samples=3 should be >= k=5"),
    ],
)
def test_bad_data_raises_and_leaves_the_fitted_model_intact(blobs, X, match):
    X_good, _, _ = blobs
    km = StreamingKMeans(k=5, random_state=0).fit(X_good)
    before = {name: value for name, value in vars(km).items() if name.endswith("_")}
    predictions = km.predict(X_good)
    with pytest.raises(ValueError, match=match):
        km.fit(X)
    after = {name: value for name, value in vars(km).items() if name.endswith("_")}
    assert after.keys() == before.keys()
    assert all(after[name] is before[name] for name in before)
    np.testing.assert_array_equal(km.predict(X_good), predictions)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize(("n_features", "center_factor"), [(8, 3), (130, 70)])
def test_non_finite_value_in_a_late_batch_fails_the_fit(bad, n_features, center_factor):
    """Dense rows are checked batch by batch as the stream reads them (through the norms the
    assignment computes), on both assignment paths (GEMM; bounded, 210 extra centers in 130
    dimensions): a bad value in the ninth batch still fails the fit with scikit-learn's
    message, and the model fitted before stays."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((1000, n_features))
    km = StreamingKMeans(k=3, center_factor=center_factor, mini_batch_size=100,
                         random_state=0).fit(X)
    centers = km.cluster_centers_
    X_bad = X.copy()
    X_bad[850, 5] = bad
    with pytest.raises(ValueError, match="NaN" if np.isnan(bad) else "infinity"):
        km.fit(X_bad)
    assert km.cluster_centers_ is centers
    with pytest.raises(ValueError, match="NaN" if np.isnan(bad) else "infinity"):
        km.partial_fit(X_bad)
    assert km.cluster_centers_ is centers


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_predict_and_score_reject_non_finite_rows(blobs, bad):
    """predict and score check NaN/inf through the distances they compute: a bad value
    anywhere still raises scikit-learn's error."""
    X, _, _ = blobs
    km = StreamingKMeans(k=5, random_state=0).fit(X)
    X_bad = X.astype(np.float32)
    X_bad[417, 3] = bad
    for method in (km.predict, km.score):
        with pytest.raises(ValueError, match="NaN" if np.isnan(bad) else "infinity"):
            method(X_bad)


def test_failed_partial_fit_leaves_the_state_intact(blobs):
    X, _, _ = blobs
    km = StreamingKMeans(k=5, random_state=0).partial_fit(X)
    state = km.streaming_state_
    with pytest.raises(ValueError):
        km.partial_fit(np.full((10, 8), np.nan))
    assert km.streaming_state_ is state and state.n_seen == 600


def test_predict_checks_feature_count(blobs):
    X, _, _ = blobs
    km = StreamingKMeans(k=5, random_state=0).fit(X)
    with pytest.raises(ValueError, match="8 features"):
        km.predict(X[:, :3])
    with pytest.raises(ValueError, match="8 features"):
        km.predict(sp.csr_matrix(X[:, :3]))


def _low_rank_rows(dtype, n_rows=3000):
    """Rows in 160 dimensions with most variance in 20: the low-rank bound's kind of data."""
    rng = np.random.default_rng(0)
    basis = rng.standard_normal((20, 160))
    return (rng.standard_normal((n_rows, 20)) * np.linspace(4, 0.5, 20) @ basis
            + 0.1 * rng.standard_normal((n_rows, 160))).astype(dtype)


def test_bounded_assignment_gives_the_same_model(monkeypatch, float_dtype):
    """High-dimensional data with many extra centers takes the low-rank bounded search; its
    assignments are exact, so the model equals the one from the GEMM assignment."""
    import skmk.cluster._state as state_module

    X = _low_rank_rows(float_dtype)
    bounded = StreamingKMeans(k=40, center_factor=6, mini_batch_size=500, random_state=0).fit(X)
    assert bounded.streaming_state_._bound is not None
    monkeypatch.setattr(state_module, "BOUNDED_MIN_CENTERS", 10**9)
    plain = StreamingKMeans(k=40, center_factor=6, mini_batch_size=500, random_state=0).fit(X)
    assert plain.streaming_state_._bound is None
    np.testing.assert_array_equal(bounded.labels_, plain.labels_)
    np.testing.assert_allclose(bounded.cluster_centers_, plain.cluster_centers_, rtol=1e-5,
                               atol=1e-5)
    np.testing.assert_allclose(bounded.inertia_, plain.inertia_, rtol=1e-6)


@pytest.mark.parametrize("kept_batches", [6, 2, 0])
def test_kept_coordinates_label_the_streamed_rows_exactly(monkeypatch, float_dtype,
                                                           kept_batches):
    """Labelling the streamed rows reuses the low-rank coordinates kept while streaming (as
    many batches as the byte budget holds; the others are projected again) and gives the GEMM
    assignment's answer; the coordinates are released after."""
    import skmk._bounded_search as search_module
    from skmk._kernels import nearest_centers

    X = _low_rank_rows(float_dtype)
    state = KMeansState(40, 240, 160, float_dtype, "random", 0, np.random.RandomState(0))
    batch_bytes = 500 * (33 + 1) * X.itemsize  # 32 components, the residual, the norm
    state.keep_row_coordinates(max_bytes=int((kept_batches + 0.5) * batch_bytes))
    for start in range(0, 3000, 500):
        state.update(Batch(X[start:start + 500]))
    centers = X[::75].copy()
    projected = []
    project = search_module.low_rank_coordinates
    monkeypatch.setattr(search_module, "low_rank_coordinates",
                        lambda rows, *a, **kw: projected.append(len(rows)) or project(rows, *a,
                                                                                      **kw))
    labels, sq_distances = state.label_kept_rows(X, centers)
    expected_labels, expected_sq = nearest_centers(X, centers)
    np.testing.assert_array_equal(labels, expected_labels)
    np.testing.assert_allclose(sq_distances, expected_sq, rtol=1e-4,
                               atol=1e-5 * expected_sq.max())
    # Each of the 6 batches projects the centers; only rows without kept coordinates again.
    assert sum(projected) == 3000 - 500 * kept_batches + 6 * len(centers)
    assert state._kept_rows is None
    # Rows other than the streamed ones are labelled by the GEMM assignment.
    state.keep_row_coordinates()
    state.update(Batch(X[:500]))
    labels, _ = state.label_kept_rows(X[:400], centers)
    np.testing.assert_array_equal(labels, expected_labels[:400])


def test_cells_of_rows_group_the_rows_as_unique_and_a_stable_sort_do(rng):
    from skmk.cluster._state import _cells_of_rows

    keys = rng.integers(0, 50, 400) * 1000 + rng.integers(0, 3, 400)
    local_keys, cell_of_row, (order, row_bounds) = _cells_of_rows(keys)
    expected_keys, expected_cells = np.unique(keys, return_inverse=True)
    np.testing.assert_array_equal(local_keys, expected_keys)
    np.testing.assert_array_equal(cell_of_row, expected_cells)
    np.testing.assert_array_equal(order, np.argsort(expected_cells, kind="stable"))
    np.testing.assert_array_equal(row_bounds, np.searchsorted(expected_cells[order],
                                                              np.arange(local_keys.size + 1)))


def test_coreset_coordinates_are_kept_and_only_changed_cells_projected(monkeypatch,
                                                                       float_dtype):
    """The coreset cells' low-rank coordinates are those of their current means; a cell is
    projected again only after its mean changed, and a pickled state recomputes them."""
    import skmk._bounded_search as search_module

    X = _low_rank_rows(float_dtype)
    state = KMeansState(40, 240, 160, float_dtype, "random", 0, np.random.RandomState(0))
    for start in range(0, 2000, 500):  # each of the first four batches refreshes
        state.update(Batch(X[start:start + 500]))
    bound = state.bound_for(40)
    projected = []
    project = search_module.low_rank_coordinates
    monkeypatch.setattr(search_module, "low_rank_coordinates",
                        lambda rows, *a, **kw: projected.append(len(rows)) or project(rows, *a,
                                                                                      **kw))

    def check(coordinates):
        points, _ = state.coreset()
        low, centered_sq = project(points, *[getattr(bound, name) for name in
                                             ("components", "mean", "inflation")])
        np.testing.assert_allclose(coordinates[0], low, rtol=1e-4, atol=1e-3)
        np.testing.assert_allclose(coordinates[1], centered_sq, rtol=1e-4)

    check(state.coreset_coordinates(bound))
    assert projected == []  # the last refresh projected every cell already
    cells_before = state._cells.weights[: state._cells.n].copy()
    state.update(Batch(X[2000:2500]))  # the fifth does not
    projected.clear()
    check(state.coreset_coordinates(bound))
    after = state._cells.weights[: state._cells.n]
    changed = (after[: cells_before.size] != cells_before).sum() + after.size - cells_before.size
    assert 0 < sum(projected) == changed < after.size
    copy = pickle.loads(pickle.dumps(state))
    assert copy._cells._low is None
    assert copy.coreset_coordinates(copy.bound_for(40))[0].shape == (after.size, 33)


def test_a_state_pickled_before_the_kept_coordinates_streams_on():
    """A fitted state whose pickle predates the kept row coordinates and the cells' cached
    coordinates (neither attribute in it) loads and takes more data."""
    X = _low_rank_rows(np.float32)
    model = StreamingKMeans(k=40, center_factor=6, mini_batch_size=500, random_state=0).fit(X)
    state = model.streaming_state_
    del state._kept_rows
    for name in ("_coordinates_bound", "_low", "_centered_sq", "_stale"):
        del state._cells.__dict__[name]
    model.streaming_state_ = pickle.loads(pickle.dumps(state))
    model.partial_fit(X[:500])
    assert model.cluster_centers_.shape == (40, 160)


@pytest.mark.parametrize("epochs", [1, 2])
def test_labels_of_a_bounded_fit_are_the_nearest_centers(float_dtype, epochs):
    """labels_ and inertia_ of a fit whose last epoch kept its rows' coordinates are those of
    the final centers; the fitted model does not carry the coordinates."""
    X = _low_rank_rows(float_dtype)
    model = StreamingKMeans(k=40, center_factor=6, mini_batch_size=500, epochs=epochs,
                            random_state=0).fit(X)
    assert model.streaming_state_._bound is not None
    np.testing.assert_array_equal(model.labels_, model.predict(X))
    ssd = ((X.astype(np.float64) - model.cluster_centers_[model.labels_]) ** 2).sum()
    np.testing.assert_allclose(model.inertia_, ssd, rtol=1e-4)
    assert model.streaming_state_._kept_rows is None


def test_bounded_local_lloyd_gives_the_same_centers(float_dtype):
    """Local Lloyd's with the low-rank bound assigns exactly as with the GEMM kernel."""
    from skmk._bounded_search import LowRankBound

    rng = np.random.default_rng(1)
    basis = rng.standard_normal((10, 150))
    points = (rng.standard_normal((2000, 10)) @ basis
              + 0.05 * rng.standard_normal((2000, 150))).astype(float_dtype)
    weights = rng.uniform(0.5, 2.0, 2000)
    bound = LowRankBound.fit(points, 12, np.random.RandomState(0))
    results = [weighted_lloyd(points, weights, 30, init_method="kmeans++", max_iter=50,
                              tol=1e-6, n_trials=2, random_state=np.random.RandomState(0),
                              bound=b) for b in (bound, None)]
    np.testing.assert_allclose(results[0].centers, results[1].centers, rtol=1e-4, atol=1e-4)
    assert results[0].n_iter == results[1].n_iter
    np.testing.assert_allclose(results[0].loss, results[1].loss, rtol=1e-5)
