"""The backend parameter: an ordinary scikit-learn parameter, validated in fit, Ray-free."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import make_blobs
from sklearn.model_selection import GridSearchCV
from sklearn.utils._param_validation import InvalidParameterError

from skmk import ApproxKNN, StreamingKMeans
from skmk._streaming import Batch
from skmk.neighbors._reservoir import ReservoirState, join_shares
from skmk.remote import RayBackend
from skmk.remote._distributed import shard_bounds, worker_random_states


@pytest.mark.parametrize("cls", [StreamingKMeans, ApproxKNN])
def test_backend_is_an_ordinary_parameter_kept_by_clone_and_grid_search(cls):
    backend = RayBackend(address="ray://head:10001", num_workers=4, store="s3://b/p")
    estimator = cls(backend=backend)
    assert cls().backend is None
    assert estimator.get_params()["backend"] is backend
    assert clone(estimator).backend == backend
    assert "backend" not in estimator.to_hyperparameters()
    assert cls.from_hyperparameters(estimator.to_hyperparameters(),
                                    backend=backend).backend == backend
    search = GridSearchCV(estimator, {"k": [2, 3]})
    assert clone(search).estimator.backend == backend
    assert "RayBackend(address='ray://head:10001', num_workers=4, store='s3://b/p')" in repr(
        estimator)
    assert repr(RayBackend()) == 'RayBackend()'


def test_local_backend_values_fit_in_process():
    X, _ = make_blobs(n_samples=200, n_features=3, centers=3, random_state=0)
    reference = StreamingKMeans(k=3, random_state=0).fit(X)
    local = StreamingKMeans(k=3, random_state=0, backend="local").fit(X)
    np.testing.assert_array_equal(local.cluster_centers_, reference.cluster_centers_)
    search = GridSearchCV(StreamingKMeans(random_state=0), {"k": [2, 3],
                                                          "backend": [None, "local"]}, cv=2)
    assert search.fit(X).best_params_["k"] == 3


def test_set_params_never_validates_and_fit_names_the_bad_backend():
    X, _ = make_blobs(n_samples=50, n_features=2, centers=2, random_state=0)
    km = StreamingKMeans(k=2).set_params(backend="spark")
    assert km.backend == "spark"
    with pytest.raises(InvalidParameterError, match=r"'backend' parameter.*'spark'"):
        km.fit(X)
    with pytest.raises(InvalidParameterError, match="backend"):
        ApproxKNN(backend=42).fit(X, np.arange(50) % 2)
    with pytest.raises(ValueError, match=r"fit\(wait=False\) submits a training job"):
        StreamingKMeans(k=2).fit(X, wait=False)


@pytest.mark.parametrize(("options", "message"), [
    ({"num_workers": 0}, "num_workers must be an int >= 1"),
    ({"num_workers": 1.5}, "num_workers"),
    ({"cpus_per_worker": 0}, "cpus_per_worker"),
    ({"max_retries": -1}, "max_retries"),
    ({"store": 3}, "store must be a str"),
])
def test_ray_backend_rejects_bad_settings(options, message):
    with pytest.raises(ValueError, match=message):
        RayBackend(**options)


def test_import_and_local_fit_do_not_import_ray():
    code = ("import sys, numpy as np; import skmk; "
            "skmk.StreamingKMeans(k=2, backend='local').fit(np.random.rand(20, 2)); "
            "skmk.ApproxKNN(k=1).fit(np.random.rand(20, 2), np.arange(20) % 2); "
            "import skmk.remote; skmk.remote.RayBackend(); "
            "print('ray' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "False"


def test_shards_cover_every_row_once():
    assert shard_bounds(10, 3) == [(0, 3), (3, 7), (7, 10)]
    assert shard_bounds(2, 5) == [(0, 1), (1, 2)]
    assert shard_bounds(7, 1) == [(0, 7)]


def test_worker_seeds_first_is_the_local_stream_others_independent():
    states = worker_random_states(5, 3)
    assert states[0].randint(1000) == np.random.RandomState(5).randint(1000)
    draws = {tuple(s.randint(0, 2**31, 4)) for s in worker_random_states(5, 3)}
    assert len(draws) == 3
    again = [s.randint(0, 2**31) for s in worker_random_states(5, 3)]
    assert again == [s.randint(0, 2**31) for s in worker_random_states(5, 3)]


def test_shares_of_a_sample_drawn_per_shard_join_into_a_uniform_sample():
    # 40 rows in shards of 10 and 30; samples of 8: every row is kept with probability 0.2.
    rows = np.arange(40, dtype=np.float64)[:, None]
    shards = [rows[:10], rows[10:]]
    knn = ApproxKNN(sample_size=8)
    rng = np.random.default_rng(0)
    kept = np.zeros(40)
    trials = 3000
    for trial in range(trials):
        shares = knn._shard_shares([10, 30], rng)
        states = []
        for shard, share in zip(shards, shares):
            state = ReservoirState(share["sample_size"], 1, np.float64,
                                   np.random.RandomState(trial))
            state.update(Batch(shard, shard[:, 0]))
            states.append(state)
        merged = join_shares(states)
        assert merged.X.shape == (8, 1) and merged.n_seen == 40
        np.testing.assert_array_equal(merged.X[:, 0], merged.y)
        kept[merged.X[:, 0].astype(int)] += 1
    # binomial sd of a frequency over 3000 trials: sqrt(0.2 * 0.8 / 3000) = 0.0073
    np.testing.assert_allclose(kept / trials, 0.2, atol=0.035)


def test_a_job_refuses_a_source_object_and_sparse_arrays_before_contacting_ray(tmp_path):
    import scipy.sparse as sp

    from skmk.io import open_source

    np.save(tmp_path / "x.npy", np.random.default_rng(0).random((20, 2)))
    km = StreamingKMeans(k=2, backend=RayBackend(store=str(tmp_path / "store"),
                                                 dashboard_url="http://127.0.0.1:9"))
    with pytest.raises(ValueError, match="not a Source object"):
        km.fit(open_source(str(tmp_path / "x.npy")), wait=False)
    with pytest.raises(ValueError, match="RecordIO-protobuf"):
        km.fit(sp.random(20, 3, density=0.5, format="csr"), wait=False)
