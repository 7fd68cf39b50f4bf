"""SageMaker's inference formats: request bodies to arrays, predictions to response bodies.

One codec for the endpoint (``_serve.py``) and batch transform (``_batch_transform.py``); pure
Python and numpy, no Ray. The formats are those of SageMaker's built-in k-means and k-NN:

Requests (``Content-Type``)
    ``text/csv``: one row per line, no header (``label_size=N`` drops N leading columns);
    ``application/json``: ``{"instances": [...]}`` whose items are ``[x, ...]``,
    ``{"features": [x, ...]}`` or ``{"data": {"features": {"values": [...]}}}`` (with ``keys``
    and ``shape`` for a sparse row), or one such item alone;
    ``application/jsonlines``: one item per line;
    ``application/x-recordio-protobuf``: Record protobufs, features under ``"values"``.

Responses (``Accept``)
    ``application/json``: ``{"predictions": [{"closest_cluster": 1.0, ...}, ...]}``;
    ``application/jsonlines``: one prediction object per line;
    ``text/csv``: one line per row, the columns in order (a k-NN ``verbose`` row is the label,
    then k labels, then k distances);
    ``application/x-recordio-protobuf``: one Record per row, each column a label key.

``Accept: application/json; verbose=true`` asks a k-NN model for the neighbours' ``labels``
and ``distances`` too.

Errors are :class:`CodecError` subclasses carrying the HTTP status a server answers with.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .._kernels import parse_csv
from ..io._protobuf import encode_bytes, encode_record, encode_tensor
from ..io._recordio import RecordIOError, decode_payload, frame

CSV = "text/csv"
JSON = "application/json"
JSONLINES = "application/jsonlines"
RECORDIO = "application/x-recordio-protobuf"

#: Media types accepted as requests and offered as responses, with common spellings.
MEDIA_TYPES = {
    CSV: CSV, "text/x-csv": CSV, "application/csv": CSV,
    JSON: JSON,
    JSONLINES: JSONLINES, "application/jsonl": JSONLINES, "application/x-jsonlines": JSONLINES,
    "application/x-ndjson": JSONLINES,
    RECORDIO: RECORDIO, "application/x-protobuf": RECORDIO,
}

#: SageMaker's default payload limit for real-time endpoints (6 MB).
DEFAULT_MAX_BYTES = 6 * 2**20


class CodecError(ValueError):
    """A request the codec cannot turn into rows; ``status`` is the HTTP answer (400)."""

    status = 400


class UnsupportedMediaType(CodecError):
    """The request's Content-Type is not one of the formats (HTTP 415)."""

    status = 415


class NotAcceptable(CodecError):
    """No format of the request's Accept header can be produced (HTTP 406)."""

    status = 406


class PayloadTooLarge(CodecError):
    """The request body exceeds the size limit (HTTP 413)."""

    status = 413


def parse_media_type(value: str | None) -> tuple[str, dict[str, str]]:
    """``"text/csv; label_size=1"`` → ``("text/csv", {"label_size": "1"})``, lower-cased."""
    if not value:
        return "", {}
    kind, *params = value.split(";")
    parsed = {}
    for param in params:
        key, _, val = param.partition("=")
        if key.strip():
            parsed[key.strip().lower()] = val.strip().strip('"')
    return kind.strip().lower(), parsed


# -- requests -------------------------------------------------------------------------------------

def decode(body: bytes, content_type: str | None, *, n_features: int | None = None,
           dtype=np.float64, max_bytes: int | None = DEFAULT_MAX_BYTES):
    """A request body as a 2-D array of rows.

    Parameters
    ----------
    body : bytes
        The request body.
    content_type : str
        Its media type, with parameters (``text/csv; label_size=1``). Missing means CSV, as
        SageMaker assumes.
    n_features : int, default=None
        The model's number of features; rows of another width are a :class:`CodecError`.
    dtype : {numpy.float32, numpy.float64}, default=numpy.float64
        Dtype of the result (the model's, so that prediction converts nothing).
    max_bytes : int or None, default=6 MB
        Larger bodies raise :class:`PayloadTooLarge`.

    Returns
    -------
    X : ndarray of shape (n_rows, n_features), or CSR matrix for sparse rows
        Finite values of ``dtype``.
    """
    if max_bytes is not None and len(body) > max_bytes:
        raise PayloadTooLarge(f"request body of {len(body)} bytes exceeds the limit of "
                              f"{max_bytes} bytes")
    kind, params = parse_media_type(content_type)
    media = MEDIA_TYPES.get(kind or CSV)
    if media is None:
        raise UnsupportedMediaType(f"unsupported Content-Type {content_type!r}; use one of "
                                   f"{CSV}, {JSON}, {JSONLINES}, {RECORDIO}")
    if not (body if media == RECORDIO else body.strip()):
        raise CodecError("empty request body: no rows to predict")
    return decode_array(_DECODERS[media](body, params), n_features=n_features, dtype=dtype)


def decode_array(X, *, n_features: int | None = None, dtype=np.float64):
    """Rows already parsed (a Parquet batch, a decoded body) checked as :func:`decode` checks
    them: 2-D, non-empty, ``n_features`` wide, finite; converted to ``dtype``."""
    if sp.issparse(X):
        X = sp.csr_matrix(X, dtype=dtype)
        values = X.data
    else:
        X = np.ascontiguousarray(X, dtype=dtype)
        values = X
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise CodecError(f"no rows of features in the request (shape {X.shape})")
    if n_features is not None and X.shape[1] != n_features:
        raise CodecError(f"rows have {X.shape[1]} features; the model expects {n_features}")
    if not np.isfinite(values).all():
        row = int(np.nonzero(~np.isfinite(X.toarray() if sp.issparse(X) else X))[0][0])
        raise CodecError(f"row {row} holds NaN or infinity")
    return X


def _decode_csv(body: bytes, params: dict) -> np.ndarray:
    try:
        label_size = int(params.get("label_size", 0))
    except ValueError:
        raise CodecError(f"label_size must be an integer, got {params['label_size']!r}") from None
    # The compiled parser reads clean numeric bodies (7x numpy's split-and-convert on a
    # 784-feature row, 3x pandas' C parser on a thousand rows); anything else goes through the
    # line-by-line parser, which finds and names the problem.
    X = parse_csv(body)
    if X is None:
        X = _parse_csv_lines(_text(body, "CSV"))
    if label_size:
        if not 0 <= label_size < X.shape[1]:
            raise CodecError(f"label_size={label_size} leaves no features in {X.shape[1]} "
                             "columns")
        X = X[:, label_size:]
    return X


def _parse_csv_lines(text: str) -> np.ndarray:
    lines = [line for line in text.splitlines() if line.strip()]
    widths = {line.count(",") for line in lines}
    if len(widths) > 1:
        width = lines[0].count(",")
        bad = next(i for i, line in enumerate(lines) if line.count(",") != width)
        raise CodecError(f"malformed CSV: line {bad + 1} has {lines[bad].count(',') + 1} "
                         f"columns, line 1 has {width + 1}")
    # One flat split and numpy's string-to-float conversion: the fastest parser for the
    # one-row requests an endpoint mostly sees.
    cells = ",".join(lines).split(",")
    try:
        return np.array(cells, dtype=np.float64).reshape(len(lines), -1)
    except ValueError:
        bad = next(cell for cell in cells if not _is_number(cell))
        raise CodecError(f"malformed CSV: {bad.strip()!r} is not a number") from None


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _text(body: bytes, what: str) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise CodecError(f"malformed {what}: not UTF-8 text ({error})") from None


def _decode_json(body: bytes, params: dict):
    try:
        document = json.loads(body)
    except ValueError as error:
        raise CodecError(f"malformed JSON: {error}") from None
    if isinstance(document, dict) and "instances" in document:
        instances = document["instances"]
        if not isinstance(instances, list):
            raise CodecError('malformed JSON: "instances" must be a list')
    elif isinstance(document, dict) or (isinstance(document, list) and document
                                        and not isinstance(document[0], (dict, list))):
        instances = [document]  # one instance alone
    elif isinstance(document, list):
        instances = document
    else:
        raise CodecError('malformed JSON: expected {"instances": [...]}, a list of rows or '
                         "one instance")
    return _rows([_instance(item, i) for i, item in enumerate(instances)])


def _decode_jsonlines(body: bytes, params: dict):
    items = []
    for number, line in enumerate(_text(body, "JSON Lines").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            items.append(_instance(json.loads(line), number - 1))
        except ValueError as error:
            if isinstance(error, CodecError):
                raise
            raise CodecError(f"malformed JSON Lines: line {number}: {error}") from None
    return _rows(items)


def _instance(item, index: int):
    """One JSON instance → a list of numbers (dense) or (values, keys, width) (sparse)."""
    if isinstance(item, list):
        return item
    if isinstance(item, dict):
        if "features" in item:
            features = item["features"]
            if isinstance(features, list):
                return features
        elif isinstance(item.get("data"), dict) and isinstance(item["data"].get("features"),
                                                                 dict):
            tensor = item["data"]["features"]
            values = tensor.get("values")
            if isinstance(values, list):
                keys = tensor.get("keys")
                if not keys:
                    return values
                shape = tensor.get("shape")
                if not (isinstance(shape, list) and len(shape) == 1
                        and isinstance(keys, list) and len(keys) == len(values)):
                    raise CodecError(f"instance {index}: a sparse row needs as many keys as "
                                     "values and a one-element shape")
                return values, keys, shape[0]
    raise CodecError(f'instance {index} is not [x, ...], {{"features": [...]}} or '
                     '{"data": {"features": {"values": [...]}}}')


def _rows(items: list):
    if not items:
        raise CodecError("no instances in the request")
    if not any(isinstance(item, tuple) for item in items):
        width = len(items[0])
        if any(len(row) != width for row in items):
            bad = next(i for i, row in enumerate(items) if len(row) != width)
            raise CodecError(f"instance {bad} has {len(items[bad])} features, instance 0 has "
                             f"{width}")
        return _numbers(items)
    # Sparse rows (dense ones among them become sparse rows of every column).
    widths = {item[2] if isinstance(item, tuple) else len(item) for item in items}
    if len(widths) > 1:
        raise CodecError(f"instances have different numbers of features: {sorted(widths)}")
    width = widths.pop()
    data, indices, indptr = [], [], [0]
    for item in items:
        values, keys = (item[0], item[1]) if isinstance(item, tuple) else (item, range(width))
        data.extend(values)
        indices.extend(keys)
        indptr.append(len(indices))
    indices = _numbers(indices, np.int64)
    if indices.size and (indices.min() < 0 or indices.max() >= width):
        raise CodecError(f"a sparse key lies outside [0, {width})")
    return sp.csr_matrix((_numbers(data), indices, indptr), shape=(len(items), width))


def _numbers(values, dtype=np.float64) -> np.ndarray:
    try:
        return np.array(values, dtype=dtype)
    except (TypeError, ValueError) as error:
        raise CodecError(f"features must be numbers: {error}") from None


def _decode_recordio(body: bytes, params: dict):
    try:
        return decode_payload(body, name="request").X
    except RecordIOError as error:
        raise CodecError(f"malformed RecordIO-protobuf: {error}") from None


_DECODERS = {CSV: _decode_csv, JSON: _decode_json, JSONLINES: _decode_jsonlines,
             RECORDIO: _decode_recordio}


# -- responses ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Accept:
    """The response format chosen from an Accept header."""

    media_type: str
    verbose: bool = False


def negotiate(accept: str | None, default: str = JSON) -> Accept:
    """The first producible format of an Accept header (by ``q``, then order).

    Missing, ``*/*`` and ``application/*`` give ``default``. ``verbose=true`` on the chosen
    type asks for the k-NN neighbours. Raises :class:`NotAcceptable` when nothing fits.
    """
    if not accept or not accept.strip():
        return Accept(default)
    ranked = []
    for position, part in enumerate(accept.split(",")):
        kind, params = parse_media_type(part)
        try:
            quality = float(params.get("q", 1))
        except ValueError:
            quality = 1.0
        ranked.append((-quality, position, kind, params))
    for quality, _, kind, params in sorted(ranked):
        if quality == 0:
            continue
        media = default if kind in ("*/*", "application/*", "*") else MEDIA_TYPES.get(kind)
        if media is not None:
            return Accept(media, params.get("verbose", "").lower() in ("true", "1", "yes"))
    raise NotAcceptable(f"cannot answer in {accept!r}; offered: {CSV}, {JSON}, {JSONLINES}, "
                        f"{RECORDIO}")


def encode(predictions: Mapping[str, np.ndarray], accept: str | Accept | None
           ) -> tuple[bytes, str]:
    """Predictions as a response body.

    Parameters
    ----------
    predictions : mapping of str to ndarray
        Columns in output order, each of shape (n_rows,) or (n_rows, k):
        ``closest_cluster`` and ``distance_to_cluster``, or ``predicted_label`` (and
        ``labels``, ``distances``).
    accept : str or Accept
        The Accept header, or a format already chosen by :func:`negotiate`.

    Returns
    -------
    body : bytes
    content_type : str
    """
    if not isinstance(accept, Accept):
        accept = negotiate(accept)
    return _ENCODERS[accept.media_type](predictions), accept.media_type


def _rows_of(predictions: Mapping[str, np.ndarray]) -> tuple[list[str], list[tuple]]:
    names = list(predictions)
    return names, list(zip(*(_plain(predictions[name]) for name in names)))


def _plain(column: np.ndarray) -> list:
    """Python values of a column; float32 as its shortest decimal (2.3, not 2.2999999523)."""
    column = np.asarray(column)
    if column.dtype == np.float32:
        return column.astype(str).astype(np.float64).tolist()
    return column.tolist()


def _encode_json(predictions) -> bytes:
    names, rows = _rows_of(predictions)
    objects = [dict(zip(names, row)) for row in rows]
    return json.dumps({"predictions": objects}, separators=(",", ":")).encode()


def _encode_jsonlines(predictions) -> bytes:
    names, rows = _rows_of(predictions)
    dumps = json.JSONEncoder(separators=(",", ":")).encode
    return "".join(dumps(dict(zip(names, row))) + "\n" for row in rows).encode()


def _encode_csv(predictions) -> bytes:
    _, rows = _rows_of(predictions)
    out = io.StringIO()
    for row in rows:
        cells = []
        for value in row:
            if isinstance(value, list):
                cells.extend(map(str, value))
            else:
                cells.append(str(value))
        out.write(",".join(cells))
        out.write("\n")
    return out.getvalue().encode()


def _tensor(values: np.ndarray) -> tuple[int, bytes]:
    values = np.atleast_1d(values)
    if values.dtype.kind in "iub":
        return encode_tensor(values.astype(np.float32))
    if values.dtype in (np.float32, np.float64):
        return encode_tensor(values)
    return encode_bytes([str(value).encode("utf-8") for value in values])


def _encode_recordio(predictions) -> bytes:
    n_rows = len(next(iter(predictions.values())))
    columns = {name: np.asarray(column) for name, column in predictions.items()}
    return b"".join(frame(encode_record(None, {name: _tensor(column[i])
                                               for name, column in columns.items()}))
                    for i in range(n_rows))


_ENCODERS = {CSV: _encode_csv, JSON: _encode_json, JSONLINES: _encode_jsonlines,
             RECORDIO: _encode_recordio}


# -- reading responses (the client side) ----------------------------------------------------------

def decode_predictions(body: bytes, content_type: str) -> dict[str, np.ndarray]:
    """A JSON, JSON Lines or RecordIO-protobuf response back into columns (the inverse of
    :func:`encode`; CSV carries no column names and is not read back)."""
    media = MEDIA_TYPES.get(parse_media_type(content_type)[0])
    if media == JSON:
        objects = json.loads(body)["predictions"]
    elif media == JSONLINES:
        objects = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
    elif media == RECORDIO:
        from ..io._protobuf import decode_record
        from ..io._recordio import iter_payloads

        objects = []
        for _, _, payload in iter_payloads(io.BytesIO(body), "response"):
            _, label = decode_record(payload)
            objects.append({name: _label_value(value) for name, value in label.items()})
    else:
        raise UnsupportedMediaType(f"cannot read predictions from {content_type!r}")
    if not objects:
        return {}
    return {name: np.asarray([obj[name] for obj in objects]) for name in objects[0]}


def _label_value(value):
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return value.values[0] if value.values.size == 1 else value.values
