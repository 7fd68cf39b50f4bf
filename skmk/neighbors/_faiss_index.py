"""faiss indexes for ApproxKNN: build, search, calibrate nprobe, serialize.

Conventions (SageMaker's): ``faiss.Flat``, ``faiss.IVFFlat`` and ``faiss.IVFPQ`` over the metric
``L2``, ``INNER_PRODUCT`` or ``COSINE`` (rows L2-normalised, then inner product). faiss works in
float32; vectors are converted once, when they enter the index or a query.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: SageMaker's allowed ``faiss_index_pq_m`` values.
ALLOWED_PQ_M = (1, 2, 3, 4, 8, 12, 16, 20, 24, 28, 32, 40, 48, 56, 64, 96)
#: ``nprobe="auto"`` searches as few lists as reach this recall of the exact neighbours on a
#: held-out slice of the sample. Measured on Fashion-MNIST (IVFFlat, 245 lists, k=5): 0.90
#: gives nprobe=4, accuracy 0.8524 at 6.7× Flat's throughput; 0.95 gives nprobe=8, 0.8538 at
#: 3.2× — half the speed for 0.14 points of accuracy.
TARGET_RECALL = 0.90
#: Rows of the sample used as calibration queries for ``nprobe="auto"`` (1,500 neighbour
#: slots at k=5: recall within about ±1.5 %, at a fifth of Fashion-MNIST's exact-search cost
#: for 1,000 queries).
CALIBRATION_QUERIES = 300


@dataclass
class IndexLayout:
    """How the vectors are laid out in the index.

    Attributes
    ----------
    dim : int
        Dimension of the vectors given to the index (after any projection).
    padded_dim : int
        ``dim`` rounded up to a multiple of ``pq_m`` for IVFPQ (zero columns appended, which
        changes no distance or inner product); ``dim`` otherwise.
    nlists : int or None
        IVF lists; None for Flat.
    pq_m : int or None
        PQ sub-quantizers; None unless IVFPQ.
    pq_nbits : int or None
        Bits per PQ code: 8, or fewer when the sample has under 256 rows to train on.
    """

    dim: int
    padded_dim: int
    nlists: int | None
    pq_m: int | None
    pq_nbits: int | None


def plan_layout(index_type: str, dim: int, n_samples: int, nlists, pq_m) -> IndexLayout:
    """Resolve "auto" and the padding for an index over ``n_samples`` vectors of ``dim``."""
    if index_type == "faiss.Flat":
        return IndexLayout(dim, dim, None, None, None)
    resolved_nlists = max(1, round(np.sqrt(n_samples))) if nlists == "auto" else int(nlists)
    resolved_nlists = min(resolved_nlists, n_samples)  # faiss needs a training row per list
    if index_type == "faiss.IVFFlat":
        return IndexLayout(dim, dim, resolved_nlists, None, None)
    m = int(pq_m) if pq_m is not None else default_pq_m(dim)
    padded = -(-dim // m) * m
    nbits = int(min(8, max(1, np.floor(np.log2(n_samples)))))
    return IndexLayout(dim, padded, resolved_nlists, m, nbits)


def default_pq_m(dim: int) -> int:
    """The largest allowed m with at least sixteen dimensions per sub-quantizer (48 for
    Fashion-MNIST's 784: 56 bytes a vector with its id, against Flat's 3,136)."""
    candidates = [m for m in ALLOWED_PQ_M if m * 16 <= dim]
    return candidates[-1] if candidates else 1


def prepare(X: np.ndarray, metric: str, padded_dim: int) -> np.ndarray:
    """Vectors as faiss takes them: float32, C-contiguous, normalised for COSINE, padded."""
    X = np.ascontiguousarray(X, dtype=np.float32)
    if metric == "COSINE":
        norms = np.linalg.norm(X, axis=1, keepdims=True)
        X = X / np.where(norms > 0, norms, 1)
    if padded_dim > X.shape[1]:
        X = np.hstack([X, np.zeros((X.shape[0], padded_dim - X.shape[1]), dtype=np.float32)])
    return np.ascontiguousarray(X, dtype=np.float32)


def build(vectors: np.ndarray, index_type: str, metric: str, layout: IndexLayout, seed: int):
    """Train (IVF) and fill an index with ``vectors`` (already ``prepare``d)."""
    import faiss

    faiss_metric = faiss.METRIC_L2 if metric == "L2" else faiss.METRIC_INNER_PRODUCT
    d = layout.padded_dim
    if index_type == "faiss.Flat":
        index = faiss.IndexFlat(d, faiss_metric)
    else:
        quantizer = faiss.IndexFlat(d, faiss_metric)
        if index_type == "faiss.IVFFlat":
            index = faiss.IndexIVFFlat(quantizer, d, layout.nlists, faiss_metric)
        else:
            index = faiss.IndexIVFPQ(quantizer, d, layout.nlists, layout.pq_m, layout.pq_nbits,
                                     faiss_metric)
            index.pq.cp.seed = seed
        index.cp.seed = seed
        index.own_fields = True
        quantizer.this.disown()
        index.train(vectors)
    index.add(vectors)
    return index


def search(index, queries: np.ndarray, k: int, nprobe: int | None, batched=None):
    """faiss search; for IVF, rows that find fewer than k neighbours in ``nprobe`` lists are
    searched again over every list, so every row gets k neighbours when the index has k.

    ``batched`` (a ``BatchedIVFFlatSearch``) answers the IVFFlat search list by list with GEMMs
    instead of faiss's query-by-query scan: the same lists and candidates."""
    if nprobe is not None:
        index.nprobe = nprobe
    if batched is not None and nprobe is not None:
        distances, indices = batched.search(index, queries, k, nprobe)
    else:
        distances, indices = index.search(queries, k)
    if nprobe is not None and nprobe < index.nlist:
        short = np.flatnonzero((indices < 0).any(axis=1))
        if short.size:
            index.nprobe = index.nlist
            distances[short], indices[short] = index.search(queries[short], k)
            index.nprobe = nprobe
    return distances, indices


def calibrate_nprobe(index, vectors: np.ndarray, k: int, metric: str, rng) -> int:
    """The smallest nprobe in 1, 2, 4, ... that reaches ``TARGET_RECALL`` of the exact
    neighbours on a held-out slice of the sample.

    Up to ``CALIBRATION_QUERIES`` sample rows are queries; each query's own row is left out of
    both the exact and the approximate answers (it is in the index), so the recall is that of
    a new point. For IVFPQ, whose codes are approximate even when every list is searched, the
    target is ``TARGET_RECALL`` times the recall of searching every list.
    """
    n = vectors.shape[0]
    k = min(k, n - 1)
    if k < 1 or index.nlist == 1:
        return 1
    rows = rng.choice(n, min(CALIBRATION_QUERIES, n), replace=False)
    queries = np.ascontiguousarray(vectors[rows])
    truth = _without_self(_exact_neighbours(queries, vectors, k + 1, metric), rows, k)

    def recall(nprobe):
        index.nprobe = nprobe
        found = _without_self(index.search(queries, k + 1)[1], rows, k)
        return sum(np.intersect1d(a, b).size for a, b in zip(truth, found)) / truth.size

    target = TARGET_RECALL * (recall(index.nlist) if hasattr(index, "pq") else 1.0)
    nprobe = 1
    while nprobe < index.nlist and recall(nprobe) < target:
        nprobe *= 2
    return min(nprobe, index.nlist)


def _exact_neighbours(queries, vectors, k, metric) -> np.ndarray:
    """Exact top-k of the queries among the vectors, in place: faiss's brute-force ``knn``
    reads the vectors where they are (an IndexFlat would copy them; an IVF index searching
    every list is ten times slower; a numpy GEMM + argpartition three times slower)."""
    import faiss

    faiss_metric = faiss.METRIC_L2 if metric == "L2" else faiss.METRIC_INNER_PRODUCT
    return faiss.knn(queries, vectors, k, metric=faiss_metric)[1]


def _without_self(neighbours: np.ndarray, rows: np.ndarray, k: int) -> np.ndarray:
    """Each query's first k neighbours other than its own row (ties may list it later)."""
    out = np.empty((neighbours.shape[0], k), dtype=neighbours.dtype)
    for i, (found, own) in enumerate(zip(neighbours, rows)):
        out[i] = found[found != own][:k]
    return out


def serialize(index) -> np.ndarray:
    import faiss

    return faiss.serialize_index(index)


def deserialize(blob: np.ndarray):
    import faiss

    return faiss.deserialize_index(blob)
