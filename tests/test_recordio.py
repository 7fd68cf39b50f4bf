"""RecordIO-protobuf: exact bytes, round trips, the protobuf package as a cross-check, errors."""

from __future__ import annotations

import contextlib
import io
import json
import struct
import tempfile
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skmk.io import RecordIOError, read_recordio, record_set, to_bytes, write_recordio
from skmk.io._protobuf import decode_record


def _read_all(data: bytes, batch_size=1000):
    """Batches of ``data`` read from a stream. A file of the same bytes (which the reader maps
    instead of reading) must give the same batches, or raise the same error."""
    def read(source):
        try:
            return list(read_recordio(source, batch_size=batch_size, name="<stream>")), None
        except RecordIOError as error:
            return None, error

    streamed, error = read(io.BytesIO(data))
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "data.rec"
        path.write_bytes(data)
        mapped, mapped_error = read(path)
    assert str(error) == str(mapped_error)
    if error is not None:
        raise error
    assert len(mapped) == len(streamed)
    for got, expected in zip(mapped, streamed):
        assert sp.issparse(got.X) == sp.issparse(expected.X)
        np.testing.assert_array_equal(got.X.toarray() if sp.issparse(got.X) else got.X,
                                      expected.X.toarray() if sp.issparse(expected.X)
                                      else expected.X)
        assert got.X.dtype == expected.X.dtype
        np.testing.assert_array_equal(got.y, expected.y)
    return streamed


def test_a_hand_built_record_has_exact_bytes():
    # features["values"] = Float32Tensor(values=[1.0, 2.0]); label["values"] = Int32Tensor([3])
    features_tensor = b"\x0a\x08" + struct.pack("<2f", 1.0, 2.0)         # values, packed
    features_value = b"\x12" + bytes([len(features_tensor)]) + features_tensor  # float32_tensor
    features_entry = b"\x0a\x06values" + b"\x12" + bytes([len(features_value)]) + features_value
    label_tensor = b"\x0a\x01\x03"                                        # int32 values [3]
    label_value = b"\x3a" + bytes([len(label_tensor)]) + label_tensor      # int32_tensor (7)
    label_entry = b"\x0a\x06values" + b"\x12" + bytes([len(label_value)]) + label_value
    record = (b"\x0a" + bytes([len(features_entry)]) + features_entry
              + b"\x12" + bytes([len(label_entry)]) + label_entry)
    padding = b"\0" * (-len(record) % 4)
    expected = struct.pack("<II", 0xCED7230A, len(record)) + record + padding
    assert to_bytes(np.array([[1.0, 2.0]], dtype=np.float32), np.array([3])) == expected


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32])
@pytest.mark.parametrize("labels", [None, "int", "float"])
def test_dense_round_trip(dtype, labels, rng):
    X = (rng.standard_normal((37, 5)) * 100).astype(dtype)
    y = {None: None, "int": rng.integers(-5, 5, 37), "float": rng.random(37)}[labels]
    (batch,) = _read_all(to_bytes(X, y))
    expected_dtype = np.float64 if dtype == np.int32 else dtype
    assert batch.X.dtype == expected_dtype
    np.testing.assert_array_equal(batch.X, X.astype(expected_dtype))
    if y is None:
        assert batch.y is None
    else:
        np.testing.assert_array_equal(batch.y, y)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sparse_round_trip_with_empty_rows(dtype, rng):
    dense = rng.standard_normal((20, 9)).astype(dtype)
    dense[dense < 0.8] = 0
    dense[3] = 0  # a row with no entries at all
    X = sp.csr_matrix(dense)
    batches = _read_all(to_bytes(X, np.arange(20)), batch_size=7)
    assert [b.X.shape for b in batches] == [(7, 9), (7, 9), (6, 9)]
    got = sp.vstack([b.X for b in batches])
    assert sp.issparse(got) and got.dtype == dtype
    np.testing.assert_array_equal(got.toarray(), dense)
    np.testing.assert_array_equal(np.concatenate([b.y for b in batches]), np.arange(20))


def test_bytes_match_the_protobuf_package():
    pytest.importorskip("google.protobuf")
    from skmk.io._protobuf import protobuf_message_class

    Record = protobuf_message_class()
    message = Record()
    message.features["values"].float32_tensor.values.extend([0.5, -1.25])
    message.features["values"].float32_tensor.keys.extend([1, 4])
    message.features["values"].float32_tensor.shape.extend([6])
    message.label["values"].float64_tensor.values.extend([2.5])
    theirs = message.SerializeToString()
    ours = to_bytes(sp.csr_matrix(([0.5, -1.25], [1, 4], [0, 2]), shape=(1, 6),
                                  dtype=np.float32), np.array([2.5]))
    assert ours[8:8 + len(theirs)] == theirs
    parsed = Record()
    parsed.ParseFromString(ours[8:8 + len(theirs)])
    assert list(parsed.features["values"].float32_tensor.keys) == [1, 4]


def test_multi_part_payloads_are_reassembled():
    payload = to_bytes(np.array([[1.0, 2.0, 3.0]]))[8:]
    payload = payload[:struct.unpack("<I", to_bytes(np.array([[1.0, 2.0, 3.0]]))[4:8])[0]]
    cut = [payload[:5], payload[5:11], payload[11:]]
    data = b""
    for flag, part in zip((1, 2, 3), cut):
        data += struct.pack("<II", 0xCED7230A, (flag << 29) | len(part)) + part \
            + b"\0" * (-len(part) % 4)
    (batch,) = _read_all(data + to_bytes(np.array([[4.0, 5.0, 6.0]])))
    np.testing.assert_array_equal(batch.X, [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])


def test_record_set_writes_shards_and_a_manifest(tmp_path, rng):
    X = rng.random((10, 3))
    manifest = record_set(X, np.arange(10), tmp_path, shards=3)
    entries = json.loads(manifest.read_text())
    assert entries[0]["prefix"].endswith("/") and len(entries) == 4
    rows = [b.X for name in entries[1:] for b in read_recordio(tmp_path / name)]
    np.testing.assert_array_equal(np.vstack(rows), X)


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda d: b"\x00\x00\x00\x00" + d[4:], "bad magic number 0x00000000 at byte 0"),
        (lambda d: d[:-3], "record 1 at byte .* declares"),
        (lambda d: d + b"\x0a\x23", "truncated header of record 2"),
        (lambda d: d[:4] + struct.pack("<I", 1 << 20) + d[8:], "declares 1048576 bytes"),
        (lambda d: d[:8] + b"\xff" * 4 + d[12:], "record 0 at byte 0 is not a valid Record"),
    ],
)
def test_bad_files_name_the_record_and_offset(mutate, match):
    data = to_bytes(np.ones((2, 3), dtype=np.float32))
    with pytest.raises(RecordIOError, match=match):
        _read_all(mutate(data))


def test_feature_dimension_must_not_change():
    data = to_bytes(np.ones((2, 3))) + to_bytes(np.ones((1, 4)))
    with pytest.raises(RecordIOError, match=r"record 2 at byte \d+ has 4 features; earlier "
                                            r"records have 3"):
        _read_all(data)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"missing\.rec"):
        list(read_recordio(tmp_path / "missing.rec"))


def test_writer_rejects_what_it_cannot_write():
    with pytest.raises(TypeError, match="dtype"):
        write_recordio(io.BytesIO(), np.array([["a"]]))
    with pytest.raises(ValueError, match="labels"):
        write_recordio(io.BytesIO(), np.ones((2, 2)), np.ones(3))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_fuzzed_input_raises_cleanly_or_reads(data):
    stream = io.BytesIO(struct.pack("<II", 0xCED7230A, len(data)) + data
                        + b"\0" * (-len(data) % 4))
    # No input may crash or hang the reader: it reads, or it raises its own clear error.
    with contextlib.suppress(RecordIOError):
        list(read_recordio(stream))
    with contextlib.suppress(ValueError):
        decode_record(data)


@pytest.mark.parametrize("chunk", [16, 64, 1000, 1 << 23])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fast_path_across_chunk_boundaries(monkeypatch, chunk, dtype, rng):
    from skmk.io import _recordio

    monkeypatch.setattr(_recordio, "_CHUNK", chunk)
    X = rng.standard_normal((53, 7)).astype(dtype)
    for y in (None, rng.integers(-3, 3, 53), rng.random(53).astype(np.float32)):
        batches = _read_all(to_bytes(X, y), batch_size=10)
        assert [b.n_rows for b in batches] == [10] * 5 + [3]
        np.testing.assert_array_equal(np.vstack([b.X for b in batches]), X)
        if y is not None:
            np.testing.assert_array_equal(np.concatenate([b.y for b in batches]), y)


def test_fast_path_hands_over_to_the_python_reader(monkeypatch, rng):
    from skmk.io import _recordio

    monkeypatch.setattr(_recordio, "_CHUNK", 200)
    dense = rng.standard_normal((6, 4))
    sparse_part = sp.csr_matrix(np.eye(3, 4))
    data = to_bytes(dense) + to_bytes(sparse_part)
    got = np.vstack([b.X.toarray() if sp.issparse(b.X) else b.X for b in _read_all(data, 4)])
    np.testing.assert_array_equal(got, np.vstack([dense, np.eye(3, 4)]))
    with pytest.raises(RecordIOError, match=r"record 6 at byte \d+ declares"):
        _read_all(to_bytes(dense) + to_bytes(dense[:1])[:-4])


# -- records of one fixed size, read straight into the rows ---------------------------------------

def _rows_read_by_fixed_frames(monkeypatch):
    """A list that collects how many rows each ``read_fixed_frames`` call read."""
    from skmk.io import _recordio

    counts = []
    read = _recordio.read_fixed_frames
    monkeypatch.setattr(_recordio, "read_fixed_frames",
                        lambda *args: counts.append(read(*args)) or counts[-1])
    return counts


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("labelled", [False, True])
def test_fixed_frames_read_a_file_of_one_record_size(monkeypatch, dtype, labelled, rng):
    """Every record of a local file with one size and layout goes through the fixed-frame
    reader (several groups of frames per batch, read by the threads at once)."""
    counts = _rows_read_by_fixed_frames(monkeypatch)
    X = rng.standard_normal((1500, 5)).astype(dtype)
    y = rng.integers(0, 10, 1500) if labelled else None
    batches = _read_all(to_bytes(X, y), batch_size=1000)
    assert [b.n_rows for b in batches] == [1000, 500]
    np.testing.assert_array_equal(np.vstack([b.X for b in batches]), X)
    if labelled:
        np.testing.assert_array_equal(np.concatenate([b.y for b in batches]), y)
    assert sum(counts) == 1500


def test_fixed_frames_hand_over_at_a_record_of_another_size(monkeypatch, rng):
    """A label that takes two bytes (300) makes record 700 longer: the fixed-frame reader stops
    there, inside its third group of frames, and the decoder reads on from that record."""
    counts = _rows_read_by_fixed_frames(monkeypatch)
    X = rng.standard_normal((1000, 6)).astype(np.float32)
    y = rng.integers(0, 10, 1000)
    y[700] = 300
    batches = _read_all(to_bytes(X, y), batch_size=400)
    np.testing.assert_array_equal(np.vstack([b.X for b in batches]), X)
    np.testing.assert_array_equal(np.concatenate([b.y for b in batches]), y)
    assert [b.n_rows for b in batches] == [400, 400, 200]
    assert sum(counts) == 700


@pytest.mark.parametrize("where, match", [
    ("magic", r"bad magic number 0x00000000 at byte \d+"),  # the frame's head differs
    ("label", r"record 500 at byte \d+ is not a valid Record"),  # after the values
])
def test_fixed_frames_leave_a_bad_record_to_the_decoder(monkeypatch, where, match, rng):
    """A record the fixed-frame reader does not take is read by the decoder, which names it:
    a bad magic number, or a corrupt label after the values (the frame's head is intact)."""
    counts = _rows_read_by_fixed_frames(monkeypatch)
    X = rng.standard_normal((800, 4)).astype(np.float32)
    data = bytearray(to_bytes(X, np.zeros(800, dtype=np.int32)))
    frame = len(data) // 800  # 60 bytes: a head of 24, 16 of values, the label entry, padding
    at = 500 * frame + (0 if where == "magic" else 40)
    data[at:at + 4] = b"\x00" * 4 if where == "magic" else b"\xff" * 4
    with pytest.raises(RecordIOError, match=match):
        _read_all(bytes(data), batch_size=300)
    assert sum(counts) == 500


# -- the compiled sparse path ---------------------------------------------------------------------

def _sparse_rows(rng, dtype, n_rows=40, width=11):
    """A CSR matrix with empty rows (the first among them) and rows of very different density."""
    dense = rng.standard_normal((n_rows, width)) * 50
    dense[rng.random((n_rows, width)) < np.linspace(0.95, 0.1, n_rows)[:, None]] = 0
    dense[[0, 5, 6, n_rows - 1]] = 0
    return sp.csr_matrix(dense.astype(dtype))


def _count_python_decodes(monkeypatch):
    """Records the Python decoder decodes (the fast path's layout probe decodes the first)."""
    from skmk.io import _recordio

    calls = []
    original = _recordio.decode_record
    monkeypatch.setattr(_recordio, "decode_record",
                        lambda *args: calls.append(1) or original(*args))
    return calls


def _assert_same_batches(got, expected):
    assert len(got) == len(expected)
    for ours, theirs in zip(got, expected):
        assert sp.issparse(ours.X) and ours.X.dtype == theirs.X.dtype
        for part in ("data", "indices", "indptr"):
            np.testing.assert_array_equal(getattr(ours.X, part), getattr(theirs.X, part))
        assert ours.X.shape == theirs.X.shape
        if theirs.y is None:
            assert ours.y is None
        else:
            np.testing.assert_array_equal(ours.y, theirs.y)


@pytest.mark.parametrize("chunk", [64, 1000, 1 << 23])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32])
@pytest.mark.parametrize("labels", [None, "int", "float"])
def test_sparse_fast_path_round_trips_exactly(monkeypatch, chunk, dtype, labels, rng):
    from skmk.io import _recordio

    monkeypatch.setattr(_recordio, "_CHUNK", chunk)
    X = _sparse_rows(rng, dtype)
    y = {None: None, "int": rng.integers(-5, 5, 40), "float": rng.random(40)}[labels]
    data = to_bytes(X, y)
    expected = list(_recordio._batches_slow(io.BytesIO(data), "x", 7))
    calls = _count_python_decodes(monkeypatch)
    batches = _read_all(data, batch_size=7)
    # Every record after the first went through the compiled decoder, in each of _read_all's
    # two reads (stream and mapped file).
    assert len(calls) == 2
    assert [b.n_rows for b in batches] == [7] * 5 + [5]
    _assert_same_batches(batches, expected)
    got = sp.vstack([b.X for b in batches])
    assert got.dtype == (np.float64 if dtype == np.int32 else dtype)
    np.testing.assert_array_equal(got.toarray(), X.toarray())
    if y is not None:
        np.testing.assert_array_equal(np.concatenate([b.y for b in batches]), y)


def _sparse_record(values, keys, width, dtype=np.float32, label=None):
    from skmk.io._protobuf import encode_record, encode_tensor
    from skmk.io._recordio import _label_tensor, frame

    tensor = encode_tensor(np.asarray(values, dtype=dtype), np.asarray(keys), (width,))
    return frame(encode_record(tensor, None if label is None else _label_tensor(label)))


def test_sparse_fast_path_keeps_keys_in_record_order(monkeypatch):
    # Protobuf does not ask keys to be sorted; the row is the same whatever their order.
    data = (_sparse_record([1.5, -2.0, 3.0], [5, 1, 3], 6)
            + _sparse_record([], [], 6)
            + _sparse_record([4.0, 7.0], [4, 0], 6))
    calls = _count_python_decodes(monkeypatch)
    (batch,) = _read_all(data)
    assert len(calls) == 2  # the first record of each of the two reads
    np.testing.assert_array_equal(batch.X.indices, [5, 1, 3, 4, 0])
    np.testing.assert_array_equal(batch.X.toarray(), [[0, -2, 0, 3, 0, 1.5],
                                                      [0, 0, 0, 0, 0, 0],
                                                      [7, 0, 0, 0, 4, 0]])


def test_sparse_fast_path_reads_a_file_of_empty_rows(monkeypatch):
    data = b"".join(_sparse_record([], [], 4, np.float64, label=i) for i in range(9))
    calls = _count_python_decodes(monkeypatch)
    batches = _read_all(data, batch_size=4)
    assert len(calls) == 2 and [b.X.nnz for b in batches] == [0, 0, 0]
    assert [b.X.shape for b in batches] == [(4, 4), (4, 4), (1, 4)]
    np.testing.assert_array_equal(np.concatenate([b.y for b in batches]), np.arange(9))


def test_sparse_fast_path_hands_over_mixed_rows_to_the_python_reader(monkeypatch, rng):
    from skmk.io import _recordio

    monkeypatch.setattr(_recordio, "_CHUNK", 128)
    X = _sparse_rows(rng, np.float32, n_rows=12, width=5)
    dense_row = np.arange(5, dtype=np.float32)[None]
    data = to_bytes(X[:8]) + to_bytes(dense_row) + to_bytes(X[8:])
    batches = _read_all(data, batch_size=5)
    assert all(sp.issparse(b.X) for b in batches)
    np.testing.assert_array_equal(sp.vstack([b.X for b in batches]).toarray(),
                                  np.vstack([X[:8].toarray(), dense_row, X[8:].toarray()]))


@pytest.mark.parametrize("chunk", [64, 1 << 23])
def test_sparse_shape_and_key_errors_name_the_record_and_offset(monkeypatch, chunk):
    from skmk.io import _recordio

    monkeypatch.setattr(_recordio, "_CHUNK", chunk)
    head = b"".join(_sparse_record([1.0], [i], 9) for i in range(3))
    with pytest.raises(RecordIOError, match=rf"record 3 at byte {len(head)} has 10 features; "
                                            r"earlier records have 9"):
        _read_all(head + _sparse_record([1.0], [2], 10))
    with pytest.raises(RecordIOError, match=rf"record 3 at byte {len(head)} has a key outside "
                                            r"\[0, 9\)"):
        _read_all(head + _sparse_record([1.0, 2.0], [3, 9], 9))


def _rows_or_error(read):
    try:
        batches = read()
    except RecordIOError as error:
        return str(error)
    X = sp.vstack([sp.csr_matrix(b.X, dtype=np.float64) for b in batches]) if batches else None
    y = [b.y for b in batches if b.y is not None]
    return X, (np.concatenate(y) if y else None)


_FUZZ_X = sp.csr_matrix(np.array([[0, 3, 0, -1, 0], [0, 0, 0, 0, 0], [2, 0, 0, 0, 7],
                                  [0, 0, 5, 0, 0], [1, 1, 0, 0, 0], [0, 0, 0, 0, 4]]))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([np.float32, np.float64, np.int32]), st.booleans(),
       st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1,
                max_size=4))
def test_fuzzed_sparse_files_read_as_the_python_reader_reads_them(dtype, labelled, edits):
    # Bytes changed anywhere after the first record (which fixes the layout): the compiled path
    # must give the rows, or the error, that the Python reader gives for the same bytes.
    data = to_bytes(_FUZZ_X.astype(dtype), np.arange(6) if labelled else None)
    _assert_read_as_the_python_reader_reads(_edited_after_the_first_record(data, edits), 4)


def _edited_after_the_first_record(data: bytes, edits) -> bytes:
    data = bytearray(data)
    first = 8 + struct.unpack_from("<I", data, 4)[0]
    first += -first % 4
    for at, byte in edits:
        data[first + at % (len(data) - first)] = byte
    return bytes(data)


def _assert_read_as_the_python_reader_reads(data: bytes, batch_size: int) -> None:
    """The compiled paths (``_read_all`` reads a stream and a file) give the rows, or the
    error, that the Python reader gives for the same bytes."""
    from skmk.io import _recordio

    fast = _rows_or_error(lambda: _read_all(data, batch_size=batch_size))
    slow = _rows_or_error(lambda: list(_recordio._batches_slow(io.BytesIO(data), "<stream>",
                                                                batch_size)))
    if isinstance(slow, str):
        assert fast == slow
    else:
        assert not isinstance(fast, str), fast
        assert (fast[0] is None) == (slow[0] is None)
        if slow[0] is not None:
            np.testing.assert_array_equal(fast[0].toarray(), slow[0].toarray())
        np.testing.assert_array_equal(fast[1], slow[1])


@pytest.mark.parametrize("sparse", [False, True])
def test_records_without_labels_among_labelled_ones_are_named(sparse):
    X = sp.csr_matrix(np.eye(6, 4)) if sparse else np.eye(6, 4)
    head = to_bytes(X[:5], np.arange(5))
    with pytest.raises(RecordIOError, match=rf"record 5 at byte {len(head)} has no label; "
                                            "earlier records have labels"):
        _read_all(head + to_bytes(X[5:]), batch_size=2)
    with pytest.raises(RecordIOError, match=r"record 1 at byte \d+ has a label; earlier "
                                            "records have none"):
        _read_all(to_bytes(X[:1]) + to_bytes(X[1:], np.arange(5)))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([np.float32, np.float64]), st.booleans(),
       st.lists(st.tuples(st.integers(0, 100_000), st.integers(0, 255)), min_size=1,
                max_size=4))
def test_fuzzed_dense_files_read_as_the_python_reader_reads_them(dtype, labelled, edits):
    # Bytes changed anywhere after the first record of a dense file: the fixed-frame reader and
    # the decoder behind it must read it as the Python reader does.
    X = np.arange(700 * 3, dtype=dtype).reshape(700, 3)
    data = to_bytes(X, np.arange(700) % 7 if labelled else None)
    _assert_read_as_the_python_reader_reads(_edited_after_the_first_record(data, edits), 500)
