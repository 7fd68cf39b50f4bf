"""Endpoints on Ray Serve: skmk's k-means endpoint against a trivial deployment, same run.

The suite starts its own Ray head on 127.0.0.1 (``tests/servers.py``'s ``start_ray_head``: free
ports, a private temp dir, stopped by PID at the end) and Serve's HTTP ingress on a free
loopback port. Both applications run one replica with 0.5 CPU, the same ``max_ongoing_requests``
and the same ingress; the trivial one answers a constant without reading the body.

Everything runs twice, one cluster after the other, once per ingress (the ``ingress`` column):

* ``proxy``: Serve's default HTTP proxy actor. It forwards a request's scope to the replica;
  the replica fetches the body by one more actor call back to the proxy.
* ``haproxy``: HAProxy with direct ingress (``RAY_SERVE_ENABLE_HA_PROXY=1``, see
  ``servers.haproxy_ingress_env``): HAProxy forwards the whole request to the replica's own HTTP
  server, so the body arrives with it.

Groups (the HAProxy ones carry ", HAProxy ingress" in their name):

* ``8 clients, 1-row CSV, round N``: 8 concurrent keep-alive clients (one asyncio loop in
  this process) send single Fashion-MNIST rows (784 features) as ``text/csv``; throughput
  (req/s) and latency percentiles. The goal: skmk ≥ 90 % of the trivial deployment's
  throughput, both behind the same ingress. Three trivial baselines: one that answers without
  reading the body, one that reads it first (``BodyReadingServer``), and one that also passes
  it through ``@serve.batch`` as skmk must (``batching_server``): no deployment that implements
  the contract as the issue asks (read the body, batch with ``@serve.batch``) can beat it.
  Three rounds of the four deployments; the verdict is the median of the per-round ratios.
* ``1 client``: one client, one request at a time: a single row, and a 1,000-row CSV request.
* ``per-request work``: the same steps in this process, without HTTP — decode a 1-row CSV body,
  predict one row, predict a batch of 8, encode the JSON answer — to show where time goes.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time

import numpy as np

from ..datasets import load_fashion_mnist
from ..harness import Case, suite

TRIVIAL = "trivial deployment (constant)"
BODY = "trivial deployment reading the body"
BATCHING = "trivial deployment batching the body"
SKMK = "skmk k-means endpoint"

#: Requests per client per timed run (8 clients), and rounds of the four deployments.
REQUESTS_PER_CLIENT = 120
CLIENTS = 8
ROUNDS = 3
THROUGHPUT = f"{CLIENTS} clients, 1-row CSV"

#: Serve's HTTP ingress configurations, measured one cluster after the other.
INGRESSES = {"proxy": "Serve's default proxy", "haproxy": "HAProxy ingress"}


def _group(name: str, ingress: str) -> str:
    """A group's name; the default proxy's groups keep the names they had before HAProxy."""
    return name if ingress == "proxy" else f"{name}, {INGRESSES[ingress]}"


CONSTANT = b'{"predictions":[{"closest_cluster":0.0,"distance_to_cluster":0.0}]}'


class TrivialServer:
    """The baseline: a Serve deployment that answers a constant."""

    def __init__(self):
        from skmk.remote._serve import bind_replica_grpc_to_node_ip

        bind_replica_grpc_to_node_ip()  # the same loopback-only replica as skmk's

    async def __call__(self, request):
        from starlette.responses import Response

        return Response(CONSTANT, media_type="application/json")


class BodyReadingServer(TrivialServer):
    """The transport floor of the contract: reads the request body, answers a constant.

    Serve's default HTTP proxy hands a replica the request's scope; the body comes on demand,
    by one more actor call from the replica back to the proxy. A deployment that never reads
    the body (``TrivialServer``) skips that call; any server of ``/invocations`` must make it.
    Behind HAProxy the body arrives with the request and reading it costs nothing extra.
    """

    async def __call__(self, request):
        from starlette.responses import Response

        await request.body()
        return Response(CONSTANT, media_type="application/json")


def batching_server():
    """The ceiling of skmk's design, built when Ray is at hand: a deployment that reads the
    body and hands it through ``@serve.batch`` with skmk's settings, then answers a constant.
    What separates it from skmk is skmk's own work: decoding, predicting, encoding."""
    from ray import serve

    from skmk.remote._serve import BATCH_ROWS

    class BatchingServer(TrivialServer):
        async def __call__(self, request):
            from starlette.responses import Response

            await self._through_batch(await request.body())
            return Response(CONSTANT, media_type="application/json")

        @serve.batch(max_batch_size=BATCH_ROWS, batch_wait_timeout_s=0.0)
        async def _through_batch(self, bodies: list) -> list:
            return bodies

    return BatchingServer


# -- the load generator ---------------------------------------------------------------------------

async def _client(host: str, port: int, path: str, bodies: list[bytes], n: int,
                  latencies: list[float]) -> None:
    """One keep-alive HTTP/1.1 connection sending ``n`` POSTs one after the other."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        for i in range(n):
            body = bodies[i % len(bodies)]
            request = (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                       f"Content-Type: text/csv\r\nContent-Length: {len(body)}\r\n\r\n"
                       ).encode() + body
            start = time.perf_counter()
            writer.write(request)
            status = await reader.readline()
            length = None
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if length is None:
                raise RuntimeError(f"response without Content-Length: {status!r}")
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - start)
            if not status.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(f"request failed: {status!r}")
    finally:
        writer.close()


def _load(url: str, bodies: list[bytes], clients: int, per_client: int,
          timeout: float = 300.0) -> dict:
    """Run ``clients`` concurrent clients; returns latencies and wall time."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    latencies: list[float] = []

    async def main():
        await asyncio.wait_for(asyncio.gather(*(
            _client(parts.hostname, parts.port, parts.path + "/invocations",
                    bodies[i::clients] or bodies, per_client, latencies)
            for i in range(clients))), timeout)

    start = time.perf_counter()
    asyncio.run(main())
    return {"seconds": time.perf_counter() - start, "latencies": latencies}


def _stats(runs: list[dict]) -> dict:
    """Median throughput over the repeats; latency percentiles over every request."""
    latencies = np.concatenate([run["latencies"] for run in runs]) * 1e3
    return {
        "req/s": statistics.median(len(run["latencies"]) / run["seconds"] for run in runs),
        "p50 ms": float(np.percentile(latencies, 50)),
        "p99 ms": float(np.percentile(latencies, 99)),
        "requests": len(latencies),
    }


def _csv_rows(X) -> list[bytes]:
    return [",".join(f"{v:g}" for v in row).encode() for row in X.tolist()]


# -- the cluster ----------------------------------------------------------------------------------

def _start_cluster(ingress: str):
    """A Ray head of our own on loopback, Serve's ``ingress`` on a free loopback port."""
    from tests.servers import RAY_ENV, start_ray_head  # the tests' launcher, shared

    os.environ.update(RAY_ENV)  # before Ray is imported, for this driver
    head = start_ray_head(num_cpus=2, ingress=ingress)
    try:
        import ray
        from ray import serve

        ray.init(address=head.address, log_to_driver=False)
        serve.start(http_options={"host": "127.0.0.1", "port": head.serve_port})
    except BaseException:
        head.stop()
        raise
    return head


def _stop_cluster(head) -> None:
    import ray

    try:
        from ray import serve

        serve.shutdown()  # our own head's Serve, before the head goes
    finally:
        ray.shutdown()
        head.stop()


def _endpoint_cases(ctx, ingress, model, bodies, big_body, per_client):
    """The HTTP cases of one ingress, on a cluster of their own started and stopped here."""
    head = _start_cluster(ingress)
    try:
        from ray import serve

        urls = {}
        for name, server in (("trivial", TrivialServer), ("body", BodyReadingServer),
                             ("batching", batching_server())):
            deployment = serve.deployment(server, name=name).options(
                ray_actor_options={"num_cpus": 0.5}, max_ongoing_requests=64)
            serve.run(deployment.bind(), name=name, route_prefix=f"/{name}")
            urls[name] = f"http://127.0.0.1:{head.serve_port}/{name}"
        endpoint = model.deploy("kmeans", port=head.serve_port)
        for url in (*urls.values(), endpoint.url):  # warm all: connections, code paths
            _load(url, bodies, CLIENTS, 20)

        params = {"ingress": ingress, "features": 784, "k": 10}
        # Rounds of the four, one after the other: the machine's other load drifts over
        # minutes, so each round compares deployments measured within seconds of each other.
        for number in range(1 if ctx.quick else ROUNDS):
            for name, url in ((TRIVIAL, urls["trivial"]), (BODY, urls["body"]),
                              (BATCHING, urls["batching"]), (SKMK, endpoint.url)):
                runs: list[dict] = []

                def run(_, url=url, runs=runs):
                    runs.append(_load(url, bodies, CLIENTS, per_client))
                    return runs

                yield Case(_group(f"{THROUGHPUT}, round {number + 1}", ingress), name, run,
                           quality=_stats, params={**params, "round": number + 1})

        for name, payload, n in (("skmk 1-row request", [bodies[0]], 200),
                                 ("skmk 1,000-row CSV request", [big_body], 10)):
            runs = []

            def run(_, payload=payload, n=n, runs=runs):
                runs.append(_load(endpoint.url, payload, 1, n))
                return runs

            yield Case(_group("1 client", ingress), name, run, quality=_stats,
                       params={**params, "rows": 1000 if "1,000" in name else 1,
                               "body KB": round(len(payload[0]) / 1024)})
    finally:
        _stop_cluster(head)


def _cases(ctx):
    from skmk import StreamingKMeans
    from skmk.remote import _codec
    from skmk.remote._predictor import Predictor

    X_train, _, X_test, _ = load_fashion_mnist(ctx.data_dir)
    if ctx.quick:
        X_train = X_train[:6000]
    per_client = 40 if ctx.quick else REQUESTS_PER_CLIENT
    model = StreamingKMeans(k=10, random_state=0).fit(X_train)
    bodies = _csv_rows(X_test[:2000])
    big_body = b"\n".join(_csv_rows(X_test[:1000]))

    for ingress in INGRESSES:
        yield from _endpoint_cases(ctx, ingress, model, bodies, big_body, per_client)

    predictor = Predictor(model)
    one = _codec.decode(bodies[0], "text/csv", n_features=784, dtype=np.float32)
    eight = X_test[:8]
    answer = predictor(one)
    steps = (
        ("decode 1-row CSV", lambda: _codec.decode(bodies[0], "text/csv", n_features=784,
                                                   dtype=np.float32)),
        ("predict 1 row", lambda: predictor(one)),
        ("predict 8 rows", lambda: predictor(eight)),
        ("encode JSON answer", lambda: _codec.encode(answer, _codec.JSON)),
        ("decode 1,000-row CSV", lambda: _codec.decode(big_body, "text/csv")),
    )
    for name, step in steps:
        n = 20 if "1,000" in name else 5000

        def run(_, step=step, n=n):
            start = time.perf_counter()
            for _ in range(n):
                step()
            return (time.perf_counter() - start) / n

        yield Case("per-request work", name, run,
                   quality=lambda seconds: {"µs per call": seconds * 1e6})


def _summarize(results):
    rounds: dict[str, dict[str, dict[str, dict]]] = {}  # ingress -> group -> name -> quality
    for result in results:
        if result.group.startswith(THROUGHPUT):
            rounds.setdefault(result.params["ingress"], {}).setdefault(
                result.group, {})[result.name] = result.quality
    lines = ["| check | goal | measured | verdict |", "|---|---|---|---|"]
    for ingress, by_group in rounds.items():
        where = INGRESSES[ingress]
        for baseline, label in ((TRIVIAL, "trivial deployment (constant, body unread)"),
                                (BODY, "trivial deployment reading the body"),
                                (BATCHING, "trivial deployment batching the body")):
            ratios = [r[SKMK]["req/s"] / r[baseline]["req/s"] for r in by_group.values()]
            ratio = statistics.median(ratios)
            lines.append(f"| throughput vs {label}, both behind {where} | ≥ 0.90× | "
                         f"{ratio:.3f}× (median of rounds "
                         f"{', '.join(f'{x:.3f}' for x in ratios)}) | "
                         f"{'met' if ratio >= 0.9 else 'NOT met'} |")
        ceiling = statistics.median(r[BATCHING]["req/s"] / r[TRIVIAL]["req/s"]
                                  for r in by_group.values())
        lines.append(f"| ceiling for any deployment that reads the body and uses "
                     f"`@serve.batch`: batching deployment vs constant, {where} | | "
                     f"{ceiling:.3f}× (median of rounds) | |")
        for name in (SKMK, TRIVIAL):
            p50 = statistics.median(r[name]["p50 ms"] for r in by_group.values())
            p99 = statistics.median(r[name]["p99 ms"] for r in by_group.values())
            lines.append(f"| latency, 8 clients, {name}, {where} | p50 / p99 | {p50:.2f} / "
                         f"{p99:.2f} ms (median of rounds) | |")
    if len(rounds) == len(INGRESSES):
        skmk = {ingress: statistics.median(r[SKMK]["req/s"] for r in by_group.values())
                for ingress, by_group in rounds.items()}
        lines.append(f"| skmk throughput, {INGRESSES['haproxy']} vs {INGRESSES['proxy']} | | "
                     f"{skmk['haproxy'] / skmk['proxy']:.2f}× ({skmk['haproxy']:.0f} vs "
                     f"{skmk['proxy']:.0f} req/s, medians of rounds) | |")
    for result in results:
        if result.name == "skmk 1,000-row CSV request":
            lines.append(f"| 1,000-row CSV request, {INGRESSES[result.params['ingress']]} | "
                         f"latency | p50 {result.quality['p50 ms']:.1f} ms, "
                         f"p99 {result.quality['p99 ms']:.1f} ms | |")
    return lines


suite("serve", "Endpoints: skmk on Ray Serve vs a trivial deployment",
      summarize=_summarize)(_cases)
