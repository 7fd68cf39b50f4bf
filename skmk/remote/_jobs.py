"""Training jobs: ``fit(..., wait=False)`` through Ray's job submission API, and ``attach``.

A job lives in the artifact store as ``<store>/<job_name>/``:

* ``job.json`` — the request, written before submission: estimator class, SageMaker
  hyperparameters, workers, and where the data is;
* ``inputs/X.npy`` (and ``y.npy``, ``sample_weight.npy``) — in-memory arrays, which the job's
  driver cannot otherwise see;
* ``model.pkl`` + ``manifest.json`` — the fitted model, written by the job when it succeeds
  (``_artifacts.py``; the manifest last).

The job's entry point (``python -m skmk.remote._job_main <job dir>``) runs on the head node,
connects to the cluster and runs the same distributed fit as ``fit(wait=True)``. Ray keeps a
job's status and logs while its head runs; the store keeps the finished model after that, so
``attach`` of a finished job never needs Ray.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import secrets
import shlex
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ..io import Source
from ._artifacts import (
    MANIFEST,
    class_path,
    exists,
    import_class,
    join,
    load_model,
    read_bytes,
    read_manifest,
    write_bytes,
)
from ._backend import RayBackend, resolve_backend

__all__ = ["TrainingJob", "TrainingJobError", "attach", "submit_training_job"]

JOB_FILE = "job.json"
INPUTS = "inputs"
TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
#: Seconds between two status queries while waiting.
POLL_INTERVAL = 0.5


class TrainingJobError(RuntimeError):
    """A training job that failed, was stopped, or that neither Ray nor the store knows."""


@dataclass(frozen=True)
class TrainingJob:
    """A training job submitted by ``fit(..., wait=False)``.

    Attributes
    ----------
    name : str
        The job's name: Ray's submission id and the artifact directory's name.
    backend : RayBackend
        The cluster it runs on and the store it writes to.
    """

    name: str
    backend: RayBackend

    @property
    def artifact_url(self) -> str:
        """``<store>/<name>``: where the job's model and manifest are (once it succeeded)."""
        return join(self.backend.store_url, self.name)

    def status(self) -> str:
        """"PENDING", "RUNNING", "SUCCEEDED", "FAILED" or "STOPPED".

        A job the Ray cluster no longer knows (its head restarted) is "SUCCEEDED" when the
        store holds its finished model; otherwise ``TrainingJobError`` names the job.
        """
        try:
            return str(self.backend.job_client().get_job_status(self.name).value)
        except Exception as error:  # Ray answers unknown jobs and dead heads in several ways
            if exists(join(self.artifact_url, MANIFEST)):
                return "SUCCEEDED"
            raise TrainingJobError(
                f"unknown training job {self.name!r}: the Ray cluster does not know it "
                f"({type(error).__name__}: {error}) and {self.artifact_url} holds no finished "
                "model") from None

    def logs(self) -> str:
        """Everything the job's driver printed so far (progress lines, errors)."""
        return self.backend.job_client().get_job_logs(self.name)

    def stream_logs(self, timeout: float | None = None) -> Iterator[str]:
        """The job's log, chunk by chunk as it is written, until the job ends (like
        SageMaker's ``logs=True``); ``TimeoutError`` after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        lines = self.backend.job_client().tail_job_logs(self.name)
        loop = asyncio.new_event_loop()
        try:
            while True:
                remaining = None if deadline is None else max(deadline - time.monotonic(), 0)
                try:
                    yield loop.run_until_complete(asyncio.wait_for(lines.__anext__(),
                                                                   remaining))
                except StopAsyncIteration:
                    return
                except asyncio.TimeoutError:
                    raise TimeoutError(f"training job {self.name!r} still writes its log "
                                       f"after {timeout} s") from None
        finally:
            loop.run_until_complete(lines.aclose())
            loop.close()

    def wait(self, timeout: float | None = None, *, logs: bool = False) -> str:
        """Block until the job ends; returns "SUCCEEDED".

        Parameters
        ----------
        timeout : float, default=None
            Seconds; ``TimeoutError`` after that. None waits as long as it takes.
        logs : bool, default=False
            Print the job's log to stdout as it is written.

        Raises
        ------
        TrainingJobError
            The job failed or was stopped (the message ends with its last log lines).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        if logs:
            for chunk in self.stream_logs(timeout):
                print(chunk, end="", flush=True)
        while (status := self.status()) not in TERMINAL:
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"training job {self.name!r} is still {status} after "
                                   f"{timeout} s")
            time.sleep(POLL_INTERVAL)
        if status != "SUCCEEDED":
            tail = "\n".join(self.logs().splitlines()[-20:])
            raise TrainingJobError(f"training job {self.name!r} {status}; last log lines:\n"
                                   f"{tail}")
        return status

    def metrics(self) -> dict:
        """The finished model's metrics (from its manifest)."""
        return read_manifest(self.artifact_url)["metrics"]

    def result(self, timeout: float | None = None, *, logs: bool = False):
        """Wait for the job and return the fitted estimator (see ``attach``)."""
        return attach(self.name, self.backend, timeout=timeout, logs=logs)


def attach(job_name: str, backend=None, *, estimator_class=None, timeout: float | None = None,
           logs: bool = False):
    """The fitted estimator of the training job ``job_name``, waiting for it if needed.

    A finished job is read from the store (no Ray needed); otherwise the job is waited for on
    the cluster. See ``StreamingKMeans.attach``.

    Parameters
    ----------
    job_name : str
    backend : 'ray', RayBackend or None
    estimator_class : type, default=None
        The class expected; None accepts the job's own.
    timeout : float, default=None
    logs : bool, default=False

    Returns
    -------
    estimator : fitted, with ``backend`` set to the backend given
    """
    backend = resolve_backend(backend)
    job = TrainingJob(_checked_name(job_name), backend)
    if not exists(join(job.artifact_url, MANIFEST)):
        job.wait(timeout, logs=logs)
    return load_model(job.artifact_url, estimator_class=estimator_class, backend=backend)


def submit_training_job(estimator, X, y, sample_weight, backend: RayBackend, *,
                        job_name: str | None = None) -> TrainingJob:
    """Write the job's request (and in-memory inputs) to the store and submit it to Ray."""
    name = _checked_name(job_name or _new_name(estimator))
    job = TrainingJob(name, backend)
    url = job.artifact_url
    if exists(join(url, JOB_FILE)) or exists(join(url, MANIFEST)):
        raise ValueError(f"a training job named {name!r} already exists in {backend.store_url}; "
                         "choose another job_name")
    try:
        hyperparameters = estimator.to_hyperparameters()
    except TypeError as error:
        raise ValueError(f"a training job takes its hyperparameters in SageMaker's wire form: "
                         f"{error}") from None
    request = {
        "name": name,
        "estimator": class_path(type(estimator)),
        "hyperparameters": hyperparameters,
        "params": {"verbose": estimator.verbose},
        "workers": {"num_workers": backend.num_workers,
                    "cpus_per_worker": backend.cpus_per_worker,
                    "max_retries": backend.max_retries, "store": backend.store_url},
        "data": _write_inputs(url, X, y, sample_weight),
        "submitted": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    write_bytes(join(url, JOB_FILE), json.dumps(request, indent=2).encode())
    backend.job_client().submit_job(
        entrypoint=f"{shlex.quote(backend.python)} -m skmk.remote._job_main {shlex.quote(url)}",
        submission_id=name,
        metadata={"skmk_estimator": request["estimator"], "skmk_artifact": url},
        # The driver only coordinates: the shards' tasks hold the CPUs.
        entrypoint_num_cpus=0,
    )
    return job


def _new_name(estimator) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    return f"skmk-{type(estimator).__name__.lower()}-{stamp}-{secrets.token_hex(3)}"


def _checked_name(name) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"job name must be 1-128 letters, digits, '_', '.' or '-' starting "
                         f"with a letter or digit, got {name!r}")
    return name


def _write_inputs(url: str, X, y, sample_weight) -> dict:
    """Where the job finds its data: a source location as given, arrays as .npy files."""
    if isinstance(X, Source):
        # Its storage_options may hold credentials, which must not be written to the store.
        raise ValueError("a training job takes a data source by its location (a path or URL), "
                         "not a Source object: the job's driver opens it with the cluster's own "
                         "credentials; fit a Source with wait=True to ship its options")
    if isinstance(X, (str, os.PathLike)):
        location = str(X)
        if "://" not in location:
            location = os.path.abspath(location)  # the job's driver runs elsewhere
        return {"source": location}
    data = {}
    columns = getattr(X, "columns", None)
    if columns is not None:
        data["feature_names"] = [str(c) for c in columns]
    for key, array in (("X", X), ("y", y), ("sample_weight", sample_weight)):
        if array is None:
            continue
        if hasattr(array, "tocsr"):
            raise ValueError("a training job takes dense arrays or a data source; write sparse "
                             "data as RecordIO-protobuf files (skmk.io.write_recordio) and fit "
                             "from them")
        buffer = io.BytesIO()
        np.save(buffer, np.asarray(array), allow_pickle=True)
        data[key] = f"{INPUTS}/{key}.npy"
        write_bytes(join(url, data[key]), buffer.getvalue())
    return data


def read_request(url: str) -> dict:
    """The request ``job.json`` of the job at ``url``."""
    return json.loads(read_bytes(join(url, JOB_FILE)))


def load_inputs(url: str, data: dict):
    """The job's data as ``fit`` takes it: ``(X, y, sample_weight)``."""
    if "source" in data:
        return data["source"], None, None
    arrays = {}
    for key in ("X", "y", "sample_weight"):
        if key in data:
            location = join(url, data[key])
            arrays[key] = (np.load(location, mmap_mode="r", allow_pickle=True)
                           if "://" not in location
                           else np.load(io.BytesIO(read_bytes(location)), allow_pickle=True))
    X = arrays["X"]
    if "feature_names" in data:
        import pandas as pd

        X = pd.DataFrame(np.asarray(X), columns=data["feature_names"])
    return X, arrays.get("y"), arrays.get("sample_weight")


def job_estimator(request: dict):
    """The estimator a job fits: its class, its wire hyperparameters, the in-job backend."""
    cls = import_class(request["estimator"])
    # Inside a job Ray's driver connects to its own cluster: address None does it.
    backend = RayBackend(**request["workers"])
    return cls.from_hyperparameters(request["hyperparameters"], backend=backend,
                                    **request["params"])

