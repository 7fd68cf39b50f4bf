"""Batch transform: a model's predictions for every file under a prefix, SageMaker's way.

Each input file gives one output file, ``<output prefix>/<path below the input prefix>.out``.
A file is cut into records by ``split_type`` (``"Line"``: lines of CSV or JSON Lines;
``"RecordIO"``: RecordIO-protobuf records; ``"None"``: the whole file), records are grouped into
requests by ``strategy`` (``"MultiRecord"``: as many as fit in ``max_payload_mb``;
``"SingleRecord"``: one each), and each request goes through the same codec as the endpoint:
decode, predict, encode in ``accept``. ``assemble_with="Line"`` ends every response with a
newline; ``"None"`` concatenates them as they are (RecordIO output). Parquet files are read in
row batches of at most ``max_payload_mb`` of float64 features (or single rows).

Files are processed by a pool of Ray Data actors, each loading the model once
(``backend="ray"``), or one after the other in this process (``backend="local"``). An output
appears complete or not at all: it is written under ``.partial`` and renamed at the end.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from . import _codec
from ._predictor import Predictor, as_batch

PARQUET = "application/x-parquet"

#: Input content type from a file's extension, when the caller gives none.
CONTENT_TYPES = {
    ".csv": _codec.CSV, ".json": _codec.JSON, ".jsonl": _codec.JSONLINES,
    ".jsonlines": _codec.JSONLINES, ".rec": _codec.RECORDIO, ".recordio": _codec.RECORDIO,
    ".pbr": _codec.RECORDIO, ".protobuf": _codec.RECORDIO, ".parquet": PARQUET,
    ".pq": PARQUET,
}
SPLIT_TYPES = ("Line", "RecordIO", "None")
STRATEGIES = ("MultiRecord", "SingleRecord")
ASSEMBLE_WITH = ("Line", "None")


@dataclass(frozen=True)
class TransformSpec:
    """How every file of a job is cut, predicted and written (SageMaker's job settings)."""

    content_type: str | None = None
    split_type: str = "Line"
    strategy: str = "MultiRecord"
    max_payload_mb: float = 6.0
    assemble_with: str = "Line"
    accept: str = _codec.JSONLINES

    def check(self) -> None:
        for name, value, allowed in (("split_type", self.split_type, SPLIT_TYPES),
                                     ("strategy", self.strategy, STRATEGIES),
                                     ("assemble_with", self.assemble_with, ASSEMBLE_WITH)):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
        if not self.max_payload_mb > 0:
            raise ValueError(f"max_payload_mb must be positive, got {self.max_payload_mb}")
        if self.content_type is not None and self.content_type != PARQUET:
            kind = _codec.parse_media_type(self.content_type)[0]
            if kind not in _codec.MEDIA_TYPES:
                raise ValueError(f"unsupported content_type {self.content_type!r}")
        _codec.negotiate(self.accept)

    @property
    def max_payload_bytes(self) -> int:
        return int(self.max_payload_mb * 2**20)


@dataclass
class FileResult:
    """What one input file gave: where its output went, records read, requests made."""

    input: str
    output: str
    records: int
    requests: int


# -- one file -------------------------------------------------------------------------------------

def _open(path: str, mode: str):
    if "://" in path:
        import fsspec

        return fsspec.open(path, mode).open()
    if "w" in mode:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    return open(path, mode)


def _rename(source: str, target: str) -> None:
    if "://" in target:
        import fsspec

        fs, path = fsspec.core.url_to_fs(source)
        fs.mv(path, fsspec.core.url_to_fs(target)[1])
    else:
        os.replace(source, target)


def _remove(path: str) -> None:
    if "://" in path:
        import fsspec

        fs, local = fsspec.core.url_to_fs(path)
        if fs.exists(local):
            fs.rm(local)
    elif os.path.exists(path):
        os.remove(path)


def _records(stream, split_type: str) -> Iterator[bytes]:
    """The records of a file as raw bytes (a line without its newline, a framed record)."""
    if split_type == "None":
        yield stream.read()
    elif split_type == "Line":
        for line in stream:
            line = line.rstrip(b"\r\n")
            if line.strip():
                yield line
    else:
        from ..io._recordio import frame, iter_payloads

        for _, _, payload in iter_payloads(stream, getattr(stream, "name", "<input>")):
            yield frame(payload)


def _requests(records: Iterator[bytes], spec: TransformSpec, name: str
              ) -> Iterator[list[bytes]]:
    """Records grouped into requests: one each, or as many as fit in the payload limit."""
    limit, group, size = spec.max_payload_bytes, [], 0
    for number, record in enumerate(records):
        if len(record) > limit:
            raise ValueError(f"{name}: record {number} is {len(record)} bytes, more than "
                             f"max_payload_mb={spec.max_payload_mb}")
        if spec.strategy == "SingleRecord":
            yield [record]
            continue
        if group and size + len(record) + 1 > limit:
            yield group
            group, size = [], 0
        group.append(record)
        size += len(record) + 1
    if group:
        yield group


def _parquet_arrays(stream, spec: TransformSpec, name: str) -> Iterator[np.ndarray]:
    import pyarrow.parquet as pq

    table = pq.ParquetFile(stream)
    n_columns = len(table.schema_arrow.names)
    rows = 1 if spec.strategy == "SingleRecord" else \
        max(1, spec.max_payload_bytes // (8 * max(n_columns, 1)))
    for record_batch in table.iter_batches(batch_size=rows):
        try:
            yield np.column_stack([column.to_numpy(zero_copy_only=False).astype(np.float64)
                                   for column in record_batch.columns])
        except (TypeError, ValueError) as error:
            raise ValueError(f"{name}: Parquet columns must be numbers: {error}") from None


def transform_file(predictor: Predictor, path: str, output: str, spec: TransformSpec
                   ) -> FileResult:
    """Predict every record of one file and write ``output`` (complete or not at all)."""
    content_type = spec.content_type or _content_type_of(path)
    accept = _codec.negotiate(spec.accept)
    partial = output + ".partial"
    records = requests = 0
    try:
        with _open(path, "rb") as stream, _open(partial, "wb") as out:
            for X in _arrays(stream, content_type, spec, predictor, path):
                predictions = predictor(X, verbose=accept.verbose)
                body, _ = _codec.encode(predictions, accept)
                if spec.assemble_with == "Line" and not body.endswith(b"\n"):
                    body += b"\n"
                out.write(body)
                records += X.shape[0]
                requests += 1
        _rename(partial, output)
    except BaseException:
        _remove(partial)
        raise
    return FileResult(path, output, records, requests)


def _arrays(stream, content_type: str, spec: TransformSpec, predictor: Predictor, name: str):
    """Each request of a file as decoded rows; a bad request fails the file, naming it."""
    if content_type == PARQUET:
        requests = ((None, X) for X in _parquet_arrays(stream, spec, name))
    else:
        requests = ((group, None)
                    for group in _requests(_records(stream, spec.split_type), spec, name))
    media = _codec.MEDIA_TYPES.get(_codec.parse_media_type(content_type)[0])
    joiner = b"" if spec.split_type == "RecordIO" else b"\n"
    for number, (group, X) in enumerate(requests):
        try:
            if X is not None:
                yield _codec.decode_array(X, n_features=predictor.n_features,
                                          dtype=predictor.dtype)
            elif media == _codec.JSON and len(group) > 1:
                # Each line is a JSON document of its own: decode them one by one.
                yield as_batch([_decode(record, content_type, predictor) for record in group])
            else:
                yield _decode(joiner.join(group), content_type, predictor)
        except _codec.CodecError as error:
            raise ValueError(f"{name}: request {number}: {error}") from None


def _decode(body: bytes, content_type: str, predictor: Predictor):
    return _codec.decode(body, content_type, n_features=predictor.n_features,
                         dtype=predictor.dtype, max_bytes=None)


def _content_type_of(path: str) -> str:
    suffix = PurePosixPath(path.split("?")[0]).suffix.lower()
    if suffix not in CONTENT_TYPES:
        raise ValueError(f"cannot tell the content type of {path!r} from its extension; pass "
                         f"content_type= one of {sorted(set(CONTENT_TYPES.values()))}")
    return CONTENT_TYPES[suffix]


# -- a job ----------------------------------------------------------------------------------------

def plan(input_url, output_url) -> list[tuple[str, str]]:
    """(input file, output file) pairs, SageMaker's way: every file below the input prefix
    (recursively), written to the same path below the output prefix plus ``.out``.

    The input is a file, a directory or prefix, a glob pattern, a SageMaker manifest or an
    fsspec URL of one of these.
    """
    location = str(input_url)
    files = _list_url(location) if "://" in location else _list_local(location)
    if not files:
        raise FileNotFoundError(f"no input files at {location}")
    output = str(output_url).rstrip("/")
    return [(path, f"{output}/{relative}.out") for path, relative in files]


def _is_hidden(relative: str) -> bool:
    return any(part.startswith(".") for part in relative.split("/")) or \
        relative.endswith(".manifest")


def _glob_base(pattern: str) -> str:
    first = min(pattern.find(char) for char in "*?[" if char in pattern)
    return pattern[:first].rsplit("/", 1)[0]


def _list_local(location: str):
    import glob

    path = Path(location)
    if path.suffix == ".manifest" and path.is_file():
        from ..io._sources import _resolve

        return [(f, Path(f).name) for f in _resolve(location)]
    if path.is_dir():
        found = [(str(p), p.relative_to(path).as_posix()) for p in sorted(path.rglob("*"))
                 if p.is_file()]
    elif any(char in location for char in "*?["):
        base = Path(_glob_base(location))
        found = [(p, Path(p).relative_to(base).as_posix()) for p in sorted(glob.glob(location))
                 if Path(p).is_file()]
    elif path.is_file():
        found = [(str(path), path.name)]
    else:
        raise FileNotFoundError(f"no such file or directory: {location}")
    return [(p, rel) for p, rel in found if not _is_hidden(rel)]


def _list_url(location: str):
    import fsspec

    fs, root = fsspec.core.url_to_fs(location)
    protocol = location.split("://", 1)[0]

    def url(path: str) -> str:
        return path if "://" in path else f"{protocol}://{path}"

    if root.endswith(".manifest") and fs.isfile(root):
        from ..io._sources import _resolve

        return [(f, f.rsplit("/", 1)[-1]) for f in _resolve(location)]
    if any(char in root for char in "*?["):
        base, paths = _glob_base(root), sorted(fs.glob(root))
    elif fs.isdir(root):
        base, paths = root.rstrip("/"), sorted(fs.find(root))
    elif fs.exists(root):
        base, paths = root.rsplit("/", 1)[0], [root]
    else:
        raise FileNotFoundError(f"no such object or prefix: {location}")
    found = [(url(p), p[len(base):].lstrip("/")) for p in paths]
    return [(p, rel) for p, rel in found if not _is_hidden(rel)]


class _FileTransformer:
    """A Ray Data actor: loads the model once, transforms the files of each batch."""

    def __init__(self, model: bytes, spec: dict):
        self.predictor = Predictor(pickle.loads(model))
        self.spec = TransformSpec(**spec)

    def __call__(self, batch: dict) -> dict:
        results = [transform_file(self.predictor, str(path), str(output), self.spec)
                   for path, output in zip(batch["input"], batch["output"])]
        return {key: np.array([getattr(result, key) for result in results])
                for key in ("input", "output", "records", "requests")}


def transform_files(model, input_url, output_url, *, content_type: str | None = None,
                    split_type: str = "Line", strategy: str = "MultiRecord",
                    max_payload_mb: float = 6.0, assemble_with: str = "Line",
                    accept: str = _codec.JSONLINES, backend: str = "ray",
                    address: str | None = None, max_concurrent_transforms: int = 1,
                    num_cpus: float = 1.0) -> list[FileResult]:
    """Run a fitted model over every file at ``input_url``; write ``<name>.out`` files.

    Parameters
    ----------
    model : StreamingKMeans or ApproxKNN
        A fitted estimator.
    input_url : str or path-like
        A file, directory, glob pattern, SageMaker manifest or fsspec URL (as ``fit`` takes).
    output_url : str or path-like
        Output prefix (local directory or fsspec URL).
    content_type : str, default=None
        Media type of the inputs (``text/csv``, ``application/jsonlines``,
        ``application/json``, ``application/x-recordio-protobuf``,
        ``application/x-parquet``); None takes it from each file's extension.
    split_type : {"Line", "RecordIO", "None"}, default="Line"
        How a file is cut into records.
    strategy : {"MultiRecord", "SingleRecord"}, default="MultiRecord"
        Records per request: as many as fit in ``max_payload_mb``, or one.
    max_payload_mb : float, default=6.0
        Request size limit, as SageMaker's ``MaxPayloadInMB``.
    assemble_with : {"Line", "None"}, default="Line"
        ``"Line"`` ends each response with a newline; ``"None"`` writes them back to back.
    accept : str, default="application/jsonlines"
        Output format (``; verbose=true`` for k-NN neighbours).
    backend : {"ray", "local"}, default="ray"
        Ray Data actors on the cluster, or this process.
    address : str, default=None
        Ray address when not connected yet.
    max_concurrent_transforms : int, default=1
        Ray Data actors (each holds the model and transforms whole files).
    num_cpus : float, default=1.0
        CPUs reserved per actor.

    Returns
    -------
    results : list of FileResult
        One per input file, in input order.
    """
    spec = TransformSpec(content_type, split_type, strategy, max_payload_mb, assemble_with,
                         accept)
    spec.check()
    if backend not in ("ray", "local"):
        raise ValueError(f"backend must be 'ray' or 'local', got {backend!r}")
    predictor = Predictor(model)  # checks that the model is fitted and servable, here
    pairs = plan(input_url, output_url)
    if backend == "local":
        return [transform_file(predictor, path, output, spec) for path, output in pairs]
    from ._endpoint import _connect

    ray = _connect(address)
    dataset = ray.data.from_items([{"input": path, "output": output} for path, output in pairs])
    dataset = dataset.map_batches(
        _FileTransformer, batch_size=1, num_cpus=num_cpus,
        concurrency=max(1, min(max_concurrent_transforms, len(pairs))),
        fn_constructor_kwargs={"model": pickle.dumps(model), "spec": asdict(spec)})
    by_input = {row["input"]: FileResult(str(row["input"]), str(row["output"]),
                                         int(row["records"]), int(row["requests"]))
                for row in dataset.take_all()}
    return [by_input[path] for path, _ in pairs]


class Transformer:
    """SageMaker SDK-style batch transform of one model (``est.transformer(...)``).

    Parameters
    ----------
    model : StreamingKMeans or ApproxKNN
    output_path : str
        Output prefix.
    **options
        ``strategy``, ``assemble_with``, ``accept``, ``max_payload_mb``,
        ``max_concurrent_transforms``, ``backend``, ``address``, ``num_cpus``: see
        :func:`transform_files`.

    Attributes
    ----------
    output_path : str
    results : list of FileResult
        Those of the last :meth:`transform`.
    """

    def __init__(self, model, output_path, **options):
        self.model, self.output_path, self.options = model, str(output_path), options
        self.results: list[FileResult] = []

    def transform(self, data, *, content_type: str | None = None, split_type: str = "Line"
                  ) -> list[FileResult]:
        """Transform every file at ``data`` (a file, prefix, glob, manifest or URL)."""
        self.results = transform_files(self.model, data, self.output_path,
                                       content_type=content_type, split_type=split_type,
                                       **self.options)
        return self.results

