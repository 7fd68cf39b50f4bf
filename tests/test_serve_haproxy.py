"""An endpoint behind Serve's HAProxy ingress (direct ingress): the contract, and loopback only.

With ``RAY_SERVE_ENABLE_HA_PROXY=1`` HAProxy takes the HTTP port and forwards each request to
an ingress replica's own HTTP server, body included. Nothing in skmk changes; these tests check
that the endpoint behaves as it does behind Serve's default proxy, and that the extra
listeners (HAProxy's frontend, stats page and exporter, the replicas' ports) stay on loopback.
"""

from __future__ import annotations

import threading
import urllib.error
import urllib.request

import numpy as np
import pytest
from servers import is_loopback
from sklearn.datasets import make_blobs

from skmk import StreamingKMeans

pytestmark = pytest.mark.ray

TOKEN = "haproxy-token"


def _post(url, body, headers):
    """(status, body) of one POST; HTTP errors are answers, not raises."""
    request = urllib.request.Request(url, data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_endpoint_behind_haproxy_serves_refuses_and_serves_again(haproxy_head):
    import ray
    from ray import serve

    X, _ = make_blobs(n_samples=300, n_features=8, centers=3, random_state=4)
    first = StreamingKMeans(k=3, random_state=0).fit(X)
    ray.init(address=haproxy_head.address, log_to_driver=False)
    serve.start(http_options={"host": "127.0.0.1", "port": haproxy_head.serve_port})
    endpoint = first.deploy("haproxy-kmeans", port=haproxy_head.serve_port, token=TOKEN)
    assert endpoint.url == f"http://127.0.0.1:{haproxy_head.serve_port}/haproxy-kmeans"

    np.testing.assert_array_equal(endpoint.predict(X), first.predict(X))

    invocations = endpoint.url + "/invocations"
    auth = {"Content-Type": "text/csv", "Authorization": f"Bearer {TOKEN}"}
    status, body = _post(invocations, b"1,2,x,4,5,6,7,8", auth)
    assert (status, b"not a number" in body) == (400, True), body
    status, body = _post(invocations, b"1,2,3,4,5,6,7,8", {"Content-Type": "text/csv"})
    assert (status, b"bearer token" in body) == (401, True), body

    # Again, from 8 clients at once: their rows meet in the replica's batch queue.
    answers = [None] * 8

    def client(i):
        answers[i] = endpoint.predict(X[i::8])

    threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for i, answer in enumerate(answers):
        np.testing.assert_array_equal(answer, first.predict(X[i::8]))

    sockets = haproxy_head.sockets()
    assert any(name == "haproxy" and port == haproxy_head.serve_port
               for _, port, name in sockets), sorted(sockets)
    assert all(is_loopback(address) for address, _, _ in sockets), sorted(sockets)

    second = StreamingKMeans(k=2, random_state=0).fit(X)
    endpoint.update(second)
    np.testing.assert_array_equal(endpoint.predict(X), second.predict(X))
    endpoint.delete()
    assert not endpoint.ping()
