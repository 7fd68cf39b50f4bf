"""StreamingKMeans on Ray: distributed fit and training jobs against the local fit.

The suite starts its own Ray head on 127.0.0.1 (``tests/servers.py``: free ports, a private
temp dir, ``--num-cpus=2``, stopped by its PID when the suite ends) and connects to it as a
driver, with Ray's loopback-only environment set before Ray is imported.

Groups (1,000,000 × 64 seeded float32 blobs, k=100, random_state=0):

* ``fit``: the local fit (OpenMP on both cores), and on one thread; a Ray fit with 1 worker
  (the same model, plus Ray's cost: the data put in the object store, task scheduling, the
  state shipped back, the labels pass on the worker); a Ray fit with 2 workers.
* ``job``: ``fit(wait=False)`` alone (writes the 256 MB input as .npy to the artifact store and
  submits), and submit → ``attach`` end to end with 2 workers; the overhead of a job is that
  against the 2-worker Ray fit. ``job round trip, 10,000 rows`` is nearly all fixed overhead
  (driver start, connect, model write).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import tempfile
from pathlib import Path

from threadpoolctl import threadpool_limits

from skmk import StreamingKMeans

from ..datasets import make_blobs
from ..harness import Case, suite

K = 100


def _servers():
    """``tests/servers.py``: the one Ray head starter of the project (tests and benchmarks)."""
    path = Path(__file__).resolve().parents[2] / "tests" / "servers.py"
    spec = importlib.util.spec_from_file_location("skmk_test_servers", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _cases(ctx):
    servers = _servers()
    # Ray reads these when imported: every Ray process of the suite stays on loopback.
    os.environ.update(servers.RAY_ENV)
    from skmk.remote import RayBackend

    n = 100_000 if ctx.quick else 1_000_000
    X, _, _ = make_blobs(n, 64, K, seed=0)
    store = tempfile.mkdtemp(prefix="skmk-bench-store-")
    head = servers.start_ray_head(num_cpus=2, object_store_mb=1200)
    try:
        def backend(workers):
            return RayBackend(address=head.address, dashboard_url=head.dashboard_url,
                              num_workers=workers, store=store, python=sys.executable)

        backend(1).connect()
        params = {"n": n, "d": 64, "k": K}

        def ssd(model):
            return {"ssd": model.inertia_}

        yield Case("fit", "local", lambda _: StreamingKMeans(k=K, random_state=0).fit(X),
                   quality=ssd, params={**params, "workers": "-"})

        def one_thread(_):
            with threadpool_limits(1):
                return StreamingKMeans(k=K, random_state=0).fit(X)

        # What one core does: a Ray worker runs its shard single-threaded (OMP_NUM_THREADS=1).
        yield Case("fit", "local, 1 thread", one_thread, quality=ssd,
                   params={**params, "workers": "-"})
        for workers in (1, 2):
            yield Case("fit", f"Ray, {workers} worker(s)",
                       lambda _, w=workers: StreamingKMeans(
                           k=K, random_state=0, backend=backend(w)).fit(X),
                       quality=ssd, params={**params, "workers": workers})

        def submit(rows):
            return StreamingKMeans(k=K, random_state=0, backend=backend(2)).fit(
                X[:rows], wait=False).training_job_

        def round_trip(rows):
            job = submit(rows)
            return StreamingKMeans.attach(job.name, backend=backend(2), timeout=600)

        pending = []

        def wait_for_pending():
            # untimed, before each repeat: a job still running would share the two cores
            while pending:
                pending.pop().wait(600)

        def submit_only(_):
            pending.append(submit(n))
            return pending[-1]

        yield Case("job", "fit(wait=False) returns", submit_only, setup=wait_for_pending,
                   quality=lambda job: {"status": job.wait(600).lower()},
                   params={**params, "workers": 2})
        yield Case("job", "submit -> attach", lambda _: round_trip(n), quality=ssd,
                   params={**params, "workers": 2})
        yield Case("job", "job round trip, 10,000 rows", lambda _: round_trip(10_000),
                   params={"n": 10_000, "d": 64, "k": K, "workers": 2})
    finally:
        import ray

        ray.shutdown()
        head.stop()
        shutil.rmtree(store, ignore_errors=True)


def _summarize(results):
    by = {(r.group, r.name): r for r in results}
    local = by[("fit", "local")]
    one, two = by[("fit", "Ray, 1 worker(s)")], by[("fit", "Ray, 2 worker(s)")]
    job = by[("job", "submit -> attach")]
    submit = by[("job", "fit(wait=False) returns")]
    tiny = by[("job", "job round trip, 10,000 rows")]
    lines = ["| check | goal | measured | verdict |", "|---|---|---|---|"]
    ratio = two.quality["ssd"] / local.quality["ssd"]
    lines.append(f"| SSD, Ray 2 workers vs local | within ±1 % | {ratio:.4f}× | "
                 f"{'met' if abs(ratio - 1) <= 0.01 else 'NOT met'} |")
    ratio = one.quality["ssd"] / local.quality["ssd"]
    lines.append(f"| SSD, Ray 1 worker vs local | identical | {ratio:.6f}× | "
                 f"{'met' if ratio == 1 else 'NOT met'} |")
    lines.append(f"| speed-up, Ray 2 workers vs local | for reference (2 cores) | "
                 f"{local.median_s / two.median_s:.2f}× ({two.median_s:.2f} s vs "
                 f"{local.median_s:.2f} s) | |")
    single = by[("fit", "local, 1 thread")]
    lines.append(f"| speed-up, Ray 2 workers vs local on 1 thread | for reference | "
                 f"{single.median_s / two.median_s:.2f}× | |")
    lines.append(f"| Ray cost with 1 worker (single-threaded, as a worker runs) | for reference | "
                 f"+{one.median_s - single.median_s:.2f} s over local on 1 thread | |")
    lines.append(f"| job overhead vs Ray fit (2 workers) | for reference | "
                 f"+{job.median_s - two.median_s:.2f} s (of which {submit.median_s:.2f} s in "
                 f"fit(wait=False): input written to the store, job submitted) | |")
    lines.append(f"| fixed cost of a job (10,000 rows) | for reference | {tiny.median_s:.2f} s "
                 "| |")
    return lines


suite("distributed", "StreamingKMeans on Ray: distributed fit and training jobs",
      summarize=_summarize)(_cases)
