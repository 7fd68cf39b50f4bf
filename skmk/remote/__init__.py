"""Running skmk estimators on a Ray cluster: backends, distributed fit, jobs, artifacts.

Nothing here imports Ray at import time; Ray is imported when a cluster is first used.

* :class:`RayBackend` — the ``backend`` parameter value that names a cluster.
* :class:`TrainingJob`, :func:`attach` — training jobs submitted by ``fit(..., wait=False)``.
* :func:`save_model`, :func:`load_model` — model artifacts with a checksummed manifest.

See docs/remote.md.
"""

from importlib import import_module

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


def __getattr__(name):
    if name in _PUBLIC:
        value = getattr(import_module(_PUBLIC[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'skmk.remote' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
