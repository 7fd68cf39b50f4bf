"""The Ray Serve deployment behind an endpoint: SageMaker's ``/ping`` and ``/invocations``.

Imported only by :func:`skmk.remote._endpoint.deploy` (it imports Ray). A replica loads the
model once in ``__init__``; ``__call__`` takes the Starlette request, decodes it with the shared
codec, predicts and encodes. Requests of a few rows are batched across clients with
``@serve.batch``: the rows of every request waiting at that moment are stacked and predicted in
one kernel call, so the model's cost per request is a slice of one call, not a call.
"""

from __future__ import annotations

import hmac
import inspect
import pickle

from ray import serve
from starlette.requests import Request
from starlette.responses import Response

from . import _codec
from ._predictor import Predictor, as_batch

#: Requests with more rows than this are predicted on their own, outside the batch queue:
#: batching buys nothing once a request fills a kernel call by itself.
BATCH_ROWS = 256


def bind_replica_grpc_to_node_ip() -> None:
    """Make this replica's internal gRPC server listen on the node's IP, not every interface.

    Ray Serve replicas open an inter-deployment gRPC server on ``[::]:0``; callers reach it at
    the replica's node IP, so binding that address alone changes nothing for Serve and keeps a
    loopback cluster off the network. Called in the replica, before Serve starts that server;
    a Ray without this hook is left as it is.
    """
    try:
        import ray
        from ray.serve._private import replica
    except ImportError:  # pragma: no cover - a Ray without the private module
        return
    original = getattr(replica, "add_port_to_grpc_server", None)
    if original is None or getattr(original, "_skmk_node_ip", False):
        return
    node_ip = ray.util.get_node_ip_address()

    def add_port(server, address: str):
        if address.startswith("[::]:"):
            address = f"{node_ip}:{address.rsplit(':', 1)[1]}"
        return original(server, address)

    add_port._skmk_node_ip = True
    replica.add_port_to_grpc_server = add_port


def _signature_computed_once(function):
    """Give ``function`` its ``__signature__``, which ``inspect.signature`` returns at once.

    Serve's batch wrapper binds each call's arguments to the wrapped function's signature, and
    computes that signature anew on every request: about 40 µs of a single-row request that
    otherwise costs about 50 µs in all."""
    function.__signature__ = inspect.signature(function)
    return function


def load_model(model):
    """The estimator from what ``deploy`` ships: pickled bytes, or a path/URL of a pickle."""
    if isinstance(model, (bytes, bytearray, memoryview)):
        return pickle.loads(model)
    if isinstance(model, str):
        import fsspec

        with fsspec.open(model, "rb") as stream:
            return pickle.load(stream)
    return model


def _rows(arrays: list) -> int:
    return sum(array.shape[0] for array in arrays)


class ModelServer:
    """A replica serving one fitted StreamingKMeans or ApproxKNN.

    Parameters
    ----------
    model : bytes, str or estimator
        The pickled estimator, a path or fsspec URL of one, or the estimator itself.
    token : str, default=None
        When set, every request must carry ``Authorization: Bearer <token>`` (else 401).
    max_body_bytes : int, default=6 MB
        Larger request bodies are answered with 413.
    max_batch_rows : int, default=BATCH_ROWS
        Rows stacked into one prediction at most.
    batch_wait_timeout_s : float, default=0.0
        How long a batch waits for more requests. 0 takes whatever is queued: under load the
        queue fills while the previous batch computes, and an idle endpoint adds no latency.
    """

    def __init__(self, model, *, token: str | None = None,
                 max_body_bytes: int = _codec.DEFAULT_MAX_BYTES,
                 max_batch_rows: int = BATCH_ROWS, batch_wait_timeout_s: float = 0.0):
        bind_replica_grpc_to_node_ip()
        self.predictor = Predictor(load_model(model))
        self._token = None if token is None else f"Bearer {token}".encode()
        self._max_body_bytes = max_body_bytes
        self._max_batch_rows = max_batch_rows
        self._predict_batch.set_max_batch_size(max_batch_rows)
        self._predict_batch.set_batch_wait_timeout_s(batch_wait_timeout_s)

    def _authorized(self, request: Request) -> bool:
        if self._token is None:
            return True
        given = request.headers.get("authorization", "").encode()
        return hmac.compare_digest(given, self._token)

    async def __call__(self, request: Request) -> Response:
        path = request.scope.get("path", "")[len(request.scope.get("root_path", "")):]
        path = path.rstrip("/") or "/"
        if not self._authorized(request):
            return _error(401, "missing or wrong bearer token", {"WWW-Authenticate": "Bearer"})
        if path == "/ping":
            if request.method not in ("GET", "HEAD"):
                return _error(405, "use GET /ping", {"Allow": "GET"})
            return Response(b"", status_code=200)
        if path != "/invocations":
            return _error(404, f"no route {path}; use GET /ping or POST /invocations")
        if request.method != "POST":
            return _error(405, "use POST /invocations", {"Allow": "POST"})
        return await self._invoke(request)

    async def _invoke(self, request: Request) -> Response:
        headers = request.headers
        try:
            declared = int(headers.get("content-length", 0))
        except ValueError:
            return _error(400, "Content-Length is not an integer")
        try:
            if declared > self._max_body_bytes:  # refuse before reading the body
                raise _codec.PayloadTooLarge(
                    f"request body of {declared} bytes exceeds the limit of "
                    f"{self._max_body_bytes} bytes")
            accept = _codec.negotiate(headers.get("accept"))
            X = _codec.decode(await request.body(), headers.get("content-type"),
                              n_features=self.predictor.n_features, dtype=self.predictor.dtype,
                              max_bytes=self._max_body_bytes)
            if X.shape[0] <= self._max_batch_rows:
                predictions = await self._predict_batch(X)
            else:
                predictions = self.predictor(X, verbose=True)
            if not accept.verbose:
                predictions.pop("labels", None)
                predictions.pop("distances", None)
            body, content_type = _codec.encode(predictions, accept)
        except _codec.CodecError as error:
            return _error(error.status, str(error))
        except ValueError as error:  # the model refused the rows (e.g. a sparse k-NN query)
            return _error(400, str(error))
        return Response(body, media_type=content_type)

    @serve.batch(max_batch_size=BATCH_ROWS, batch_wait_timeout_s=0.0, batch_size_fn=_rows)
    @_signature_computed_once
    async def _predict_batch(self, arrays: list) -> list[dict]:
        # Verbose columns are computed for every k-NN batch (they come with the search); each
        # request drops what it did not ask for.
        predictions = self.predictor(as_batch(arrays), verbose=True)
        return self.predictor.split(predictions, [array.shape[0] for array in arrays])


def _error(status: int, message: str, headers: dict | None = None) -> Response:
    return Response(message + "\n", status_code=status, media_type="text/plain",
                    headers=headers)


#: The Serve deployment; ``deploy`` sets its name, replicas and resources with ``.options``.
ModelDeployment = serve.deployment(ModelServer, name="skmk-model")
