"""The inference codec: SageMaker's request and response formats, and its errors (no Ray)."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import scipy.sparse as sp

from skmk import ApproxKNN, StreamingKMeans
from skmk.io import to_bytes
from skmk.io._protobuf import decode_record, protobuf_message_class
from skmk.io._recordio import iter_payloads
from skmk.remote import _codec as codec
from skmk.remote._predictor import Predictor

X4 = np.array([[-3, -1, -4, 2], [3.0, 0.1, 0.04, 0.002]])


# -- requests -------------------------------------------------------------------------------------

@pytest.mark.parametrize("body, content_type", [
    (b"-3,-1,-4,2\n3.0,0.1,0.04,0.002\n", "text/csv"),
    (b"-3,-1,-4,2\r\n\r\n3.0,0.1,0.04,0.002", "text/csv; charset=utf-8"),
    (b"9,-3,-1,-4,2\n9,3.0,0.1,0.04,0.002", "text/csv;label_size=1"),
    (b"-3,-1,-4,2\n3.0,0.1,0.04,0.002", None),  # SageMaker's default is CSV
    (b'{"instances": [{"data": {"features": {"values": [-3, -1, -4, 2]}}},'
     b' {"features": [3.0, 0.1, 0.04, 0.002]}]}', "application/json"),
    (b'{"instances": [[-3, -1, -4, 2], [3.0, 0.1, 0.04, 0.002]]}', "application/json"),
    (b'[[-3, -1, -4, 2], [3.0, 0.1, 0.04, 0.002]]', "application/json"),
    (b'{"features": [1.5, 16.0, 14.0, 23.0]}\n'
     b'{"data": {"features": {"values": [1.5, 16.0, 14.0, 23.0]}}}\n', "application/jsonlines"),
])
def test_decode_formats(body, content_type):
    X = codec.decode(body, content_type)
    expected = np.array([[1.5, 16.0, 14.0, 23.0]] * 2) if b"1.5" in body else X4
    np.testing.assert_array_equal(X, expected)
    assert X.dtype == np.float64 and X.flags.c_contiguous


def test_decode_one_json_instance_alone():
    np.testing.assert_array_equal(codec.decode(b'{"features": [1, 2]}', "application/json"),
                                  [[1, 2]])
    np.testing.assert_array_equal(codec.decode(b"[1, 2]", "application/json"), [[1, 2]])


def test_decode_recordio_dense_and_sparse(float_dtype):
    X = np.random.default_rng(0).random((5, 6)).astype(float_dtype)
    decoded = codec.decode(to_bytes(X), codec.RECORDIO, dtype=float_dtype)
    np.testing.assert_array_equal(decoded, X)
    assert decoded.dtype == float_dtype
    X[X < 0.5] = 0
    decoded = codec.decode(to_bytes(sp.csr_matrix(X)), codec.RECORDIO, dtype=float_dtype)
    assert sp.issparse(decoded)
    np.testing.assert_array_equal(decoded.toarray(), X)


def test_decode_large_recordio_takes_the_compiled_path():
    X = np.random.default_rng(0).random((3000, 40)).astype(np.float32)
    np.testing.assert_array_equal(codec.decode(to_bytes(X), codec.RECORDIO, dtype=np.float32), X)


def test_decode_sparse_json_rows():
    body = json.dumps({"instances": [
        {"data": {"features": {"keys": [1, 3], "shape": [4], "values": [2.0, 5.0]}}},
        {"features": [1, 0, 0, 1]}]}).encode()
    X = codec.decode(body, "application/json")
    assert sp.issparse(X)
    np.testing.assert_array_equal(X.toarray(), [[0, 2, 0, 5], [1, 0, 0, 1]])


@pytest.mark.parametrize("n_rows", [300, 5000], ids=["line parser", "pandas parser"])
def test_decode_csv_matches_numpy(n_rows):
    X = np.random.default_rng(0).random((n_rows, 7))
    body = "\n".join(",".join(map(repr, row)) for row in X.tolist()).encode()
    np.testing.assert_array_equal(codec.decode(body, "text/csv", max_bytes=None), X)
    for bad, fragment in ((body + b"\n1,2", f"line {n_rows + 1} has 2 columns"),
                          (body.replace(b",", b",x", 1), "is not a number"),
                          (body.replace(b"\n", b"\n1,2,3,4,5,6,7,8\n", 1), "line 2 has 8")):
        with pytest.raises(codec.CodecError, match=fragment):
            codec.decode(bad, "text/csv", max_bytes=None)


@pytest.mark.parametrize("body, content_type, fragment", [
    (b"1,2,x\n", "text/csv", "'x' is not a number"),
    (b"1,2,3\n4,5\n", "text/csv", "line 2 has 2 columns"),
    (b"\xff\xfe1,2", "text/csv", "not UTF-8"),
    (b"1,2", "text/csv; label_size=2", "leaves no features"),
    (b"{", "application/json", "malformed JSON"),
    (b'{"instances": 3}', "application/json", '"instances" must be a list'),
    (b'{"instances": [{"feature": [1]}]}', "application/json", "instance 0 is not"),
    (b'{"instances": [[1, 2], [1]]}', "application/json", "instance 1 has 1 features"),
    (b'{"instances": [["a", 2]]}', "application/json", "must be numbers"),
    (b'{"instances": []}', "application/json", "no instances"),
    (b'{"features": [1, 2]}\n{"features": [1', "application/jsonlines", "line 2"),
    (b"not recordio at all", codec.RECORDIO, "malformed RecordIO-protobuf"),
    (b"   \n", "text/csv", "empty request body"),
    (b"1,nan", "text/csv", "row 0 holds NaN"),
    (b'{"instances": [{"data": {"features": {"keys": [7], "shape": [4], "values": [1]}}}]}',
     "application/json", "outside [0, 4)"),
])
def test_malformed_requests_are_400_with_a_message(body, content_type, fragment):
    with pytest.raises(codec.CodecError, match=None) as caught:
        codec.decode(body, content_type)
    assert caught.value.status == 400
    assert fragment in str(caught.value)


def test_wrong_feature_count_is_400():
    with pytest.raises(codec.CodecError, match="rows have 3 features; the model expects 4") \
            as caught:
        codec.decode(b"1,2,3", "text/csv", n_features=4)
    assert caught.value.status == 400


def test_unknown_content_type_is_415_and_oversize_is_413():
    with pytest.raises(codec.UnsupportedMediaType, match="image/png") as caught:
        codec.decode(b"1,2", "image/png")
    assert caught.value.status == 415
    with pytest.raises(codec.PayloadTooLarge, match="exceeds the limit of 10 bytes") as caught:
        codec.decode(b"1,2,3,4,5,6,7", "text/csv", max_bytes=10)
    assert caught.value.status == 413


# -- responses ------------------------------------------------------------------------------------

KMEANS = {"closest_cluster": np.array([1, 0], dtype=np.float32),
          "distance_to_cluster": np.array([2.3, 0.5], dtype=np.float32)}
KNN_VERBOSE = {"predicted_label": np.array([0.0, 2.0]),
               "labels": np.array([[0.0, 1.0, 0.0], [2.0, 2.0, 0.0]]),
               "distances": np.array([[3.1, 3.8, 6.3], [1.0, 3.0, 5.2]], dtype=np.float32)}


def test_json_response_is_sagemakers():
    body, content_type = codec.encode(KMEANS, "application/json")
    assert content_type == "application/json"
    assert json.loads(body) == {"predictions": [
        {"closest_cluster": 1.0, "distance_to_cluster": 2.3},
        {"closest_cluster": 0.0, "distance_to_cluster": 0.5}]}
    body, _ = codec.encode(KNN_VERBOSE, "application/json; verbose=true")
    assert json.loads(body)["predictions"][1] == {
        "predicted_label": 2.0, "labels": [2.0, 2.0, 0.0], "distances": [1.0, 3.0, 5.2]}


def test_jsonlines_and_csv_responses():
    body, content_type = codec.encode(KMEANS, "application/jsonlines")
    assert content_type == "application/jsonlines"
    assert [json.loads(line) for line in body.decode().splitlines()] == [
        {"closest_cluster": 1.0, "distance_to_cluster": 2.3},
        {"closest_cluster": 0.0, "distance_to_cluster": 0.5}]
    body, content_type = codec.encode(KNN_VERBOSE, "text/csv")
    assert content_type == "text/csv"
    assert body.decode().splitlines()[1] == "2.0,2.0,2.0,0.0,1.0,3.0,5.2"


def test_recordio_response_has_label_keys_readable_by_protobuf():
    body, content_type = codec.encode(KNN_VERBOSE, codec.RECORDIO)
    assert content_type == codec.RECORDIO
    Record = protobuf_message_class()
    records = []
    for _, _, payload in iter_payloads(io.BytesIO(body)):
        record = Record()
        record.ParseFromString(payload)
        records.append(record)
    assert len(records) == 2 and not records[0].features
    assert list(records[1].label["predicted_label"].float64_tensor.values) == [2.0]
    assert list(records[1].label["labels"].float64_tensor.values) == [2.0, 2.0, 0.0]
    np.testing.assert_allclose(records[0].label["distances"].float32_tensor.values,
                               [3.1, 3.8, 6.3], rtol=1e-6)
    decoded = codec.decode_predictions(body, content_type)
    np.testing.assert_array_equal(decoded["labels"], KNN_VERBOSE["labels"])


def test_string_labels_travel_as_bytes_in_recordio_and_strings_in_json():
    predictions = {"predicted_label": np.array(["cat", "dog"])}
    for accept in (codec.RECORDIO, codec.JSON, codec.JSONLINES):
        body, content_type = codec.encode(predictions, accept)
        assert codec.decode_predictions(body, content_type)["predicted_label"].tolist() == \
            ["cat", "dog"]
    body, _ = codec.encode(predictions, codec.RECORDIO)
    _, _, payload = next(iter_payloads(io.BytesIO(body)))
    assert decode_record(payload)[1]["predicted_label"] == b"cat"


@pytest.mark.parametrize("accept, expected", [
    (None, codec.Accept(codec.JSON)),
    ("*/*", codec.Accept(codec.JSON)),
    ("application/json; verbose=true", codec.Accept(codec.JSON, verbose=True)),
    ("image/png, text/csv", codec.Accept(codec.CSV)),
    ("text/csv;q=0.5, application/jsonlines", codec.Accept(codec.JSONLINES)),
    ("application/x-recordio-protobuf", codec.Accept(codec.RECORDIO)),
])
def test_negotiate(accept, expected):
    assert codec.negotiate(accept) == expected


def test_unknown_accept_is_406():
    with pytest.raises(codec.NotAcceptable, match="image/png") as caught:
        codec.negotiate("image/png")
    assert caught.value.status == 406


# -- the predictor behind both ---------------------------------------------------------------

def test_kmeans_predictor_matches_the_estimator(blobs):
    X, _, _ = blobs
    km = StreamingKMeans(k=5, random_state=0).fit(X)
    predictions = Predictor(km)(X)
    np.testing.assert_array_equal(predictions["closest_cluster"], km.predict(X))
    np.testing.assert_allclose(predictions["distance_to_cluster"], km.transform(X).min(axis=1),
                               rtol=1e-4, atol=1e-4)
    assert predictions["distance_to_cluster"].dtype == X.dtype


def test_knn_predictor_matches_the_estimator(blobs):
    X, y, _ = blobs
    labels = np.array(["a", "b", "c", "d", "e"])[y]
    knn = ApproxKNN(k=3).fit(X, labels)
    predictions = Predictor(knn)(X[:20], verbose=True)
    np.testing.assert_array_equal(predictions["predicted_label"], knn.predict(X[:20]))
    distances, indices = knn.kneighbors(X[:20])
    np.testing.assert_array_equal(predictions["labels"], knn.classes_[knn.sample_labels_[
        indices]])
    np.testing.assert_allclose(predictions["distances"], distances)
    assert "labels" not in Predictor(knn)(X[:2])


def test_predictor_refuses_an_unfitted_model():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        Predictor(StreamingKMeans())


def test_compiled_csv_parser_gives_python_floats_exactly():
    """The compiled parser of clean CSV bodies returns exactly the doubles ``float`` gives, on
    the fast path (short decimals) and off it (17+ digits, large exponents, strtod)."""
    from skmk._kernels import parse_csv

    rng = np.random.default_rng(0)
    values = np.concatenate([rng.standard_normal(3000) * 10.0 ** rng.integers(-40, 40, 3000),
                             rng.random(3000), rng.integers(-10**6, 10**6, 3000)])
    for fmt in (repr, "{:.6g}".format, "{:.3e}".format, "{:.20f}".format):
        cells = [fmt(float(v)) for v in values]
        body = "\n".join(",".join(cells[i:i + 9]) for i in range(0, len(cells), 9)).encode()
        expected = np.array([float(cell) for cell in cells]).reshape(-1, 9)
        np.testing.assert_array_equal(parse_csv(body), expected)


@pytest.mark.parametrize(("body", "expected"), [
    (b"1,2\r\n\r\n 3 ,\t4\n", [[1.0, 2.0], [3.0, 4.0]]),
    (b"1.,.5,-0,+2e-3,1E2", [[1.0, 0.5, -0.0, 0.002, 100.0]]),
    (b"1e999,1", [[np.inf, 1.0]]),  # as float() reads it; the finite check rejects it later
])
def test_compiled_csv_parser_reads_clean_bodies(body, expected):
    from skmk._kernels import parse_csv

    np.testing.assert_array_equal(parse_csv(body), np.array(expected))


@pytest.mark.parametrize("body", [b"", b"\n \n", b"1,2\n3", b"a,1", b"nan,1", b"1e,2",
                                  b"0x1p3,1", b"1_000,2", b"-,1", b".,1", b"1,,2", b"1\x002"])
def test_compiled_csv_parser_leaves_unclean_bodies_to_python(body):
    """Anything but clean numbers returns None: the Python parser then reads it (``1_000``,
    ``nan``) or names the problem."""
    from skmk._kernels import parse_csv

    assert parse_csv(body) is None
