"""The Ray backend: where a cluster is, how many workers a fit uses, where artifacts go.

Importing this module does not import Ray; :meth:`RayBackend.connect` does, when a fit or a job
first needs the cluster.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, fields
from numbers import Integral, Real
from pathlib import Path

from .._remote_mixin import Backend

#: The artifact store when a backend names none: a directory in the user's home.
DEFAULT_STORE = str(Path("~/.skmk/jobs").expanduser())


@dataclass(frozen=True, repr=False)
class RayBackend(Backend):
    """Fit on a Ray cluster: a distributed fit, or a training job with ``fit(wait=False)``.

    An ordinary, immutable value: estimators keep it as their ``backend`` parameter, and
    ``get_params``, ``clone`` and ``GridSearchCV`` copy it like any other parameter.

    Parameters
    ----------
    address : str, default=None
        The cluster for ``ray.init``: "auto" (the cluster this machine belongs to), a GCS
        address ``host:port``, or a Ray Client address ``ray://host:10001``. None connects as
        ``ray.init()`` does: to ``RAY_ADDRESS`` when set, else to a new local Ray. A process
        already connected to Ray keeps its connection.
    num_workers : int, default=2
        Shards of the data, one Ray task each.
    store : str, default=None
        Artifact store of training jobs: a local directory or any fsspec URL
        (``s3://bucket/prefix``). None: ``~/.skmk/jobs``. Jobs read their inputs from it and
        write ``<store>/<job_name>/`` to it, so every node must reach it.
    dashboard_url : str, default=None
        The job submission address (``http://host:8265``). None: the dashboard of the cluster
        this process connects to at ``address``.
    cpus_per_worker : float, default=1.0
        CPUs Ray reserves for each shard's task.
    max_retries : int, default=3
        Times Ray re-runs a shard's task whose worker process died.
    python : str, default="python"
        The Python command a job's entry point runs with on the head node.
    """

    address: str | None = None
    num_workers: int = 2
    store: str | None = None
    dashboard_url: str | None = None
    cpus_per_worker: float = 1.0
    max_retries: int = 3
    python: str = "python"

    def __post_init__(self):
        if (not isinstance(self.num_workers, Integral) or isinstance(self.num_workers, bool)
                or self.num_workers < 1):
            raise ValueError(f"RayBackend num_workers must be an int >= 1, got "
                             f"{self.num_workers!r}")
        if not isinstance(self.cpus_per_worker, Real) or self.cpus_per_worker <= 0:
            raise ValueError(f"RayBackend cpus_per_worker must be a number > 0, got "
                             f"{self.cpus_per_worker!r}")
        if not isinstance(self.max_retries, Integral) or self.max_retries < 0:
            raise ValueError(f"RayBackend max_retries must be an int >= 0, got "
                             f"{self.max_retries!r}")
        for name in ("address", "store", "dashboard_url"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise ValueError(f"RayBackend {name} must be a str or None, got {value!r}")

    def __repr__(self) -> str:
        # Only what differs from the defaults, so an estimator's repr stays short.
        changed = [f"{f.name}={getattr(self, f.name)!r}" for f in fields(self)
                   if getattr(self, f.name) != f.default]
        return f"RayBackend({', '.join(changed)})"

    @property
    def store_url(self) -> str:
        """The artifact store, defaulted."""
        return self.store if self.store is not None else DEFAULT_STORE

    def connect(self):
        """Import Ray and connect this process to the cluster (once); returns the ``ray``
        module."""
        import ray

        if not ray.is_initialized():
            ray.init(address=self.address, log_to_driver=True,
                     logging_level="WARNING", configure_logging=True)
        return ray

    def job_client(self):
        """A ``JobSubmissionClient`` for this backend's cluster (one per address and process:
        making one costs an HTTP round trip, and waiting for a job asks often)."""
        if self.dashboard_url is None:
            self.connect()  # the client then finds the connected cluster's dashboard
        return _job_client(self.dashboard_url)

    def fit(self, estimator, X, y=None, sample_weight=None, *, wait: bool = True,
            job_name: str | None = None):
        """Fit ``estimator`` on the cluster (see ``RayBackend``); called by ``fit``."""
        if wait:
            if job_name is not None:
                raise ValueError("job_name names a training job; it needs fit(wait=False)")
            from ._distributed import fit_distributed

            return fit_distributed(estimator, X, y, sample_weight, self)
        from ._jobs import submit_training_job

        estimator.training_job_ = submit_training_job(estimator, X, y, sample_weight, self,
                                                      job_name=job_name)
        return estimator


@functools.lru_cache(maxsize=8)
def _job_client(dashboard_url: str | None):
    from ray.job_submission import JobSubmissionClient

    return JobSubmissionClient(dashboard_url)


def resolve_backend(value) -> RayBackend:
    """The Ray backend ``value`` stands for ("ray", None or a RayBackend)."""
    if value is None or (isinstance(value, str) and value == "ray"):
        return RayBackend()
    if isinstance(value, RayBackend):
        return value
    raise ValueError(f"backend must be 'ray' or a skmk.remote.RayBackend here, got {value!r}")

