"""Data sources: everything ``fit`` can read, as a stream of :class:`~skmk._streaming.Batch`.

In-memory arrays are validated whole by the estimator and then cut into mini-batches here;
file and URL sources (RecordIO-protobuf, CSV, Parquet, npy, fsspec URLs) are read batch by batch.
"""

from ._arrays import iter_array_batches
from ._recordio import RecordIOError, read_recordio, record_set, to_bytes, write_recordio

__all__ = [
    "RecordIOError",
    "iter_array_batches",
    "read_recordio",
    "record_set",
    "to_bytes",
    "write_recordio",
]
