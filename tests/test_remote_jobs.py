"""Training jobs on a real Ray head: submit, logs, metrics, attach, failures.

The module submits its three jobs at once (a k-means fit, a k-NN fit from a CSV file and a fit
that fails on bad data), so that they run side by side; the tests then look at them.
"""

from __future__ import annotations

import dataclasses
import sys

import numpy as np
import pytest
from servers import free_port
from sklearn.datasets import make_blobs, make_classification
from sklearn.exceptions import NotFittedError

from skmk import ApproxKNN, StreamingKMeans
from skmk.remote import ArtifactError, RayBackend, TrainingJobError, attach
from skmk.remote._artifacts import MANIFEST, exists, join

pytestmark = pytest.mark.ray

JOB_TIMEOUT = 120
KMEANS_PARAMS = {"k": 6, "random_state": 3, "center_factor": 4, "verbose": 1}


@pytest.fixture(scope="module")
def blobs():
    X, _ = make_blobs(n_samples=3000, n_features=5, centers=6, random_state=11)
    return X


@pytest.fixture(scope="module")
def classification():
    return make_classification(n_samples=600, n_features=4, n_informative=3, n_redundant=0,
                               n_classes=2, random_state=0)


@pytest.fixture(scope="module")
def backend(ray_head, tmp_path_factory):
    return RayBackend(address=ray_head.address, dashboard_url=ray_head.dashboard_url,
                      num_workers=1, store=str(tmp_path_factory.mktemp("store")),
                      cpus_per_worker=0.5, python=sys.executable)


@pytest.fixture(scope="module")
def jobs(backend, blobs, classification, tmp_path_factory):
    """The estimators whose jobs were submitted, by test name; submitted together. The k-means
    job's store is a ``file://`` URL, so its inputs and model go through fsspec."""
    url_store = "file://" + str(tmp_path_factory.mktemp("url-store"))
    kmeans = StreamingKMeans(**KMEANS_PARAMS, backend=dataclasses.replace(backend,
                                                                          store=url_store))
    submitted = {"kmeans": kmeans.fit(blobs, wait=False, job_name="kmeans-job-1")}
    X, y = classification
    csv = tmp_path_factory.mktemp("data") / "train.csv"
    np.savetxt(csv, np.column_stack([y, X]), delimiter=",")
    submitted["knn"] = ApproxKNN(k=3, random_state=0, backend=backend).fit(str(csv), wait=False)
    bad = blobs.copy()
    bad[17, 2] = np.nan
    submitted["bad"] = StreamingKMeans(k=4, backend=backend).fit(bad, wait=False,
                                                                job_name="bad-data")
    return submitted


def test_submitted_job_streams_logs_reports_metrics_and_attaches(jobs, blobs, capsys):
    km = jobs["kmeans"]
    backend = km.backend
    assert backend.store.startswith("file://")
    job = km.training_job_
    assert job.name == "kmeans-job-1"
    assert job.artifact_url == join(backend.store_url, "kmeans-job-1")
    with pytest.raises(NotFittedError):
        km.predict(blobs)  # a submitted job is not a fitted model
    assert job.wait(JOB_TIMEOUT, logs=True) == "SUCCEEDED"
    printed = capsys.readouterr().out
    assert "[skmk job kmeans-job-1]" in printed and "done" in printed
    assert "[skmk job kmeans-job-1]" in job.logs()
    assert job.status() == "SUCCEEDED"
    metrics = job.metrics()
    assert metrics["num_workers"] == 1 and metrics["fit_seconds"] > 0
    assert metrics["inertia"] > 0 and metrics["n_features_in"] == 5

    fitted = StreamingKMeans.attach("kmeans-job-1", backend=backend)
    # hyperparameters come back from the SageMaker wire dict; the model is the local one's
    assert fitted.get_params() == {**km.get_params(), "backend": backend}
    local = StreamingKMeans(**KMEANS_PARAMS).fit(blobs)
    np.testing.assert_array_equal(fitted.cluster_centers_, local.cluster_centers_)
    np.testing.assert_array_equal(fitted.predict(blobs), local.predict(blobs))
    np.testing.assert_array_equal(job.result().labels_, local.labels_)


def test_attach_reads_a_finished_job_from_the_store_when_the_head_is_gone(jobs):
    jobs["kmeans"].training_job_.wait(JOB_TIMEOUT)
    backend = jobs["kmeans"].backend
    # A backend whose cluster answers nowhere, with the same store: as after a head restart.
    gone = RayBackend(address=f"127.0.0.1:{free_port()}",
                      dashboard_url=f"http://127.0.0.1:{free_port()}", store=backend.store)
    model = StreamingKMeans.attach("kmeans-job-1", backend=gone)
    assert model.cluster_centers_.shape == (6, 5) and model.backend == gone
    assert attach("kmeans-job-1", gone).k == 6  # the generic attach knows the class
    with pytest.raises(ArtifactError, match="StreamingKMeans, not a ApproxKNN"):
        ApproxKNN.attach("kmeans-job-1", backend=gone)
    with pytest.raises(TrainingJobError, match="unknown training job 'never-ran'"):
        StreamingKMeans.attach("never-ran", backend=gone)


def test_knn_job_from_a_csv_source(jobs, backend, classification):
    X, y = classification
    job = jobs["knn"].training_job_
    assert job.name.startswith("skmk-approxknn-")
    model = ApproxKNN.attach(job.name, backend=backend, timeout=JOB_TIMEOUT)
    assert model.n_samples_fit_ == 600 and model.score(X, y.astype(float)) > 0.9


def test_a_failing_job_is_failed_with_the_error_in_its_logs_and_leaves_no_manifest(
        jobs, backend):
    job = jobs["bad"].training_job_
    with pytest.raises(TrainingJobError, match="FAILED") as failure:
        job.wait(JOB_TIMEOUT)
    assert "NaN" in str(failure.value)
    assert job.status() == "FAILED"
    assert "Input X contains NaN" in job.logs()
    assert exists(join(job.artifact_url, "job.json"))
    assert not exists(join(job.artifact_url, MANIFEST))
    with pytest.raises(TrainingJobError, match=r"'bad-data' FAILED"):
        StreamingKMeans.attach("bad-data", backend=backend)


def test_job_names_are_checked_and_never_reused(jobs, blobs, backend):
    km = StreamingKMeans(k=4, backend=jobs["kmeans"].backend)
    with pytest.raises(ValueError, match="job name must be"):
        km.fit(blobs, wait=False, job_name="no spaces")
    with pytest.raises(ValueError, match="already exists"):
        km.fit(blobs[:200], wait=False, job_name="kmeans-job-1")
    with pytest.raises(ValueError, match="wire form"):
        StreamingKMeans(k=4, random_state=np.random.RandomState(0), backend=backend).fit(
            blobs, wait=False)
    with pytest.raises(ValueError, match="needs a Ray backend"):
        StreamingKMeans(k=4).fit(blobs, wait=False)
