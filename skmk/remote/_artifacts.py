"""Model artifacts: a model file plus a manifest, in a local directory or any fsspec URL.

An artifact directory holds ``model.pkl`` (the pickled fitted estimator) and ``manifest.json``:
the estimator class, its SageMaker hyperparameters, the versions of skmk and the libraries that
built it, metrics, and the sha256 of every file. The manifest is written last, and an existing
one is removed before anything else is rewritten, so a directory without a manifest is never a
finished model — a training job that died half-way leaves exactly that. Loading verifies every
checksum before unpickling.

Artifacts are pickles: load only from stores you trust.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import pickle
import platform
import sys
import tempfile
import time
from importlib.metadata import PackageNotFoundError, version
from numbers import Integral, Real
from pathlib import Path

from sklearn.utils.validation import check_is_fitted

__all__ = ["ArtifactError", "load_model", "read_manifest", "save_model"]

MANIFEST = "manifest.json"
MODEL_FILE = "model.pkl"
FORMAT = "skmk-model/1"
#: Libraries whose versions a manifest records (those that decide what a model computes).
_LIBRARIES = ("numpy", "scipy", "scikit-learn", "faiss-cpu", "joblib", "threadpoolctl")


class ArtifactError(ValueError):
    """An artifact that cannot be trusted: a checksum mismatch, a bad manifest, another class."""


# -- storage: local paths without fsspec, URLs through it ----------------------------------------

def join(base: str, *names: str) -> str:
    """``base/name/...`` for a local path or a URL."""
    return "/".join([str(base).rstrip("/"), *names])


def _is_url(location: str) -> bool:
    return "://" in location


def read_bytes(location: str) -> bytes:
    if _is_url(location):
        import fsspec

        with fsspec.open(location, "rb") as stream:
            return stream.read()
    return Path(location).read_bytes()


def write_bytes(location: str, data: bytes) -> None:
    """Write a whole file; a local file appears complete or not at all (rename into place),
    as an object PUT does on S3."""
    if _is_url(location):
        import fsspec

        fs, path = fsspec.core.url_to_fs(location)
        fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        fs.pipe_file(path, data)
        return
    target = Path(location)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def exists(location: str) -> bool:
    if _is_url(location):
        import fsspec

        fs, path = fsspec.core.url_to_fs(location)
        return fs.exists(path)
    return Path(location).exists()


def remove(location: str) -> None:
    if _is_url(location):
        import fsspec

        fs, path = fsspec.core.url_to_fs(location)
        if fs.exists(path):
            fs.rm_file(path)
        return
    Path(location).unlink(missing_ok=True)


# -- saving ---------------------------------------------------------------------------------------

def class_path(cls) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def import_class(path: str):
    module, _, name = path.partition(":")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as error:
        raise ArtifactError(f"estimator class {path!r} cannot be imported: {error}") from None


def library_versions() -> dict[str, str]:
    from .. import __version__

    versions = {"skmk": __version__, "python": platform.python_version()}
    for package in _LIBRARIES:
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            continue
    if "ray" in sys.modules:
        versions["ray"] = sys.modules["ray"].__version__
    return versions


def model_metrics(estimator) -> dict[str, float]:
    """The scalar fitted attributes of a model (``inertia_``, ``coreset_loss_``,
    ``n_samples_fit_``, ...), by name without the trailing underscore."""
    metrics = {}
    for name, value in vars(estimator).items():
        if (name.endswith("_") and isinstance(value, (Integral, Real))
                and not isinstance(value, bool)):
            metrics[name[:-1]] = value.item() if hasattr(value, "item") else value
    return metrics


def save_model(estimator, url: str, *, metrics: dict | None = None,
               job: dict | None = None) -> str:
    """Write a fitted estimator to ``url`` as ``model.pkl`` and, last, ``manifest.json``.

    Parameters
    ----------
    estimator : fitted StreamingKMeans or ApproxKNN
    url : str
        A directory or fsspec URL (``s3://bucket/prefix/model-1``); created if needed.
    metrics : dict, default=None
        Extra metrics (e.g. fit seconds), added to the model's own (:func:`model_metrics`).
    job : dict, default=None
        What the training job was (name, workers), kept in the manifest.

    Returns
    -------
    url : str
    """
    check_is_fitted(estimator)
    manifest_url = join(url, MANIFEST)
    # A manifest left by an earlier save would vouch for files about to change: it goes first.
    remove(manifest_url)
    model = _without_job(estimator)
    payload = pickle.dumps(model, protocol=5)
    write_bytes(join(url, MODEL_FILE), payload)
    wire_params = {name for name, hp in type(model)._hyperparameters.items() if hp.on_wire}
    manifest = {
        "format": FORMAT,
        "estimator": class_path(type(model)),
        "hyperparameters": model.to_hyperparameters(),
        # Local-only parameters a model keeps (verbose); the backend is the loader's choice.
        "params": {name: value for name, value in model.get_params(deep=False).items()
                   if name not in wire_params and name != "backend"
                   and isinstance(value, (int, float, str, type(None)))},
        "versions": library_versions(),
        "metrics": {**model_metrics(model), **(metrics or {})},
        "files": {MODEL_FILE: {"sha256": hashlib.sha256(payload).hexdigest(),
                               "bytes": len(payload)}},
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if job is not None:
        manifest["job"] = job
    write_bytes(manifest_url, json.dumps(manifest, indent=2, sort_keys=True).encode())
    return url


def _without_job(estimator):
    if "training_job_" not in vars(estimator):
        return estimator
    import copy

    model = copy.copy(estimator)
    del model.training_job_
    return model


# -- loading --------------------------------------------------------------------------------------

def read_manifest(url: str) -> dict:
    """The manifest of the finished artifact at ``url``.

    Raises
    ------
    FileNotFoundError
        No manifest: nothing was saved there, or the save (the job) did not finish.
    ArtifactError
        A manifest that is not skmk's.
    """
    location = join(url, MANIFEST)
    try:
        text = read_bytes(location)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"no finished model artifact at {url}: {MANIFEST} is missing (nothing was saved "
            "there, or the training job has not finished or failed)") from None
    try:
        manifest = json.loads(text)
    except ValueError as error:
        raise ArtifactError(f"{location} is not valid JSON: {error}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ArtifactError(f"{location} is not an skmk model manifest (format {FORMAT!r})")
    return manifest


def load_model(url: str, *, estimator_class=None, **params):
    """The fitted estimator saved at ``url``, after checking every file's sha256.

    The estimator is rebuilt from the manifest's SageMaker hyperparameters
    (``from_hyperparameters``), then given the fitted attributes of the saved model.

    Parameters
    ----------
    url : str
        Artifact directory or fsspec URL.
    estimator_class : type, default=None
        The class expected (e.g. ``StreamingKMeans`` when called by its ``attach``); a model of
        another class raises ``ArtifactError``.
    **params
        Parameters that are not SageMaker hyperparameters, e.g. ``backend``.

    Returns
    -------
    estimator : StreamingKMeans or ApproxKNN, fitted
    """
    manifest = read_manifest(url)
    cls = import_class(manifest["estimator"])
    if estimator_class is not None and not issubclass(cls, estimator_class):
        raise ArtifactError(f"the model at {url} is a {cls.__name__}, not a "
                            f"{estimator_class.__name__}")
    contents = {}
    for name, entry in manifest["files"].items():
        data = read_bytes(join(url, name))
        digest = hashlib.sha256(data).hexdigest()
        if digest != entry["sha256"]:
            raise ArtifactError(f"checksum mismatch for {name} in {url}: the manifest says "
                                f"sha256 {entry['sha256']}, the file has {digest} "
                                f"({len(data)} bytes, {entry['bytes']} expected)")
        contents[name] = data
    saved = pickle.loads(contents[MODEL_FILE])
    if type(saved) is not cls:
        raise ArtifactError(f"{MODEL_FILE} in {url} holds a {type(saved).__name__}, the "
                            f"manifest says {manifest['estimator']}")
    estimator = cls.from_hyperparameters(manifest["hyperparameters"],
                                         **{**manifest.get("params", {}), **params})
    for name, value in vars(saved).items():
        if name.endswith("_") and not name.startswith("__"):
            setattr(estimator, name, value)
    return estimator
