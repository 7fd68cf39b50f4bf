"""A worker process that dies mid-fit: Ray re-runs its shard and the fit ends correct."""

from __future__ import annotations

import os

import numpy as np
import pytest
from sklearn.datasets import make_blobs

from skmk import ApproxKNN, StreamingKMeans
from skmk.remote import RayBackend

pytestmark = pytest.mark.ray


def _crash_once(cls, marker):
    """A subclass of ``cls`` whose worker process exits (``os._exit``, no cleanup, as a killed
    process would) after the first mini-batch of the first shard task that runs; the marker
    file makes the re-run go through. Defined locally, so Ray pickles the class by value and
    the workers need no test module."""

    class CrashOnce(cls):
        def _stream_arrays(self, X, y, sample_weight, random_state, progress):
            def progress_then_crash(state, batch):
                progress(state, batch)
                if not marker.exists():
                    marker.touch()
                    os._exit(1)

            return super()._stream_arrays(X, y, sample_weight, random_state,
                                          progress_then_crash)

    return CrashOnce


@pytest.fixture
def backend(ray_head, tmp_path):
    return RayBackend(address=ray_head.address, dashboard_url=ray_head.dashboard_url,
                      num_workers=2, cpus_per_worker=0.5, max_retries=2,
                      store=str(tmp_path / "store"))


def test_kmeans_worker_killed_mid_fit_is_retried_and_the_model_is_correct(backend, tmp_path):
    X, _ = make_blobs(n_samples=4000, n_features=4, centers=5, random_state=2)
    params = {"k": 5, "random_state": 1, "mini_batch_size": 500}
    marker = tmp_path / "worker-crashed"
    crashing = _crash_once(StreamingKMeans, marker)(**params, backend=backend).fit(X)
    assert marker.exists()  # a worker did die
    expected = StreamingKMeans(**params, backend=backend).fit(X)
    np.testing.assert_array_equal(crashing.cluster_centers_, expected.cluster_centers_)
    np.testing.assert_array_equal(crashing.labels_, expected.labels_)


def test_knn_worker_killed_mid_fit_is_retried(backend, tmp_path):
    X, _ = make_blobs(n_samples=2000, n_features=4, centers=3, random_state=2)
    y = np.arange(2000) % 3
    marker = tmp_path / "worker-crashed"
    knn = _crash_once(ApproxKNN, marker)(k=3, sample_size=500, mini_batch_size=200,
                                         random_state=0, backend=backend).fit(X, y)
    assert marker.exists()
    expected = ApproxKNN(k=3, sample_size=500, mini_batch_size=200, random_state=0,
                         backend=backend).fit(X, y)
    np.testing.assert_array_equal(knn.predict(X), expected.predict(X))
    assert knn.n_samples_seen_ == 2000
