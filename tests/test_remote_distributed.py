"""Distributed fit on a real Ray head: shards on workers, states merged, the local finalize."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_blobs, make_classification

from skmk import ApproxKNN, StreamingKMeans
from skmk.remote import RayBackend

pytestmark = pytest.mark.ray


@pytest.fixture
def backend(ray_head, tmp_path):
    def make(num_workers=2, **options):
        return RayBackend(address=ray_head.address, dashboard_url=ray_head.dashboard_url,
                          num_workers=num_workers, store=str(tmp_path / "store"),
                          cpus_per_worker=0.5, **options)
    return make


@pytest.fixture(scope="module")
def kmeans_data():
    X, _ = make_blobs(n_samples=6000, n_features=6, centers=8, cluster_std=1.5, random_state=3)
    return X.astype(np.float32)


def _fitted(estimator) -> dict:
    return {name: value for name, value in vars(estimator).items()
            if name.endswith("_") and name not in ("streaming_state_", "index_")}


def _assert_same_fitted(a, b):
    fitted_a, fitted_b = _fitted(a), _fitted(b)
    assert fitted_a.keys() == fitted_b.keys()
    for name, value in fitted_a.items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(value, fitted_b[name], err_msg=name)
        elif isinstance(value, (int, float, str, type(None))):
            assert value == fitted_b[name], name


def test_one_worker_kmeans_equals_the_local_fit(kmeans_data, backend):
    params = {"k": 8, "random_state": 7, "mini_batch_size": 500, "epochs": 2}
    local = StreamingKMeans(**params).fit(kmeans_data)
    remote = StreamingKMeans(**params, backend=backend(1)).fit(kmeans_data)
    _assert_same_fitted(local, remote)
    np.testing.assert_array_equal(local.predict(kmeans_data), remote.predict(kmeans_data))
    assert remote.cluster_centers_.dtype == np.float32
    assert remote.get_params()["backend"] == backend(1)


def test_two_workers_kmeans_matches_local_quality(kmeans_data, backend):
    local = StreamingKMeans(k=8, random_state=0).fit(kmeans_data)
    weights = np.random.default_rng(0).integers(1, 3, kmeans_data.shape[0]).astype(np.float32)
    remote = StreamingKMeans(k=8, random_state=0, backend=backend(2)).fit(
        kmeans_data, sample_weight=weights)
    assert remote.labels_.shape == (kmeans_data.shape[0],)
    ssd_remote = -remote.score(kmeans_data)
    assert ssd_remote <= 1.01 * -local.score(kmeans_data)
    # inertia_ is the weighted SSD, summed over the shards by the workers
    assert remote.inertia_ == pytest.approx(-remote.score(kmeans_data, sample_weight=weights),
                                            rel=1e-5)
    # the coreset holds the extra centers of both shards
    assert remote.n_extra_centers_ == 2 * 8 * remote.center_factor_
    again = StreamingKMeans(k=8, random_state=0, backend=backend(2)).fit(
        kmeans_data, sample_weight=weights)
    np.testing.assert_array_equal(again.cluster_centers_, remote.cluster_centers_)


def test_one_worker_knn_equals_the_local_fit(backend):
    X, y = make_classification(n_samples=1500, n_features=10, n_informative=6, n_classes=3,
                               random_state=0)
    params = {"k": 5, "sample_size": 800, "index_type": "faiss.IVFFlat", "random_state": 2}
    local = ApproxKNN(**params).fit(X, y)
    remote = ApproxKNN(**params, backend=backend(1)).fit(X, y)
    _assert_same_fitted(local, remote)
    np.testing.assert_array_equal(local.predict(X), remote.predict(X))


def test_two_workers_knn_merge_reservoirs_to_a_uniform_sample(backend):
    X, y = make_classification(n_samples=3000, n_features=8, n_informative=5, n_classes=2,
                               random_state=1)
    # Row i holds i in a marker column, so the sample tells which rows were kept.
    marked = np.column_stack([X, np.arange(X.shape[0])])
    knn = ApproxKNN(k=5, sample_size=1000, random_state=0, backend=backend(2)).fit(marked, y)
    assert knn.n_samples_fit_ == 1000 and knn.n_samples_seen_ == 3000
    kept = knn.index_.reconstruct_n(0, knn.n_samples_fit_)[:, -1]
    assert len(np.unique(kept)) == 1000
    # each half of the data contributes about half of the sample (hypergeometric, sd ~ 13)
    assert 420 < np.sum(kept < 1500) < 580
    local = ApproxKNN(k=5, sample_size=1000, random_state=0).fit(marked, y)
    assert knn.score(marked, y) == pytest.approx(local.score(marked, y), abs=0.05)


def test_file_source_is_divided_between_workers_by_file(kmeans_data, backend, tmp_path):
    for i, part in enumerate(np.array_split(kmeans_data, 3)):
        np.save(tmp_path / f"part-{i}.npy", part)
    params = {"k": 8, "random_state": 4}
    local = StreamingKMeans(**params).fit(str(tmp_path / "part-*.npy"))
    one = StreamingKMeans(**params, backend=backend(1)).fit(str(tmp_path / "part-*.npy"))
    _assert_same_fitted(local, one)
    two = StreamingKMeans(**params, backend=backend(2)).fit(str(tmp_path / "part-*.npy"))
    assert two.n_features_in_ == kmeans_data.shape[1]
    assert -two.score(kmeans_data) <= 1.01 * -local.score(kmeans_data)


def test_knn_from_labelled_csv_files_on_two_workers(backend, tmp_path):
    X, y = make_classification(n_samples=900, n_features=5, n_informative=3, n_redundant=0,
                               n_classes=3,
                               random_state=5)
    for i, rows in enumerate(np.array_split(np.arange(900), 2)):
        np.savetxt(tmp_path / f"train-{i}.csv", np.column_stack([y[rows], X[rows]]),
                   delimiter=",")
    knn = ApproxKNN(k=3, random_state=0, backend=backend(2)).fit(str(tmp_path))
    assert knn.n_samples_fit_ == 900
    np.testing.assert_array_equal(knn.classes_, [0.0, 1.0, 2.0])
    assert knn.score(X, y.astype(float)) > 0.9


def test_a_bad_shard_fails_the_fit_and_leaves_the_model_as_it_was(kmeans_data, backend,
                                                                   tmp_path):
    np.save(tmp_path / "a.npy", kmeans_data[:3000])
    np.save(tmp_path / "b.npy", kmeans_data[3000:, :4])  # fewer features: the worker rejects it
    km = StreamingKMeans(k=8, random_state=0).fit(kmeans_data)
    centers = km.cluster_centers_.copy()
    km.set_params(backend=backend(1))
    with pytest.raises(ValueError, match="features"):
        km.fit(str(tmp_path / "*.npy"))
    np.testing.assert_array_equal(km.cluster_centers_, centers)


def test_backend_ray_uses_the_connected_cluster_and_prints_progress(kmeans_data, ray_head,
                                                                    capsys):
    RayBackend(address=ray_head.address).connect()
    km = StreamingKMeans(k=8, random_state=0, verbose=1, backend="ray").fit(kmeans_data)
    assert km.backend == "ray" and km.n_extra_centers_ == 2 * 8 * km.center_factor_
    printed = capsys.readouterr().err
    assert "[StreamingKMeans on Ray] 2 shard(s) of 6,000 rows" in printed
    assert "[StreamingKMeans on Ray] fitted in" in printed
