"""skmk on Ray, end to end on one machine: distributed fit, a training job attached by name, a
SageMaker-protocol endpoint, and a batch transform.

Run from the repository root after ``pip install -e ".[ray]"``:

    python docs/examples/ray_quickstart.py

With no cluster address, Ray starts a local cluster for the script (on 127.0.0.1: see below)
and stops it at the end. Point ``RayBackend(address=...)`` at a real cluster and nothing else
changes.
"""

import os
import sys
import tempfile
from pathlib import Path

# A laptop cluster listens on 127.0.0.1 only; Ray reads this when it is imported.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

import numpy as np
from sklearn.datasets import load_digits

from skmk import ApproxKNN, StreamingKMeans
from skmk.remote import RayBackend


def main() -> None:
    X, y = load_digits(return_X_y=True)
    work = Path(tempfile.mkdtemp(prefix="skmk-ray-"))
    # Jobs run `python -m skmk.remote._job_main` on the head: name this interpreter.
    backend = RayBackend(num_workers=2, store=str(work / "jobs"), python=sys.executable)

    # 1. Distributed fit: one state per worker shard, merged and finalized here.
    km = StreamingKMeans(k=10, random_state=0, backend=backend).fit(X)
    print("distributed fit, inertia", round(km.inertia_, 1))

    # 2. A named training job: fit returns at once; attach (from any process, later) waits.
    StreamingKMeans(k=10, random_state=0, backend=backend).fit(
        X, wait=False, job_name="digits-kmeans")
    attached = StreamingKMeans.attach("digits-kmeans", backend=backend)
    print("attached job, same labels as the distributed fit:",
          bool(np.array_equal(attached.predict(X), km.predict(X))))

    # 3. An endpoint with SageMaker's /ping and /invocations (CSV, JSON, RecordIO, ...).
    knn = ApproxKNN(k=5, random_state=0).fit(X, y)
    endpoint = knn.deploy("digits-knn")
    print("endpoint", endpoint.url, "predicts", endpoint.predict(X[:5]), "for", y[:5])
    endpoint.delete()

    # 4. Batch transform: every input file gives <name>.out below the output prefix.
    (work / "in").mkdir()
    np.savetxt(work / "in" / "part-0.csv", X[:100], delimiter=",")
    km.transformer(str(work / "out")).transform(str(work / "in"))
    first = (work / "out" / "part-0.csv.out").read_text().splitlines()[0]
    print("batch transform, first line:", first)


if __name__ == "__main__":
    main()
