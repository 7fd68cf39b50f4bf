"""GridSearchCV on the cluster: joblib's Ray backend, and estimators with a Ray backend."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_iris, make_blobs
from sklearn.model_selection import GridSearchCV

from skmk import ApproxKNN, StreamingKMeans
from skmk.remote import RayBackend

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def ray_joblib(ray_head):
    """Joblib's "ray" backend registered, with this process connected to the session head."""
    from ray.util.joblib import register_ray

    RayBackend(address=ray_head.address).connect()
    register_ray()
    return "ray"


def test_grid_search_runs_its_fits_as_ray_tasks(ray_joblib):
    import joblib

    X, y = load_iris(return_X_y=True)
    grid = {"k": [1, 5, 15], "index_metric": ["L2", "COSINE"]}
    local = GridSearchCV(ApproxKNN(random_state=0), grid, cv=3).fit(X, y)
    with joblib.parallel_backend(ray_joblib):
        on_ray = GridSearchCV(ApproxKNN(random_state=0), grid, cv=3, n_jobs=2).fit(X, y)
    assert on_ray.best_params_ == local.best_params_
    np.testing.assert_array_equal(on_ray.cv_results_["mean_test_score"],
                                  local.cv_results_["mean_test_score"])
    np.testing.assert_array_equal(on_ray.predict(X), local.predict(X))


def test_grid_search_keeps_a_ray_backend_and_each_fit_is_distributed(ray_head):
    X, _ = make_blobs(n_samples=900, n_features=3, centers=4, random_state=0)
    backend = RayBackend(address=ray_head.address, num_workers=1, cpus_per_worker=0.5)
    grid = {"k": [3, 4]}
    on_ray = GridSearchCV(StreamingKMeans(random_state=0, backend=backend), grid, cv=2).fit(X)
    local = GridSearchCV(StreamingKMeans(random_state=0), grid, cv=2).fit(X)
    assert on_ray.best_estimator_.backend == backend
    # one worker per fit: each fit is the local one, so the scores agree exactly
    np.testing.assert_array_equal(on_ray.cv_results_["mean_test_score"],
                                  local.cv_results_["mean_test_score"])
