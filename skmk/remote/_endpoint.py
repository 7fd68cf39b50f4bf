"""Deploy a fitted model as a Ray Serve application, and the client-side :class:`Endpoint`.

``deploy`` ships the pickled estimator to Serve replicas (``_serve.ModelServer``) behind Serve's
HTTP proxy, bound to 127.0.0.1 unless ``host`` says otherwise. The :class:`Endpoint` it returns
speaks SageMaker's inference contract over plain HTTP (no Ray needed to predict), and uses Ray
only to update or delete the application.
"""

from __future__ import annotations

import math
import os
import pickle
import urllib.error
import urllib.request

import numpy as np
import scipy.sparse as sp

from . import _codec
from ._predictor import Predictor

#: Serve's HTTP proxy binds here unless the caller says otherwise: never every interface.
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


class EndpointError(RuntimeError):
    """An endpoint answered with an HTTP error; ``status`` and the server's message."""

    def __init__(self, status: int, message: str):
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message


def _connect(address: str | None):
    import ray

    if not ray.is_initialized():
        # Ray reads this before it starts anything: keep a laptop cluster on loopback.
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        ray.init(address=address, ignore_reinit_error=True, log_to_driver=False)
    return ray


def _application(model_bytes: bytes, options: dict):
    from ._serve import ModelDeployment

    deployment_options = {"ray_actor_options": {"num_cpus": options["num_cpus"]},
                          "max_ongoing_requests": options["max_ongoing_requests"]}
    if options["autoscaling"] is not None:
        deployment_options["autoscaling_config"] = options["autoscaling"]
    else:
        deployment_options["num_replicas"] = options["num_replicas"]
    return ModelDeployment.options(**deployment_options).bind(
        model_bytes, token=options["token"], max_body_bytes=options["max_body_bytes"],
        max_batch_rows=options["max_batch_rows"],
        batch_wait_timeout_s=options["batch_wait_timeout_s"])


def _run(name: str, route_prefix: str, model, options: dict) -> None:
    from ray import serve

    serve.run(_application(pickle.dumps(model), options), name=name, route_prefix=route_prefix)


def _fitted(model):
    """The estimator to serve: ``model`` itself, or the one saved at an artifact URL (a training
    job's ``<store>/<job>`` or a ``save_model`` directory), loaded here so that its checksums
    are verified before any replica starts."""
    if isinstance(model, (str, os.PathLike)):
        from ._artifacts import load_model

        return load_model(os.fspath(model))
    return model


def deploy(model, *, name: str = "skmk", num_replicas: int = 1, autoscaling: dict | None = None,
           address: str | None = None, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
           route_prefix: str | None = None, token: str | None = None, num_cpus: float = 0.5,
           max_body_bytes: int = _codec.DEFAULT_MAX_BYTES, max_batch_rows: int = 256,
           batch_wait_timeout_s: float = 0.0, max_ongoing_requests: int = 64) -> Endpoint:
    """Serve a fitted model over HTTP with SageMaker's inference contract (Ray Serve).

    Parameters
    ----------
    model : StreamingKMeans, ApproxKNN or str
        A fitted estimator, or the URL of a model artifact (a training job's
        ``training_job_.artifact_url``, a ``save_model`` directory), verified against its
        manifest's checksums; replicas receive the estimator pickled.
    name : str, default="skmk"
        Serve application name; deploying the same name again replaces the application.
    num_replicas : int, default=1
        Replicas when ``autoscaling`` is None.
    autoscaling : dict, default=None
        Serve's ``autoscaling_config`` (``min_replicas``, ``max_replicas``,
        ``target_ongoing_requests``, ...) instead of a fixed replica count.
    address : str, default=None
        Ray cluster address for ``ray.init`` when not connected yet (None: ``RAY_ADDRESS``, or
        a new local cluster).
    host, port : str and int, default="127.0.0.1" and 8000
        Where Serve's HTTP proxy listens, if this call starts Serve on the cluster. A running
        Serve keeps its own options; the endpoint's ``url`` reports where it really listens.
    route_prefix : str, default=None
        URL prefix of the application; None gives ``/<name>``. ``"/"`` serves ``/ping`` and
        ``/invocations`` at the root, as SageMaker does.
    token : str, default=None
        Bearer token every request must carry (``Authorization: Bearer <token>``), else 401.
    num_cpus : float, default=0.5
        CPUs each replica reserves (fractional, so small machines fit several).
    max_body_bytes : int, default=6 MB
        Request bodies above this get 413 (SageMaker's limit).
    max_batch_rows, batch_wait_timeout_s : int and float, default=256 and 0.0
        Server-side batching: rows stacked per prediction, and how long to wait for more.
    max_ongoing_requests : int, default=64
        Requests a replica takes at once (they meet in its batch queue).

    Returns
    -------
    endpoint : Endpoint
    """
    model = _fitted(model)
    Predictor(model)  # an unfitted or unservable model fails here, not in a replica's retries
    ray = _connect(address)
    from ray import serve

    serve.start(http_options={"host": host, "port": port})
    route_prefix = route_prefix or f"/{name}"
    options = {"num_replicas": num_replicas, "autoscaling": autoscaling, "token": token,
               "num_cpus": num_cpus, "max_body_bytes": max_body_bytes,
               "max_batch_rows": max_batch_rows, "batch_wait_timeout_s": batch_wait_timeout_s,
               "max_ongoing_requests": max_ongoing_requests}
    _run(name, route_prefix, model, options)
    from ray.serve.context import _get_global_client

    http = _get_global_client().http_config
    listen = http.host if http.host not in ("0.0.0.0", "::", "") else DEFAULT_HOST
    url = f"http://{listen}:{http.port}{route_prefix.rstrip('/')}"
    return Endpoint(url, token=token, name=name, route_prefix=route_prefix, options=options,
                    address=ray.get_runtime_context().gcs_address, model=model)


class Endpoint:
    """A deployed model: an HTTP client of its SageMaker-style API, and its lifecycle.

    Parameters
    ----------
    url : str
        Base URL; ``url + "/invocations"`` and ``url + "/ping"`` are the routes.
    token : str, default=None
        Bearer token sent with every request.
    name : str, default=None
        The Serve application (``update`` and ``delete`` need it).

    Attributes
    ----------
    url : str
    name : str or None
    """

    def __init__(self, url: str, *, token: str | None = None, name: str | None = None,
                 route_prefix: str | None = None, options: dict | None = None,
                 address: str | None = None, model=None, timeout: float = 60.0):
        self.url = url.rstrip("/")
        self.name = name
        self.timeout = timeout
        self._token, self._route_prefix = token, route_prefix
        self._options, self._address = options, address
        self._describe(model)

    def __repr__(self) -> str:
        return f"Endpoint(name={self.name!r}, url={self.url!r})"

    def _describe(self, model) -> None:
        """What the client needs to turn answers back into ``model.predict``'s output."""
        self._kind = None if model is None else \
            "kmeans" if hasattr(model, "cluster_centers_") else "knn"
        classes = getattr(model, "classes_", None)
        self._label_dtype = None if classes is None else classes.dtype

    # -- HTTP ------------------------------------------------------------------------------------

    def _request(self, route: str, body: bytes | None = None, headers: dict | None = None
                 ) -> tuple[bytes, str]:
        headers = dict(headers or {})
        if self._token is not None:
            headers["Authorization"] = f"Bearer {self._token}"
        request = urllib.request.Request(self.url + route, data=body, headers=headers,
                                         method="GET" if body is None else "POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as reply:
                return reply.read(), reply.headers.get("content-type", "")
        except urllib.error.HTTPError as error:
            raise EndpointError(error.code, error.read().decode(errors="replace").strip()) \
                from None

    def ping(self) -> bool:
        """True when the endpoint answers ``GET /ping`` with 200."""
        try:
            self._request("/ping")
        except (EndpointError, OSError):
            return False
        return True

    def invoke(self, body: bytes, content_type: str = _codec.CSV,
               accept: str = _codec.JSON) -> tuple[bytes, str]:
        """POST a raw body to ``/invocations``; returns (response body, its content type).

        Raises :class:`EndpointError` with the server's status and message on a 4xx/5xx.
        """
        return self._request("/invocations", body,
                             {"Content-Type": content_type, "Accept": accept})

    def predict_columns(self, X, *, verbose: bool = False) -> dict[str, np.ndarray]:
        """Every column the endpoint answers for X, as arrays.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_rows, n_features)
        verbose : bool, default=False
            k-NN: also the neighbours' ``labels`` and ``distances``, shape (n_rows, k).

        Returns
        -------
        columns : dict of str to ndarray
            ``closest_cluster`` and ``distance_to_cluster``, or ``predicted_label`` (and
            ``labels``, ``distances``), each with n_rows rows.
        """
        from ..io import to_bytes

        X = X.tocsr() if sp.issparse(X) else np.asarray(X)
        if X.ndim != 2 or X.shape[0] == 0:
            raise ValueError(f"X must be 2-D with at least one row, got shape {X.shape}")
        if X.dtype not in (np.float32, np.float64):
            X = X.astype(np.float64)
        accept = _codec.JSON + ("; verbose=true" if verbose else "")
        parts = []
        for start, stop in _chunks(X, self._max_body_bytes()):
            body, content_type = self.invoke(to_bytes(X[start:stop]), _codec.RECORDIO, accept)
            parts.append(_codec.decode_predictions(body, content_type))
        return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}

    def predict(self, X) -> np.ndarray:
        """What the model's ``predict`` returns, computed by the endpoint.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_rows, n_features)

        Returns
        -------
        y : ndarray of shape (n_rows,)
            k-means: closest cluster (int32); k-NN: predicted label (the classes' dtype when
            the endpoint was made by ``deploy``, else float64).
        """
        columns = self.predict_columns(X)
        if "closest_cluster" in columns:
            return columns["closest_cluster"].astype(np.int32)
        labels = columns["predicted_label"]
        if self._label_dtype is not None and labels.dtype != self._label_dtype:
            labels = labels.astype(self._label_dtype)
        return labels

    def _max_body_bytes(self) -> int:
        return (self._options or {}).get("max_body_bytes", _codec.DEFAULT_MAX_BYTES)

    # -- lifecycle -------------------------------------------------------------------------------

    def update(self, model) -> Endpoint:
        """Serve ``model`` (an estimator or an artifact URL, as for ``deploy``) instead, under
        the same name and URL (Serve rolls the replicas)."""
        self._require_deployment("update")
        model = _fitted(model)
        Predictor(model)
        _connect(self._address)
        _run(self.name, self._route_prefix, model, self._options)
        self._describe(model)
        return self

    def delete(self) -> None:
        """Delete the Serve application; the URL stops answering."""
        self._require_deployment("delete")
        _connect(self._address)
        from ray import serve

        serve.delete(self.name)

    def _require_deployment(self, what: str) -> None:
        if self.name is None or self._options is None:
            raise RuntimeError(f"cannot {what} an Endpoint made from a URL alone; use the "
                               "Endpoint that deploy() returned")


def _chunks(X, max_bytes: int):
    """Row ranges whose RecordIO bodies stay well under ``max_bytes``."""
    n_rows = X.shape[0]
    if sp.issparse(X):
        per_row = 48 + 16 * X.nnz / max(n_rows, 1)  # value + key varint + framing
    else:
        per_row = 48 + X.shape[1] * X.dtype.itemsize
    step = max(1, min(n_rows, math.floor(0.8 * max_bytes / per_row)))
    return [(start, min(start + step, n_rows)) for start in range(0, n_rows, step)]
