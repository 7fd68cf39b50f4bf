"""Endpoints on the session's real Ray head: SageMaker's contract over HTTP, faults, load."""

from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import numpy as np
import pytest
import scipy.sparse as sp
from servers import is_loopback
from sklearn.datasets import make_blobs

from skmk import ApproxKNN, StreamingKMeans
from skmk.io import to_bytes
from skmk.remote import _codec as codec

pytestmark = pytest.mark.ray

TOKEN = "s3cret-token"
MAX_BODY = 256 * 1024


def _data(n_features=8, seed=0):
    X, y = make_blobs(n_samples=400, n_features=n_features, centers=4, cluster_std=1.0,
                      random_state=seed)
    return X, y


@pytest.fixture(scope="module")
def serve_cluster(ray_head):
    import ray
    from ray import serve

    ray.init(address=ray_head.address, ignore_reinit_error=True, log_to_driver=False)
    serve.start(http_options={"host": "127.0.0.1", "port": ray_head.serve_port})
    return ray_head


@pytest.fixture(scope="module")
def kmeans(serve_cluster):
    X, _ = _data()
    model = StreamingKMeans(k=4, random_state=0).fit(X)
    endpoint = model.deploy("test-kmeans", port=serve_cluster.serve_port,
                            max_body_bytes=MAX_BODY)
    yield endpoint, model, X
    endpoint.delete()


@pytest.fixture(scope="module")
def knn(serve_cluster):
    X, y = _data(seed=1)
    model = ApproxKNN(k=3).fit(X, y)
    endpoint = model.deploy("test-knn", port=serve_cluster.serve_port, token=TOKEN,
                            route_prefix="/", autoscaling={"min_replicas": 1,
                                                           "max_replicas": 2})
    yield endpoint, model, X
    endpoint.delete()


def _call(url, body=None, headers=None, method=None):
    """(status, content type, body) of one request; HTTP errors are answers, not raises."""
    request = urllib.request.Request(url, data=body, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.status, reply.headers.get("content-type", ""), reply.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("content-type", ""), error.read()


def _invoke(endpoint, body, content_type, accept=None, token=None):
    headers = {"Content-Type": content_type}
    if accept:
        headers["Accept"] = accept
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return _call(endpoint.url + "/invocations", body, headers)


# -- the contract ---------------------------------------------------------------------------------

def test_ping_and_predict_match_the_estimator(kmeans):
    endpoint, model, X = kmeans
    assert endpoint.url.startswith("http://127.0.0.1:")
    assert endpoint.ping()
    np.testing.assert_array_equal(endpoint.predict(X), model.predict(X))
    columns = endpoint.predict_columns(X[:30])
    np.testing.assert_allclose(columns["distance_to_cluster"], model.transform(X[:30]).min(1))


def test_sparse_rows_travel_as_recordio(kmeans):
    endpoint, model, X = kmeans
    Xs = np.where(np.abs(X[:40]) < 3, 0, X[:40])
    np.testing.assert_array_equal(endpoint.predict(sp.csr_matrix(Xs)), model.predict(Xs))


@pytest.mark.parametrize("content_type, encode", [
    ("text/csv", lambda X: "\n".join(",".join(map(repr, r)) for r in X.tolist()).encode()),
    ("application/json",
     lambda X: json.dumps({"instances": [{"features": r} for r in X.tolist()]}).encode()),
    ("application/json", lambda X: json.dumps({"instances": [
        {"data": {"features": {"values": r}}} for r in X.tolist()]}).encode()),
    ("application/jsonlines",
     lambda X: "\n".join(json.dumps({"features": r}) for r in X.tolist()).encode()),
    (codec.RECORDIO, to_bytes),
])
@pytest.mark.parametrize("accept", [codec.JSON, codec.JSONLINES, codec.RECORDIO])
def test_every_request_format_and_response_format(kmeans, content_type, encode, accept):
    endpoint, model, X = kmeans
    status, answered, body = _invoke(endpoint, encode(X[:7]), content_type, accept)
    assert status == 200, body
    assert answered.startswith(accept)
    columns = codec.decode_predictions(body, answered)
    np.testing.assert_array_equal(columns["closest_cluster"], model.predict(X[:7]))
    assert set(columns) == {"closest_cluster", "distance_to_cluster"}


def test_csv_response(kmeans):
    endpoint, model, _ = kmeans
    status, answered, body = _invoke(endpoint, b"1,2,3,4,5,6,7,8", "text/csv", "text/csv")
    assert (status, answered.split(";")[0]) == (200, "text/csv")
    label, distance = body.decode().strip().split(",")
    assert float(label) == model.predict(np.arange(1.0, 9)[None])[0]
    assert float(distance) > 0


def test_knn_predicted_label_and_verbose_neighbours(knn):
    endpoint, model, X = knn
    assert endpoint.url.count("/") == 2  # route "/": SageMaker's /ping and /invocations
    np.testing.assert_array_equal(endpoint.predict(X[:25]), model.predict(X[:25]))
    status, _, body = _invoke(endpoint, b"\n".join(
        ",".join(map(repr, row)).encode() for row in X[:3].tolist()), "text/csv",
        "application/json; verbose=true", TOKEN)
    assert status == 200, body
    predictions = json.loads(body)["predictions"]
    distances, indices = model.kneighbors(X[:3])
    for got, dist, idx, label in zip(predictions, distances, indices, model.predict(X[:3])):
        assert got["predicted_label"] == float(label)
        assert got["labels"] == model.classes_[model.sample_labels_[idx]].astype(float).tolist()
        np.testing.assert_allclose(got["distances"], dist, rtol=1e-5)
    status, _, body = _invoke(endpoint, b"1,2,3,4,5,6,7,8", "text/csv", codec.JSON, TOKEN)
    assert set(json.loads(body)["predictions"][0]) == {"predicted_label"}


@pytest.mark.parametrize("token", [None, "wrong", TOKEN + "x"])
def test_missing_or_wrong_token_is_401(knn, token):
    endpoint, _, _ = knn
    status, _, body = _invoke(endpoint, b"1,2,3,4,5,6,7,8", "text/csv", token=token)
    assert status == 401 and b"bearer token" in body
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    assert _call(endpoint.url + "/ping", headers=headers)[0] == 401
    assert _call(endpoint.url + "/ping", headers={"Authorization": f"Bearer {TOKEN}"})[0] == 200


# -- faults: a 4xx with a message, and the endpoint keeps serving ---------------------------------

@pytest.mark.parametrize("body, content_type, accept, status, fragment", [
    (b"1,2,x,4,5,6,7,8", "text/csv", None, 400, "not a number"),
    (b"1,2,3,4,5,6,7,8\n1,2", "text/csv", None, 400, "line 2 has 2 columns"),
    (b'{"instances": [{"features": [1, 2', "application/json", None, 400, "malformed JSON"),
    (b"1,2,3", "text/csv", None, 400, "rows have 3 features; the model expects 8"),
    (b"1,2,3,4,5,6,7,8", "image/png", None, 415, "unsupported Content-Type"),
    (b"1,2,3,4,5,6,7,8", "text/csv", "image/png", 406, "cannot answer in"),
    (b"0," * (MAX_BODY // 2 + 10) + b"0", "text/csv", None, 413, "exceeds the limit"),
    (b"\x0a\x23\xd7\xce garbage", codec.RECORDIO, None, 400, "malformed RecordIO"),
    (b"", "text/csv", None, 400, "empty request body"),
])
def test_bad_requests_get_4xx_and_the_endpoint_keeps_serving(kmeans, body, content_type,
                                                             accept, status, fragment):
    endpoint, model, X = kmeans
    got, answered, message = _invoke(endpoint, body, content_type, accept)
    assert got == status, message
    assert fragment in message.decode()
    assert answered.startswith("text/plain")
    np.testing.assert_array_equal(endpoint.predict(X[:5]), model.predict(X[:5]))


def test_unknown_route_and_wrong_method(kmeans):
    endpoint, _, _ = kmeans
    assert _call(endpoint.url + "/predict", b"1", {"Content-Type": "text/csv"})[0] == 404
    assert _call(endpoint.url + "/invocations")[0] == 405
    assert _call(endpoint.url + "/ping", b"", method="POST")[0] == 405


# -- load -----------------------------------------------------------------------------------------

def test_concurrent_clients_lose_no_responses(kmeans):
    """8 clients × 500 single-row requests on keep-alive connections, within 120 s."""
    endpoint, model, X = kmeans
    url = urllib.parse.urlsplit(endpoint.url)
    expected = model.predict(X)
    bodies = [",".join(map(repr, row)).encode() for row in X.tolist()]
    deadline = time.monotonic() + 120
    results, errors = [], []

    def client(seed):
        connection = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
        rows = np.random.default_rng(seed).integers(0, len(X), 500)
        got = 0
        try:
            for row in rows:
                if time.monotonic() > deadline:
                    errors.append(f"client {seed}: deadline passed after {got} requests")
                    return
                connection.request("POST", url.path + "/invocations", bodies[row],
                                   {"Content-Type": "text/csv"})
                reply = connection.getresponse()
                body = reply.read()
                if reply.status != 200:
                    errors.append(f"client {seed}: HTTP {reply.status}: {body[:200]!r}")
                    return
                label = json.loads(body)["predictions"][0]["closest_cluster"]
                if label != expected[row]:
                    errors.append(f"client {seed}: row {row} got {label}")
                    return
                got += 1
        except OSError as error:
            errors.append(f"client {seed}: {error!r} after {got} requests")
        finally:
            connection.close()
            results.append(got)

    threads = [threading.Thread(target=client, args=(seed,)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(150)
    assert not errors, errors[:5]
    assert sum(results) == 8 * 500


# -- lifecycle (last: it changes the model) -------------------------------------------------------

def test_update_serves_the_new_model_then_delete_stops_it(serve_cluster):
    X, _ = _data(seed=2)
    first = StreamingKMeans(k=2, random_state=0).fit(X)
    endpoint = first.deploy("test-update", port=serve_cluster.serve_port)
    try:
        assert set(np.unique(endpoint.predict(X))) <= {0, 1}
        second = StreamingKMeans(k=4, random_state=0).fit(X)
        endpoint.update(second)
        np.testing.assert_array_equal(endpoint.predict(X), second.predict(X))
    finally:
        endpoint.delete()
    assert not endpoint.ping()


def test_deploy_a_model_artifact_by_url_checksums_verified(serve_cluster, tmp_path):
    from skmk.remote import ArtifactError, save_model
    from skmk.remote._endpoint import deploy

    X, _ = _data(seed=3)
    model = StreamingKMeans(k=3, random_state=0).fit(X)
    save_model(model, str(tmp_path / "model"))
    endpoint = deploy(str(tmp_path / "model"), name="test-artifact",
                      port=serve_cluster.serve_port)
    try:
        np.testing.assert_array_equal(endpoint.predict(X), model.predict(X))
    finally:
        endpoint.delete()
    (tmp_path / "model" / "model.pkl").write_bytes(b"tampered")
    with pytest.raises(ArtifactError, match=r"checksum mismatch for model\.pkl"):
        deploy(str(tmp_path / "model"), name="never", port=serve_cluster.serve_port)


def test_an_unfitted_model_is_refused_before_anything_starts():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        StreamingKMeans(k=3).deploy("never")


def test_nothing_listens_beyond_loopback(kmeans, serve_cluster):
    """The head's processes (Serve's proxy, the replicas' gRPC servers, ...) bind loopback."""
    sockets = serve_cluster.sockets()
    assert any(port == serve_cluster.serve_port for _, port, _ in sockets)
    assert all(is_loopback(address) for address, _, _ in sockets), sorted(sockets)
