"""Entry point of a training job: ``python -m skmk.remote._job_main <job dir URL>``.

Runs in the job's driver on the Ray head (started by Ray's job manager): reads the request
``job.json``, fits the estimator with the distributed fit on the cluster, and writes the model
and, last, its manifest. Any error ends the process with a traceback in the job's log and a
non-zero status (Ray marks the job FAILED), before a manifest was written.
"""

from __future__ import annotations

import sys
import time

from ._artifacts import save_model
from ._jobs import job_estimator, load_inputs, read_request


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m skmk.remote._job_main <job directory or URL>", file=sys.stderr)
        return 2
    url = argv[0]
    request = read_request(url)
    estimator = job_estimator(request)
    name, workers = request["name"], request["workers"]["num_workers"]
    X, y, sample_weight = load_inputs(url, request["data"])
    shape = getattr(X, "shape", None)
    print(f"[skmk job {name}] {type(estimator).__name__} {request['hyperparameters']} on "
          f"{workers} worker(s), data {shape if shape is not None else X}", flush=True)
    start = time.perf_counter()
    options = {} if sample_weight is None else {"sample_weight": sample_weight}
    estimator.fit(X, y, **options)
    seconds = time.perf_counter() - start
    print(f"[skmk job {name}] fitted in {seconds:.2f} s; writing the model to {url}", flush=True)
    save_model(estimator, url, metrics={"fit_seconds": seconds, "num_workers": workers},
               job={"name": name, "submitted": request["submitted"]})
    print(f"[skmk job {name}] done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
