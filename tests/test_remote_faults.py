"""A worker process that dies mid-fit: Ray re-runs its shard and the fit ends correct.

Two ways to kill a real worker: from inside (``os._exit`` in the first attempt of a task,
keyed by a marker file) in a fit driven from the test, and from outside (SIGKILL by PID to the
worker executing the shard) in a training job.
"""

from __future__ import annotations

import os
import signal
import sys
import time

import numpy as np
import pytest
from sklearn.datasets import make_blobs

from skmk import ApproxKNN, StreamingKMeans
from skmk.remote import RayBackend, TrainingJob

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


def _running_task_pid(head_pid: int, title: str, timeout: float) -> int:
    """PID of a worker process of our head (a descendant of the process we started) whose
    title says it is executing ``title``; polls /proc every 20 ms."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                    if not cmdline.read().startswith(title.encode()):
                        continue
            except OSError:
                continue
            if head_pid in _ancestors(int(entry)):
                return int(entry)
        time.sleep(0.02)
    raise TimeoutError(f"no {title} process of the Ray head within {timeout} s")


def _ancestors(pid: int) -> set[int]:
    seen = set()
    while pid > 1 and pid not in seen:
        seen.add(pid)
        try:
            with open(f"/proc/{pid}/stat") as stat:
                pid = int(stat.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            break
    return seen


def test_training_job_completes_correctly_when_its_worker_is_killed(ray_head, tmp_path):
    backend = RayBackend(address=ray_head.address, dashboard_url=ray_head.dashboard_url,
                         num_workers=1, cpus_per_worker=0.5, max_retries=2,
                         store=str(tmp_path / "store"), python=sys.executable)
    X, _ = make_blobs(n_samples=200_000, n_features=16, centers=10, random_state=4)
    params = {"k": 10, "random_state": 0, "mini_batch_size": 1000}
    StreamingKMeans(**params, backend=backend).fit(X, wait=False, job_name="killed-worker")
    # SIGKILL the worker while it streams its shard: a real worker process dies mid-fit.
    os.kill(_running_task_pid(ray_head.process.pid, "ray::stream_shard", 90), signal.SIGKILL)
    model = StreamingKMeans.attach("killed-worker", backend=backend, timeout=120)
    # the kill hit the running task, and Ray re-ran it
    assert "Task stream_shard failed. There are 2 retries remaining" in TrainingJob(
        "killed-worker", backend).logs()
    local = StreamingKMeans(**params).fit(X)
    np.testing.assert_array_equal(model.cluster_centers_, local.cluster_centers_)
    np.testing.assert_array_equal(model.labels_, local.labels_)
