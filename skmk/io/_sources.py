"""File and URL sources, read batch by batch with a read-ahead thread.

``open_source(location, batch_size=...)`` accepts a local path, a directory, a glob pattern, a
SageMaker manifest file (``*.manifest``) or an fsspec URL (``s3://``, ``file://``,
``memory://``, …) and returns a :class:`Source`: iterating ``source.batches()`` reads every file
from the start (so ``epochs > 1`` re-reads), holding at most ``read_ahead`` batches ahead of the
consumer. Formats follow the file extension or ``format=``:

* RecordIO-protobuf (``.rec``, ``.recordio``, ``.pbr``, ``.protobuf``), labels from the records;
* CSV (``.csv``) in SageMaker's convention: no header, the first ``label_size`` columns are
  labels;
* Parquet (``.parquet``, ``.pq``): every column a feature but ``label_column``;
* NumPy ``.npy`` (memory-mapped when local): features only.

URLs are opened with fsspec; ``storage_options`` (credentials, endpoint, anything the
filesystem's constructor takes) go to it unchanged, so one call reaches any S3-compatible store::

    open_source("s3://bucket/train/", storage_options={
        "key": "...", "secret": "...", "client_kwargs": {"endpoint_url": "http://host:9000"}})
"""

from __future__ import annotations

import contextlib
import glob as globbing
import io
import itertools
import json
import os
import queue
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from .._streaming import Batch
from ._recordio import read_recordio

FORMATS = {
    ".rec": "recordio", ".recordio": "recordio", ".pbr": "recordio", ".protobuf": "recordio",
    ".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".npy": "npy",
}


class Source:
    """A re-readable stream of :class:`~skmk._streaming.Batch` from one or more files.

    Attributes
    ----------
    files : list of str
        Paths or URLs, in reading order.
    format : str
        "recordio", "csv", "parquet" or "npy".
    storage_options : dict
        Passed to fsspec for every URL in ``files``.
    """

    def __init__(self, files: list[str], format: str, batch_size: int, *, label_size: int = 0,
                 label_column: str | None = None, read_ahead: int = 2,
                 storage_options: dict | None = None):
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.files, self.format, self.batch_size = files, format, batch_size
        self.label_size, self.label_column, self.read_ahead = label_size, label_column, read_ahead
        self.storage_options = dict(storage_options or {})

    def __repr__(self) -> str:
        return f"Source({self.format}, {len(self.files)} file(s), first={self.files[0]!r})"

    def _read_all(self) -> Iterator[Batch]:
        reader = _READERS[self.format]
        for path in self.files:
            yield from reader(self, path)

    def batches(self) -> Iterator[Batch]:
        """Read the source from the start; a thread reads ahead while the caller computes."""
        if self.read_ahead < 1:
            return self._read_all()
        return _read_ahead(self._read_all, self.read_ahead)

    def with_batch_size(self, batch_size: int) -> Source:
        """The same files and settings, read ``batch_size`` rows at a time."""
        if batch_size == self.batch_size:
            return self
        return Source(self.files, self.format, batch_size, label_size=self.label_size,
                      label_column=self.label_column, read_ahead=self.read_ahead,
                      storage_options=self.storage_options)


def is_source(obj) -> bool:
    """True for what ``open_source`` takes (paths, URLs) and for ``Source`` objects."""
    return isinstance(obj, (str, os.PathLike, Source))


def open_source(location, *, batch_size: int = 5000, format: str | None = None,
                label_size: int = 0, label_column: str | None = None,
                read_ahead: int = 2, storage_options: dict | None = None) -> Source:
    """A :class:`Source` over the files at ``location``.

    Parameters
    ----------
    location : str, path-like or Source
        File, directory, glob pattern, ``*.manifest`` file or fsspec URL.
    batch_size : int, default=5000
    format : {"recordio", "csv", "parquet", "npy"}, default=None
        Taken from the first file's extension when None.
    label_size : int, default=0
        CSV only: leading label columns (0 or 1).
    label_column : str, default=None
        Parquet only: the label column.
    read_ahead : int, default=2
        Batches read ahead by a background thread (0 reads in the caller's thread).
    storage_options : dict, default=None
        For URLs: keyword arguments of the fsspec filesystem (for s3fs ``key``, ``secret``,
        ``token``, ``client_kwargs={"endpoint_url": ...}``, ...). The files a manifest lists
        are opened with them too.

    Raises
    ------
    FileNotFoundError
        Nothing at ``location`` (a missing file, bucket or object, or a prefix with no
        objects); the message names it.
    PermissionError
        The store refused the credentials; the message names the URL.
    """
    if isinstance(location, Source):
        return location
    if label_size not in (0, 1):
        raise ValueError(f"label_size must be 0 or 1 (one label column), got {label_size}")
    storage_options = dict(storage_options or {})
    files = _resolve(str(location), storage_options)
    if format is None:
        suffix = Path(files[0].split("?")[0]).suffix.lower()
        if suffix not in FORMATS:
            raise ValueError(f"cannot tell the format of {files[0]!r} from its extension; pass "
                             f"format= one of {sorted(set(FORMATS.values()))}")
        format = FORMATS[suffix]
    if format not in _READERS:
        raise ValueError(f"unknown format {format!r}; known: {sorted(_READERS)}")
    return Source(files, format, batch_size, label_size=label_size, label_column=label_column,
                  read_ahead=read_ahead, storage_options=storage_options)


def source_for_estimator(location, *, batch_size: int, label_size: int = 0,
                         label_column: str | None = None) -> Source:
    """What an estimator reads: ``location`` opened with the estimator's settings, or a
    :class:`Source` the user opened (format, labels, storage options kept) read in the
    estimator's ``mini_batch_size``, so a fit does not depend on how the data was named."""
    if isinstance(location, Source):
        return location.with_batch_size(batch_size)
    return open_source(location, batch_size=batch_size, label_size=label_size,
                       label_column=label_column)


# -- locations ------------------------------------------------------------------------------------

def _is_url(location: str) -> bool:
    return "://" in location


def _resolve(location: str, storage_options: dict | None = None) -> list[str]:
    if _is_url(location):
        return _resolve_url(location, storage_options or {})
    path = Path(location)
    if path.suffix == ".manifest" and path.is_file():
        return _manifest(path.read_text(), str(path))
    if path.is_dir():
        files = sorted(str(p) for p in path.iterdir()
                       if p.is_file() and not p.name.startswith(".") and p.suffix != ".manifest")
    elif any(char in location for char in "*?["):
        files = sorted(globbing.glob(location))
    elif path.is_file():
        files = [str(path)]
    else:
        raise FileNotFoundError(f"no such file or directory: {location}")
    if not files:
        raise FileNotFoundError(f"no files found at {location}")
    return files


def _resolve_url(url: str, storage_options: dict) -> list[str]:
    import fsspec

    fs, path = fsspec.core.url_to_fs(url, **storage_options)
    protocol = url.split("://", 1)[0]
    try:
        if path.endswith(".manifest") and fs.isfile(path):
            with fs.open(path, "r") as stream:
                return _manifest(stream.read(), url)
        found = _list_url(fs, path, url)
    except PermissionError as error:
        raise PermissionError(f"access to {url} denied: {error}") from error
    return [f"{protocol}://{p}" if not p.startswith(f"{protocol}://") else p
            for p in sorted(found)]


def _list_url(fs, path: str, url: str) -> list[str]:
    """The files at ``path`` of ``fs``: a glob's matches, every file below a directory or
    prefix (but hidden files and manifests), or the one object."""
    if any(char in path for char in "*?["):
        found = fs.glob(path)
    elif fs.isdir(path):
        found = [p for p in fs.find(path) if not Path(p).name.startswith(".")
                 and not p.endswith(".manifest")]
    elif fs.exists(path):
        return [path]
    else:
        _raise_missing(fs, path, url)
    if not found:
        raise FileNotFoundError(f"no files found at {url}")
    return found


def _raise_missing(fs, path: str, url: str):
    # Object stores (s3fs, gcsfs, adlfs: the filesystems with ``split_path``) address
    # "bucket/key": say whether the bucket itself is missing, the likelier mistake, or only
    # the key or prefix.
    bucket = path.split("/", 1)[0]
    if hasattr(fs, "split_path") and bucket and not fs.exists(bucket):
        raise FileNotFoundError(f"no bucket {bucket!r} (reading {url})")
    if url.endswith("/"):
        raise FileNotFoundError(f"no objects under the prefix {url}")
    raise FileNotFoundError(f"no such object: {url}")


def _manifest(text: str, name: str) -> list[str]:
    """SageMaker's manifest: ``[{"prefix": "s3://bucket/dir/"}, "file1", "file2", ...]``."""
    try:
        entries = json.loads(text)
        prefix = entries[0]["prefix"]
        files = [prefix + entry for entry in entries[1:]]
    except (ValueError, KeyError, TypeError, IndexError) as error:
        raise ValueError(f"{name} is not a SageMaker manifest "
                         f'([{{"prefix": ...}}, "file", ...]): {error}') from None
    if not files:
        raise ValueError(f"manifest {name} lists no files")
    return files


def _open(path: str, mode: str = "rb", storage_options: dict | None = None):
    if _is_url(path):
        import fsspec

        try:
            return fsspec.open(path, mode, **(storage_options or {})).open()
        except FileNotFoundError as error:
            raise FileNotFoundError(f"no such object: {path}") from error
        except PermissionError as error:
            raise PermissionError(f"access to {path} denied: {error}") from error
    try:
        return open(path, mode)
    except FileNotFoundError as error:
        raise FileNotFoundError(f"file not found: {path}") from error


# -- readers --------------------------------------------------------------------------------------

def _read_recordio(source: Source, path: str) -> Iterator[Batch]:
    with _open(path, storage_options=source.storage_options) as stream:
        yield from read_recordio(stream, batch_size=source.batch_size, name=path)


def _read_csv(source: Source, path: str) -> Iterator[Batch]:
    with _open(path, "rb", source.storage_options) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8")
        line_number, n_columns = 0, None
        while True:
            lines = list(itertools.islice(text, source.batch_size))
            if not lines:
                return
            block = _parse_csv_block(lines, path, line_number)
            if n_columns is None:
                n_columns = block.shape[1]
                if n_columns <= source.label_size:
                    raise ValueError(f"{path}: {n_columns} column(s) leave no features after "
                                     f"{source.label_size} label column(s)")
            elif block.shape[1] != n_columns:
                raise ValueError(f"{path}: line {line_number + 1} has {block.shape[1]} columns, "
                                 f"earlier lines have {n_columns}")
            line_number += len(lines)
            if source.label_size:
                yield Batch(np.ascontiguousarray(block[:, 1:]), block[:, 0].copy())
            else:
                yield Batch(block)


def _parse_csv_block(lines: list[str], path: str, first_line: int) -> np.ndarray:
    try:
        block = np.loadtxt(lines, delimiter=",", dtype=np.float64, ndmin=2)
    except ValueError:
        # Find the first offending line to name it.
        width = None
        for i, line in enumerate(lines):
            cells = line.rstrip("\r\n").split(",")
            width = len(cells) if width is None else width
            if len(cells) != width:
                raise ValueError(f"{path}: line {first_line + i + 1} has {len(cells)} columns, "
                                 f"earlier lines have {width}") from None
            for cell in cells:
                try:
                    float(cell)
                except ValueError:
                    raise ValueError(f"{path}: line {first_line + i + 1}: {cell.strip()!r} is "
                                     "not a number") from None
        raise
    return block


def _read_parquet(source: Source, path: str) -> Iterator[Batch]:
    import pyarrow.parquet as pq

    with _open(path, storage_options=source.storage_options) as stream:
        table = pq.ParquetFile(stream)
        names = table.schema_arrow.names
        if source.label_column is not None and source.label_column not in names:
            raise ValueError(f"{path}: no column {source.label_column!r}; columns: {names}")
        features = [n for n in names if n != source.label_column]
        for record_batch in table.iter_batches(batch_size=source.batch_size):
            columns = record_batch.to_pydict()
            X = np.column_stack([np.asarray(columns[n], dtype=np.float64) for n in features])
            y = None if source.label_column is None else np.asarray(columns[source.label_column])
            yield Batch(X, y)


def _read_npy(source: Source, path: str) -> Iterator[Batch]:
    if _is_url(path):
        with _open(path, storage_options=source.storage_options) as stream:
            array = np.load(io.BytesIO(stream.read()))
    else:
        array = np.load(path, mmap_mode="r")
    if array.ndim != 2:
        raise ValueError(f"{path}: expected a 2-D array, got shape {array.shape}")
    for start in range(0, array.shape[0], source.batch_size):
        yield Batch(np.array(array[start:start + source.batch_size]))


_READERS: dict[str, Callable[[Source, str], Iterator[Batch]]] = {
    "recordio": _read_recordio, "csv": _read_csv, "parquet": _read_parquet, "npy": _read_npy,
}


# -- read-ahead -----------------------------------------------------------------------------------

_DONE = object()

#: Nice value of the read-ahead thread (Linux, where threads have their own). Reading competes
#: for the cores with the compute kernels' OpenMP threads, whose chunks are handed out
#: statically: a thread preempted mid-region holds up the whole region. At low priority the
#: reader runs in the gaps the compute leaves instead. Fashion-MNIST from RecordIO, k=10,
#: 15 interleaved rounds on 2 cores: fit at 74 % of the in-memory speed at nice 0, 79 % at 19.
READ_AHEAD_NICE = 19


def _lower_priority_of_this_thread() -> None:
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), READ_AHEAD_NICE)


def _read_ahead(produce: Callable[[], Iterator[Batch]], depth: int) -> Iterator[Batch]:
    """Run ``produce()`` in a thread, ``depth`` batches ahead; errors surface in the caller."""
    batches: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def work():
        _lower_priority_of_this_thread()
        try:
            for batch in produce():
                while not stop.is_set():
                    try:
                        batches.put(batch, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            batches.put(_DONE)
        except BaseException as error:  # handed to the consumer, raised there
            batches.put(error)

    thread = threading.Thread(target=work, name="skmk-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item = batches.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                batches.get_nowait()
            except queue.Empty:
                thread.join(timeout=0.05)
