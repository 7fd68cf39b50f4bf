"""Nearest-center assignment: skmk's chunked GEMM kernel against numpy and scikit-learn.

The physical floor is the GEMM X @ C.T itself (2·n·d·K flops); everything else an assignment
does (norms, argmin) should hide behind it. Fashion-MNIST train, 60,000 × 784, float32 (the dtype
SageMaker trains in) and float64, K ∈ {100, 1000} centers drawn from the data.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import pairwise_distances_argmin_min

from skmk._kernels import nearest_centers

from ..datasets import load_fashion_mnist
from ..harness import Case, suite


def _cases(ctx):
    X_train = load_fashion_mnist(ctx.data_dir)[0]
    n = 6000 if ctx.quick else X_train.shape[0]
    for dtype in (np.float32, np.float64):
        X = np.ascontiguousarray(X_train[:n], dtype=dtype)
        for K in (100, 1000):
            rng = np.random.default_rng(K)
            C = np.ascontiguousarray(X[rng.choice(n, K, replace=False)])
            reference = nearest_centers(X, C)[0]
            group = f"{np.dtype(dtype).name} K={K}"
            params = {"n": n, "d": X.shape[1], "K": K}

            def agreement(labels, reference=reference):
                return {"label agreement": float(np.mean(labels == reference))}

            def numpy_argmin(_, X=X, C=C):
                return ((C * C).sum(axis=1) - 2 * (X @ C.T)).argmin(axis=1)

            yield Case(group, "bare GEMM X @ C.T (floor)", lambda _, X=X, C=C: X @ C.T,
                       params=params)
            yield Case(group, "skmk nearest_centers", lambda _, X=X, C=C: nearest_centers(X, C)[0],
                       quality=agreement, params=params)
            yield Case(group, "numpy GEMM + argmin", numpy_argmin, quality=agreement,
                       params=params)
            yield Case(group, "sklearn pairwise_distances_argmin_min",
                       lambda _, X=X, C=C: pairwise_distances_argmin_min(X, C)[0],
                       quality=agreement, params=params)


def _summarize(results):
    lines = ["| case | skmk / bare GEMM | skmk / numpy GEMM+argmin | skmk / scikit-learn |",
             "|---|---|---|---|"]
    by_group: dict[str, dict[str, float]] = {}
    for result in results:
        by_group.setdefault(result.group, {})[result.name.split()[0]] = result.median_s
    for group, times in by_group.items():
        skmk = times["skmk"]
        lines.append(f"| {group} | {skmk / times['bare']:.2f}× | {skmk / times['numpy']:.2f}× | "
                     f"{skmk / times['sklearn']:.2f}× |")
    lines += ["", "Goal (issue 2): ≤ 1.5× the bare GEMM and ≤ 1× numpy GEMM + argmin."]
    return lines


suite("assign", "Nearest-center assignment kernel (Fashion-MNIST 60,000 × 784)",
      summarize=_summarize)(_cases)
