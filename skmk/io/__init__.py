"""Data sources: everything ``fit`` can read, as a stream of :class:`~skmk._streaming.Batch`.

In-memory arrays are validated whole by the estimator and then cut into mini-batches here;
file and URL sources (RecordIO-protobuf, CSV, Parquet, npy, fsspec URLs) are read batch by batch.
"""

from ._arrays import iter_array_batches
from ._recordio import RecordIOError, read_recordio, record_set, to_bytes, write_recordio
from ._sources import Source, is_source, open_source

__all__ = [
    "RecordIOError",
    "Source",
    "is_source",
    "iter_array_batches",
    "open_source",
    "read_recordio",
    "record_set",
    "to_bytes",
    "write_recordio",
]
