"""The ``skmk`` command.

``skmk demo`` is the main job on the embedded default: it trains both algorithms in-process on a
dataset bundled with scikit-learn and reports what SageMaker would report. ``skmk info`` prints
what the kernels were built with and the thread pools they will use.
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def _demo(args: argparse.Namespace) -> int:
    import numpy as np
    from sklearn.cluster import KMeans
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    from . import ApproxKNN, StreamingKMeans

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, random_state=args.seed, stratify=y
    )
    print(f"data: scikit-learn digits, {X_train.shape[0]} train / {X_test.shape[0]} test rows, "
          f"{X.shape[1]} features, float32")

    kmeans = StreamingKMeans(k=args.k, mini_batch_size=500, eval_metrics=["msd", "ssd"],
                             random_state=args.seed)
    print("\n[StreamingKMeans] hyperparameters:", json.dumps(kmeans.to_hyperparameters()))
    start = time.perf_counter()
    kmeans.fit(X_train)
    elapsed = time.perf_counter() - start
    metrics = kmeans.evaluate(X_test)
    print(f"  fit {elapsed:.2f} s on {X_train.shape[0]} rows: {kmeans.n_extra_centers_} extra "
          f"centers -> k={args.k}")
    print("  test metrics:", ", ".join(f"{name}={value:.4f}" for name, value in metrics.items()))
    reference = KMeans(args.k, n_init=3, random_state=args.seed).fit(X_train)
    reference_ssd = -reference.score(X_test)
    print(f"  scikit-learn KMeans(n_init=3) test ssd={reference_ssd:.4f} "
          f"(ratio {metrics['ssd'] / reference_ssd:.3f})")
    print("  first test rows -> clusters:", kmeans.predict(X_test[:10]).tolist())

    knn = ApproxKNN(k=5, predictor_type="classifier", random_state=args.seed)
    print("\n[ApproxKNN] hyperparameters:", json.dumps(knn.to_hyperparameters()))
    start = time.perf_counter()
    knn.fit(X_train, y_train)
    elapsed = time.perf_counter() - start
    metrics = knn.evaluate(X_test, y_test)
    print(f"  fit {elapsed:.2f} s, index {knn.index_type}, {knn.n_samples_fit_} rows sampled")
    print("  test metrics:", ", ".join(f"{name}={value:.4f}" for name, value in metrics.items()))
    print("  first test rows -> labels:", knn.predict(X_test[:10]).tolist(),
          "truth:", y_test[:10].tolist())
    return 0


def _info(args: argparse.Namespace) -> int:
    from threadpoolctl import threadpool_info

    from . import __version__
    from ._kernels import effective_n_threads, openmp_enabled

    print(f"skmk {__version__}")
    print(f"kernels: OpenMP {'on' if openmp_enabled() else 'off'}, "
          f"{effective_n_threads()} threads")
    for pool in threadpool_info():
        print(f"  {pool['user_api']:<7} {pool['internal_api']:<9} {pool.get('version')} "
              f"threads={pool['num_threads']}  {pool['filepath']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="skmk", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="train both algorithms on a bundled dataset")
    demo.add_argument("--k", type=int, default=10, help="clusters for StreamingKMeans")
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(run=_demo)
    info = commands.add_parser("info", help="build and thread-pool information")
    info.set_defaults(run=_info)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
