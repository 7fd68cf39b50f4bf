"""Running skmk models elsewhere: Ray backends, training jobs, artifacts, endpoints (Ray Serve)
and batch transform.

Nothing here imports Ray at import time; each entry point imports it when it is called.

* :class:`RayBackend` — the ``backend`` parameter value that names a cluster: distributed fit.
* :class:`TrainingJob`, :func:`attach` — training jobs submitted by ``fit(..., wait=False)``.
* :func:`save_model`, :func:`load_model` — model artifacts with a checksummed manifest.
* ``deploy()`` / ``transformer()`` on the estimators — endpoints and batch transform.

See docs/remote.md and docs/serving.md.
"""

from .._lazy import lazy_exports

# public name -> module that defines it (imported on first use)
_PUBLIC = {
    "RayBackend": "skmk.remote._backend",
    "TrainingJob": "skmk.remote._jobs",
    "TrainingJobError": "skmk.remote._jobs",
    "attach": "skmk.remote._jobs",
    "ArtifactError": "skmk.remote._artifacts",
    "save_model": "skmk.remote._artifacts",
    "load_model": "skmk.remote._artifacts",
    "read_manifest": "skmk.remote._artifacts",
}

__all__ = sorted(_PUBLIC)

__getattr__, __dir__ = lazy_exports(globals(), _PUBLIC)
