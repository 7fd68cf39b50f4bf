"""ApproxKNN against raw faiss and scikit-learn on Fashion-MNIST (train 60,000 → test 10,000).

Groups:

* ``flat``: accuracy and predict throughput of skmk's Flat L2 index against raw faiss
  ``IndexFlatL2`` search plus a numpy vote, and scikit-learn's brute-force k-NN. skmk's Flat
  search builds its low-rank bound on the first search, so every timed predict runs on a
  freshly fitted model (fitted untimed before each repeat) and pays that build; a second row
  runs the same model with the bound switched off (faiss answers).
* ``ivf``: IVFFlat with default nlists and nprobe="auto", IVFPQ (index bytes against Flat).
* ``reduction``: sign and fjlt to 64 and 128 dimensions: accuracy, fit time, predict
  throughput, and the transform alone (FJLT against the dense sign projection).
* ``fit``: skmk's fit against raw faiss building the same index.
* ``regressor``: R² and throughput on scikit-learn's bundled diabetes set (80/20 split of the
  patients; the 89 test rows repeated 200 times so that timings are measurable) against
  ``KNeighborsRegressor``.
"""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.metrics import r2_score
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor

from skmk import ApproxKNN
from skmk.neighbors import _faiss_index
from skmk.neighbors._approx_knn import vote

from ..datasets import load_fashion_mnist
from ..harness import Case, suite


def _data(ctx):
    X_train, y_train, X_test, y_test = load_fashion_mnist(ctx.data_dir)
    if ctx.quick:
        X_train, y_train, X_test, y_test = X_train[:6000], y_train[:6000], X_test[:1000], \
            y_test[:1000]
    return X_train, y_train, X_test, y_test


def _accuracy(y_test):
    return lambda predicted: {"accuracy": float(np.mean(predicted == y_test))}


def _index_bytes(index) -> int:
    return int(_faiss_index.serialize(index).size)


def _faiss_flat(X_train):
    import faiss

    index = faiss.IndexFlatL2(X_train.shape[1])
    index.add(X_train)
    return index


def _cases(ctx):
    import faiss

    X_train, y_train, X_test, y_test = _data(ctx)
    n_test = X_test.shape[0]
    accuracy = _accuracy(y_test)
    params = {"train": X_train.shape[0], "test": n_test, "k": 5}

    # -- Flat --
    def fresh_flat(bounded=True):
        model = ApproxKNN(k=5, random_state=0).fit(X_train, y_train)
        if model._flat_search_ is not None:
            model._flat_search_.enabled = bounded
        return model

    def flat_quality(result):
        predicted, model = result
        accelerator = model._flat_search_
        search = accelerator and accelerator._search
        evaluated = {} if not search else {
            "exact / query": search.n_evaluated / max(n_test - 64, 1)}
        return {**accuracy(predicted), **evaluated}

    flat = fresh_flat()
    raw = _faiss_flat(X_train)
    yield Case("flat L2 predict", "skmk ApproxKNN Flat", lambda m: (m.predict(X_test), m),
               setup=fresh_flat, quality=flat_quality, params=params)
    yield Case("flat L2 predict", "skmk ApproxKNN Flat, bound off (faiss search)",
               lambda m: (m.predict(X_test), m), setup=lambda: fresh_flat(bounded=False),
               quality=flat_quality, params=params)
    yield Case("flat L2 predict", "raw faiss IndexFlatL2 + numpy vote",
               lambda _: vote(y_train[raw.search(X_test, 5)[1]], 10), quality=accuracy,
               params=params)
    brute = KNeighborsClassifier(5, algorithm="brute").fit(X_train, y_train)
    yield Case("flat L2 predict", "scikit-learn KNeighborsClassifier brute",
               lambda _: brute.predict(X_test), quality=accuracy, params=params)

    # -- IVF --
    flat_bytes = _index_bytes(flat.index_)
    for index_type in ("faiss.IVFFlat", "faiss.IVFPQ"):
        model = ApproxKNN(k=5, index_type=index_type, random_state=0).fit(X_train, y_train)

        def quality(predicted, model=model):
            return {**accuracy(predicted), "nprobe": model.nprobe_, "nlists": model.nlists_,
                    "index MB": _index_bytes(model.index_) / 2**20,
                    "bytes / Flat": _index_bytes(model.index_) / flat_bytes}

        yield Case("ivf predict", f"skmk {index_type} nprobe=auto",
                   lambda _, model=model: model.predict(X_test), quality=quality, params=params)
    for bounded in (False, True):
        yield Case("ivf predict", f"skmk faiss.Flat, bound {'on' if bounded else 'off'} (for "
                   "the throughput ratio)", lambda m: m.predict(X_test),
                   setup=lambda b=bounded: fresh_flat(b), quality=lambda p: {
                       **accuracy(p), "index MB": flat_bytes / 2**20}, params=params)

    # -- reductions --
    for reduction in ("sign", "fjlt"):
        for target in (64, 128):
            label = f"{reduction} → {target}"
            model = ApproxKNN(k=5, dimension_reduction_type=reduction,
                              dimension_reduction_target=target, random_state=0)
            yield Case("reduction fit", f"skmk fit {label}",
                       lambda _, model=model: model.fit(X_train, y_train),
                       quality=lambda m: {}, params=params)
            yield Case("reduction predict", f"skmk predict {label}",
                       lambda _, model=model: model.predict(X_test), quality=accuracy,
                       params=params)
            yield Case("reduction transform", f"{label} transform of train",
                       lambda _, model=model: model.projection_.transform(X_train),
                       params={"train": X_train.shape[0], "target": target})

    # -- fit against raw faiss building the same index --
    for index_type, nprobe in (("faiss.Flat", "auto"), ("faiss.IVFFlat", 4),
                               ("faiss.IVFFlat", "auto")):
        label = f"{index_type} nprobe={nprobe}" if index_type != "faiss.Flat" else index_type
        yield Case("fit", f"skmk fit {label}",
                   lambda _, t=index_type, p=nprobe: ApproxKNN(
                       k=5, index_type=t, nprobe=p, random_state=0).fit(X_train, y_train),
                   params=params)
    nlists = round(np.sqrt(X_train.shape[0]))
    yield Case("fit", "raw faiss IndexFlatL2 add", lambda _: _faiss_flat(X_train),
               params=params)

    def raw_ivf(_):
        quantizer = faiss.IndexFlatL2(X_train.shape[1])
        index = faiss.IndexIVFFlat(quantizer, X_train.shape[1], nlists)
        index.train(X_train)
        index.add(X_train)
        return index, quantizer

    yield Case("fit", "raw faiss IndexIVFFlat train + add", raw_ivf, params=params)

    # -- regressor --
    X, y = load_diabetes(return_X_y=True)
    order = np.random.default_rng(0).permutation(X.shape[0])
    split = int(0.8 * X.shape[0])
    X_fit, y_fit = X[order[:split]], y[order[:split]]
    # the 89 held-out patients, repeated so that a prediction takes measurable time
    X_eval, y_eval = np.tile(X[order[split:]], (200, 1)), np.tile(y[order[split:]], 200)
    reg = ApproxKNN(k=5, predictor_type="regressor").fit(X_fit, y_fit)
    ref = KNeighborsRegressor(5, algorithm="brute").fit(X_fit, y_fit)
    r2 = {"r2": None}

    def r2_quality(predicted):
        r2["r2"] = float(r2_score(y_eval, predicted))
        return dict(r2)

    reg_params = {"train": X_fit.shape[0], "test": X_eval.shape[0], "k": 5}
    yield Case("regressor predict", "skmk ApproxKNN regressor", lambda _: reg.predict(X_eval),
               quality=r2_quality, params=reg_params)
    yield Case("regressor predict", "scikit-learn KNeighborsRegressor brute",
               lambda _: ref.predict(X_eval), quality=r2_quality, params=reg_params)


def _summarize(results):
    by = {(r.group, r.name): r for r in results}
    lines = ["| check | goal | measured | verdict |", "|---|---|---|---|"]

    def row(check, goal, value, ok):
        lines.append(f"| {check} | {goal} | {value} | {'met' if ok else 'NOT met'} |")

    ours = by[("flat L2 predict", "skmk ApproxKNN Flat")]
    raw = by[("flat L2 predict", "raw faiss IndexFlatL2 + numpy vote")]
    brute = by[("flat L2 predict", "scikit-learn KNeighborsClassifier brute")]
    lines.append(f"| Flat accuracy | = scikit-learn brute ({brute.quality['accuracy']:.4f}) | "
                 f"{ours.quality['accuracy']:.4f} | see note |")
    off = by[("flat L2 predict", "skmk ApproxKNN Flat, bound off (faiss search)")]
    lines.append(f"| Flat: low-rank bound on vs off | report | "
                 f"{off.median_s / ours.median_s:.2f}× the throughput | |")
    row("Flat throughput vs raw faiss + vote", "≥ 0.95×",
        f"{raw.median_s / ours.median_s:.2f}×", raw.median_s / ours.median_s >= 0.95)
    row("Flat throughput vs scikit-learn brute", "≥ 3×",
        f"{brute.median_s / ours.median_s:.2f}×", brute.median_s / ours.median_s >= 3)
    ivf = by[("ivf predict", "skmk faiss.IVFFlat nprobe=auto")]
    flat_ivf = by[("ivf predict", "skmk faiss.Flat, bound off (for the throughput ratio)")]
    bounded_ivf = by[("ivf predict", "skmk faiss.Flat, bound on (for the throughput ratio)")]
    speed = flat_ivf.median_s / ivf.median_s
    row("IVFFlat auto accuracy", "≥ 0.850", f"{ivf.quality['accuracy']:.4f}",
        ivf.quality["accuracy"] >= 0.85)
    row("IVFFlat auto throughput vs faiss Flat search", "≥ 5×", f"{speed:.2f}×", speed >= 5)
    lines.append(f"| IVFFlat auto throughput vs skmk's bounded exact Flat | report | "
                 f"{bounded_ivf.median_s / ivf.median_s:.2f}× | |")
    pq = by[("ivf predict", "skmk faiss.IVFPQ nprobe=auto")]
    row("IVFPQ index bytes vs Flat", "≤ 1/8", f"1/{1 / pq.quality['bytes / Flat']:.0f}",
        pq.quality["bytes / Flat"] <= 1 / 8)
    for target in (64, 128):
        sign = by[("reduction transform", f"sign → {target} transform of train")]
        fjlt = by[("reduction transform", f"fjlt → {target} transform of train")]
        ratio = fjlt.median_s / sign.median_s
        row(f"FJLT transform vs sign at {target}", "faster", f"{ratio:.2f}× the time", ratio < 1)
    raw_flat = by[("fit", "raw faiss IndexFlatL2 add")]
    raw_ivf = by[("fit", "raw faiss IndexIVFFlat train + add")]
    for name, reference in (("faiss.Flat", raw_flat), ("faiss.IVFFlat nprobe=4", raw_ivf),
                            ("faiss.IVFFlat nprobe=auto", raw_ivf)):
        ratio = by[("fit", f"skmk fit {name}")].median_s / reference.median_s
        row(f"fit {name} vs raw faiss build", "≤ 1.2×", f"{ratio:.2f}×", ratio <= 1.2)
    reg = by[("regressor predict", "skmk ApproxKNN regressor")]
    ref = by[("regressor predict", "scikit-learn KNeighborsRegressor brute")]
    lines.append(f"| regressor R² / throughput vs KNeighborsRegressor | report | "
                 f"R² {reg.quality['r2']:.4f} vs {ref.quality['r2']:.4f}, "
                 f"{ref.median_s / reg.median_s:.2f}× the throughput | |")
    return lines


suite("knn", "ApproxKNN vs raw faiss and scikit-learn (Fashion-MNIST)",
      summarize=_summarize)(_cases)
