"""ApproxKNN: sampling, projections, faiss indexes, votes and scikit-learn's manners."""

from __future__ import annotations

import pickle

import joblib
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone, is_classifier, is_regressor
from sklearn.datasets import load_diabetes, load_digits, load_iris, make_classification
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import parametrize_with_checks

from skmk import ApproxKNN, ApproxKNNClassifier, ApproxKNNRegressor
from skmk._streaming import Batch
from skmk.neighbors._approx_knn import vote, vote_shares
from skmk.neighbors._projection import FJLTProjection, SignProjection
from skmk.neighbors._reservoir import ReservoirState


@parametrize_with_checks([
    ApproxKNN(), ApproxKNN(predictor_type="regressor"), ApproxKNNClassifier(),
    ApproxKNNRegressor(), ApproxKNN(index_type="faiss.IVFFlat"),
])
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return train_test_split((X / 16).astype(np.float32), y, test_size=0.3, random_state=0,
                            stratify=y)


# -- sampling ------------------------------------------------------------------------------------

def _stream(state, n, batch=37):
    X = np.arange(n, dtype=np.float64)[:, None]
    for start in range(0, n, batch):
        state.update(Batch(X[start:start + batch], np.arange(start, min(start + batch, n))))
    return state


def test_reservoir_keeps_everything_when_it_fits():
    state = _stream(ReservoirState(100, 1, np.float64, np.random.RandomState(0)), 80)
    np.testing.assert_array_equal(state.X[:, 0], np.arange(80))
    np.testing.assert_array_equal(state.y, np.arange(80))


def test_reservoir_is_uniform():
    counts = np.zeros(200)
    for seed in range(300):
        state = _stream(ReservoirState(20, 1, np.float64, np.random.RandomState(seed)), 200)
        assert state.X.shape == (20, 1)
        np.testing.assert_array_equal(state.X[:, 0], state.y)  # rows keep their labels
        counts[state.y] += 1
    # each row kept with probability 20/200: 30 times in 300 runs on average
    assert counts.min() > 10 and counts.max() < 55
    early, late = counts[:100].sum(), counts[100:].sum()
    assert abs(early - late) < 0.1 * (early + late)


def test_reservoir_merge_is_uniform_over_the_union():
    from_first = []
    for seed in range(300):
        rng = np.random.RandomState(seed)
        a = _stream(ReservoirState(10, 1, np.float64, rng), 300)
        b = ReservoirState(10, 1, np.float64, rng)
        X = np.arange(300, 400, dtype=np.float64)[:, None]
        b.update(Batch(X, np.arange(300, 400)))
        merged = a.merge(b)
        assert merged.n_seen == 400 and merged.X.shape == (10, 1)
        from_first.append((merged.y < 300).sum())
    # 3/4 of the union comes from the first stream
    assert np.mean(from_first) == pytest.approx(7.5, abs=0.4)


def test_sampling_never_writes_into_the_callers_data():
    X = np.arange(100, dtype=np.float64)[:, None]
    copy = X.copy()
    state = ReservoirState(10, 1, np.float64, np.random.RandomState(0))
    state.update(Batch(X, np.arange(100)))
    np.testing.assert_array_equal(X, copy)


def test_sample_size_smaller_than_data(digits):
    X_train, X_test, y_train, y_test = digits
    knn = ApproxKNN(k=3, sample_size=300, random_state=0).fit(X_train, y_train)
    assert knn.n_samples_fit_ == 300 and knn.n_samples_seen_ == X_train.shape[0]
    assert knn.score(X_test, y_test) > 0.85


# -- projections ---------------------------------------------------------------------------------

@pytest.mark.parametrize("projection", [SignProjection, FJLTProjection])
def test_projections_preserve_distances_within_the_jl_bound(projection):
    rng = np.random.RandomState(0)
    X = rng.standard_normal((60, 300))
    target = 200
    P = projection(300, target, np.float64, rng)
    Y = P.transform(X)
    assert Y.shape == (60, target)
    i, j = np.triu_indices(60, 1)
    ratio = ((Y[i] - Y[j]) ** 2).sum(1) / ((X[i] - X[j]) ** 2).sum(1)
    # JL: 1 ± eps with eps ~ sqrt(8 ln n / target) ≈ 0.6 here; typical deviations are far less
    assert np.all(np.abs(ratio - 1) < 0.6)
    assert abs(np.mean(ratio) - 1) < 0.05


def test_fjlt_pads_to_a_power_of_two_and_matches_its_definition():
    from scipy.linalg import hadamard

    rng = np.random.RandomState(0)
    P = FJLTProjection(5, 3, np.float64, rng)
    assert P.padded == 8
    X = rng.standard_normal((4, 5))
    padded = np.hstack([X * P.signs, np.zeros((4, 3))])
    expected = (padded @ hadamard(8).T)[:, P.selected] / np.sqrt(3)
    np.testing.assert_allclose(P.transform(X), expected, rtol=1e-12)


@pytest.mark.parametrize("reduction", ["sign", "fjlt"])
def test_reduced_model_applies_the_projection_to_queries(digits, reduction):
    X_train, X_test, y_train, y_test = digits
    knn = ApproxKNN(dimension_reduction_type=reduction, dimension_reduction_target=32,
                    random_state=0).fit(X_train, y_train)
    assert knn.projection_.kind == reduction and knn.index_dim_ == 32
    assert knn.score(X_test, y_test) > 0.9


# -- indexes and metrics -------------------------------------------------------------------------

@pytest.mark.parametrize("index_type", ["faiss.Flat", "faiss.IVFFlat", "faiss.IVFPQ"])
def test_each_index_type_classifies_digits(digits, index_type):
    X_train, X_test, y_train, y_test = digits
    knn = ApproxKNN(k=5, index_type=index_type, random_state=0).fit(X_train, y_train)
    assert knn.score(X_test, y_test) > 0.9
    if index_type != "faiss.Flat":
        assert knn.nlists_ == round(np.sqrt(X_train.shape[0]))
        assert 1 <= knn.nprobe_ <= knn.nlists_
    if index_type == "faiss.IVFPQ":
        assert knn.pq_m_ == 4 and knn.index_dim_ == 64  # 64 dims: 16 per sub-quantizer


def test_flat_l2_matches_scikit_learn_brute_force(digits):
    X_train, X_test, y_train, _ = digits
    knn = ApproxKNN(k=5).fit(X_train, y_train)
    reference = KNeighborsClassifier(5, algorithm="brute").fit(X_train, y_train)
    distances, indices = knn.kneighbors(X_test)
    ref_distances, ref_indices = reference.kneighbors(X_test)
    np.testing.assert_allclose(distances, ref_distances, rtol=1e-4, atol=1e-4)
    assert (indices == ref_indices).mean() > 0.97  # equal up to ties (pixels are discrete)
    assert (knn.predict(X_test) == reference.predict(X_test)).mean() > 0.99


@pytest.mark.parametrize("metric", ["INNER_PRODUCT", "COSINE"])
def test_similarity_metrics_report_similarities(metric, rng):
    X = rng.standard_normal((200, 6)).astype(np.float32)
    y = rng.integers(0, 3, 200)
    knn = ApproxKNN(k=4, index_metric=metric).fit(X, y)
    sims, indices = knn.kneighbors(X[:20])
    Q, S = X[:20], X
    if metric == "COSINE":
        Q = Q / np.linalg.norm(Q, axis=1, keepdims=True)
        S = S / np.linalg.norm(S, axis=1, keepdims=True)
    exact = Q @ S.T
    np.testing.assert_array_equal(indices[:, 0], np.argmax(exact, axis=1))
    np.testing.assert_allclose(sims, np.take_along_axis(exact, indices, 1), rtol=1e-4,
                               atol=1e-5)
    assert np.all(np.diff(sims, axis=1) <= 1e-6)  # descending


def test_ivfpq_pads_dimension_to_a_multiple_of_m(rng):
    X = rng.standard_normal((600, 10)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    knn = ApproxKNN(index_type="faiss.IVFPQ", faiss_index_pq_m=4, random_state=0).fit(X, y)
    assert knn.pq_m_ == 4 and knn.index_dim_ == 12
    assert knn.score(X, y) > 0.8


def test_nprobe_fixed_and_capped(digits):
    X_train, _, y_train, _ = digits
    knn = ApproxKNN(index_type="faiss.IVFFlat", faiss_index_ivf_nlists=8, nprobe=50,
                    random_state=0).fit(X_train, y_train)
    assert knn.nlists_ == 8 and knn.nprobe_ == 8


# -- votes ---------------------------------------------------------------------------------------

def test_vote_breaks_ties_towards_the_nearest_member():
    labels = np.array([[2, 1, 1, 2], [0, 1, 2, 3], [3, 3, 1, 1], [1, 1, 1, 0]])
    np.testing.assert_array_equal(vote(labels, 4), [2, 0, 3, 1])
    shares = vote_shares(labels, 4)
    np.testing.assert_allclose(shares.sum(axis=1), 1)
    np.testing.assert_allclose(shares[3], [0.25, 0.75, 0, 0], atol=1e-8)
    np.testing.assert_array_equal(np.argmax(shares, axis=1), vote(labels, 4))


def test_string_labels_and_proba_columns(digits):
    X_train, X_test, y_train, y_test = digits
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
                      "nine"])
    knn = ApproxKNN(k=5).fit(X_train, names[y_train])
    assert list(knn.classes_) == sorted(names)
    predicted = knn.predict(X_test)
    assert predicted.dtype.kind == "U" and (predicted == names[y_test]).mean() > 0.95
    proba = knn.predict_proba(X_test)
    np.testing.assert_array_equal(knn.classes_[np.argmax(proba, axis=1)], predicted)


def test_regressor_matches_scikit_learn_brute_force():
    X, y = load_diabetes(return_X_y=True)
    knn = ApproxKNN(k=7, predictor_type="regressor").fit(X, y)
    reference = KNeighborsRegressor(7, algorithm="brute").fit(X, y)
    np.testing.assert_allclose(knn.predict(X), reference.predict(X), rtol=1e-6)
    assert knn.evaluate(X, y)["mse"] == pytest.approx(((knn.predict(X) - y) ** 2).mean())
    assert is_regressor(knn) and not hasattr(knn, "predict_proba")


# -- the scikit-learn face -----------------------------------------------------------------------

def test_estimator_type_follows_predictor_type():
    assert is_classifier(ApproxKNN()) and is_regressor(ApproxKNN(predictor_type="regressor"))
    assert is_classifier(ApproxKNNClassifier()) and is_regressor(ApproxKNNRegressor())
    assert "predictor_type" not in ApproxKNNRegressor().get_params()


def test_kneighbors_graph_and_evaluate(digits):
    X_train, X_test, y_train, y_test = digits
    knn = ApproxKNN(k=3).fit(X_train, y_train)
    graph = knn.kneighbors_graph(X_test[:10], n_neighbors=4)
    assert graph.shape == (10, knn.n_samples_fit_) and graph.nnz == 40
    distances = knn.kneighbors_graph(X_test[:10], mode="distance")
    np.testing.assert_allclose(distances.data, knn.kneighbors(X_test[:10])[0].ravel())
    assert knn.evaluate(X_test, y_test) == {"accuracy": knn.score(X_test, y_test)}
    with pytest.raises(ValueError, match="exceeds"):
        knn.kneighbors(X_test, n_neighbors=10**6)


def test_sparse_input_matches_dense(digits):
    X_train, X_test, y_train, _ = digits
    dense = ApproxKNN(k=5).fit(X_train, y_train)
    sparse = ApproxKNN(k=5).fit(sp.csr_matrix(X_train), y_train)
    np.testing.assert_array_equal(sparse.predict(sp.csr_matrix(X_test)),
                                  dense.predict(X_test))


def test_pickle_and_joblib_round_trip_the_index(digits, tmp_path):
    X_train, X_test, y_train, _ = digits
    for index_type in ("faiss.Flat", "faiss.IVFFlat", "faiss.IVFPQ"):
        knn = ApproxKNN(index_type=index_type, random_state=0).fit(X_train, y_train)
        blob = pickle.dumps(knn)
        assert knn.index_.ntotal == X_train.shape[0]
        restored = pickle.loads(blob)
        np.testing.assert_array_equal(restored.predict(X_test), knn.predict(X_test))
        joblib.dump(knn, tmp_path / "knn.joblib")
        np.testing.assert_array_equal(joblib.load(tmp_path / "knn.joblib").predict(X_test),
                                      knn.predict(X_test))


def test_clone_and_grid_search_with_two_jobs():
    X, y = load_iris(return_X_y=True)
    search = GridSearchCV(ApproxKNN(), {"k": [1, 5, 15]}, cv=3, n_jobs=2).fit(X, y)
    assert search.best_score_ > 0.9
    assert clone(ApproxKNN(k=3)).get_params() == ApproxKNN(k=3).get_params()


def test_wire_form_round_trip():
    knn = ApproxKNN(k=10, sample_size=500, predictor_type="regressor",
                    dimension_reduction_type="fjlt", dimension_reduction_target=16,
                    index_type="faiss.IVFPQ", faiss_index_pq_m=8)
    wire = knn.to_hyperparameters()
    assert wire["dimension_reduction_type"] == "fjlt" and wire["faiss_index_pq_m"] == "8"
    assert ApproxKNN.from_hyperparameters(wire).get_params() == knn.get_params()


# -- bad input -----------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("params", "name"),
    [({"k": "a"}, "k"), ({"k": 0}, "k"), ({"k": 1025}, "k"), ({"predictor_type": 1},
     "predictor_type"), ({"index_type": "faiss.random"}, "index_type"),
     ({"index_metric": "x"}, "index_metric"), ({"faiss_index_pq_m": -1}, "faiss_index_pq_m"),
     ({"faiss_index_pq_m": 5}, "faiss_index_pq_m"),
     ({"dimension_reduction_target": -2}, "dimension_reduction_target"),
     ({"sample_size": 0}, "sample_size"), ({"nprobe": 0}, "nprobe")],
)
def test_invalid_hyperparameters_raise_at_fit(params, name):
    X, y = load_iris(return_X_y=True)
    with pytest.raises(InvalidParameterError, match=f"'{name}' parameter"):
        ApproxKNN(**params).fit(X, y)


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"index_type": "faiss.IVFPQ", "index_metric": "COSINE"}, "'L2' only"),
        ({"index_type": "faiss.IVFPQ", "index_metric": "INNER_PRODUCT"}, "'L2' only"),
        ({"dimension_reduction_type": "sign"}, "needs dimension_reduction_target"),
        ({"dimension_reduction_target": 2}, "dimension_reduction_type is None"),
        ({"faiss_index_pq_m": 4}, "IVFPQ' only"),
        ({"dimension_reduction_type": "fjlt", "dimension_reduction_target": 4}, "smaller"),
        ({"k": 200}, "at least 200 sampled rows"),
        ({"k": 10, "sample_size": 5}, "at least 10 sampled rows"),
    ],
)
def test_cross_parameter_rules(params, match):
    X, y = load_iris(return_X_y=True)
    with pytest.raises(ValueError, match=match):
        ApproxKNN(**params).fit(X, y)


@pytest.mark.parametrize(
    ("X", "y", "params", "match"),
    [
        (np.array([[1.0, np.nan]] * 10), np.arange(10) % 2, {}, "NaN"),
        (np.array([[1.0, np.inf]] * 10), np.arange(10) % 2, {}, "infinity"),
        (np.zeros((10, 2, 2)), np.arange(10) % 2, {}, "dim 3"),
        (np.zeros((10, 2)), None, {}, "requires y"),
        (np.zeros((10, 2)), np.linspace(0, 1, 10), {}, "Unknown label type"),
        (np.zeros((10, 2)), np.array(["a"] * 10), {"predictor_type": "regressor"},
         "numeric|float"),
    ],
)
def test_bad_data_raises_and_leaves_the_fitted_model_intact(X, y, params, match):
    X_good, y_good = load_iris(return_X_y=True)
    knn = ApproxKNN(**params).fit(X_good, y_good)
    predictions = knn.predict(X_good)
    before = {name: value for name, value in vars(knn).items() if name.endswith("_")}
    with pytest.raises(ValueError, match=match):
        knn.fit(X, y)
    after = {name: value for name, value in vars(knn).items() if name.endswith("_")}
    assert after.keys() == before.keys() and all(after[n] is before[n] for n in before)
    np.testing.assert_array_equal(knn.predict(X_good), predictions)


def test_query_with_wrong_feature_count():
    X, y = make_classification(100, 6, random_state=0)
    knn = ApproxKNN().fit(X, y)
    with pytest.raises(ValueError, match="6 features"):
        knn.predict(X[:, :4])
