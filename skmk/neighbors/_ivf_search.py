"""IVFFlat search as GEMMs: the same lists, the same candidates, at matrix-multiply speed.

faiss's IVFFlat search takes one query at a time and scans the ``nprobe`` lists it probes vector
by vector. Grouping the (query, probed list) pairs by list instead makes each list one GEMM of
the queries that probe it against the list's vectors: the same candidates as faiss — the search
is the same IVF search with the same ``nprobe`` — computed as dense products, then each query's
best ``k`` among its lists. The lists are read in place from the faiss index (``get_codes``), so
nothing is copied; the squared norms of the listed vectors are computed on the first search and
kept (dropped by pickling, like ``_flat_search``).
"""

from __future__ import annotations

import threading

import numpy as np


class BatchedIVFFlatSearch:
    """Searches a faiss ``IndexIVFFlat`` list by list with GEMMs.

    Parameters
    ----------
    metric : {"L2", "INNER_PRODUCT", "COSINE"}
        COSINE vectors are unit length and searched by inner product, as faiss does.
    """

    def __init__(self, metric: str):
        self.metric = metric
        self._lists: list | None = None
        self._lock = threading.Lock()

    def search(self, index, queries: np.ndarray, k: int, nprobe: int):
        """faiss's answer for ``index.search`` with ``nprobe``: (distances, indices).

        Parameters
        ----------
        index : faiss.IndexIVFFlat
        queries : ndarray of shape (n_queries, dim), float32, C-contiguous
        k, nprobe : int

        Returns
        -------
        distances : ndarray of shape (n_queries, k), float32
            Squared L2 distances ascending, or inner products descending.
        indices : ndarray of shape (n_queries, k), int64
            -1 where the probed lists hold fewer than k vectors.
        """
        lists = self._read_lists(index)
        _, probes = index.quantizer.search(queries, nprobe)
        n_queries = queries.shape[0]
        # Each (query, probe) pair keeps its list's best k; the answer is the best k of those.
        scores = np.full((n_queries, nprobe, k), np.inf, dtype=np.float32)
        ids = np.full((n_queries, nprobe, k), -1, dtype=np.int64)
        query_sq = np.einsum("ij,ij->i", queries, queries) if self.metric == "L2" else None
        pairs = probes.ravel()
        order = np.argsort(pairs, kind="stable")
        starts = np.flatnonzero(np.r_[True, pairs[order][1:] != pairs[order][:-1]])
        for begin, end in zip(starts, np.r_[starts[1:], order.size]):
            list_id = pairs[order[begin]]
            if list_id < 0 or lists[list_id] is None:
                continue
            vectors, vector_ids, vector_sq = lists[list_id]
            pair = order[begin:end]
            rows, slots = pair // nprobe, pair % nprobe
            products = queries[rows] @ vectors.T
            if self.metric == "L2":
                # ‖q‖² + ‖v‖² − 2 q·v, and smaller is better
                part = query_sq[rows, None] + vector_sq[None, :] - 2 * products
            else:
                part = -products  # larger inner product is better
            kept = min(k, vectors.shape[0])
            best = np.argpartition(part, kept - 1, axis=1)[:, :kept] \
                if kept < vectors.shape[0] else np.broadcast_to(
                    np.arange(kept), (rows.size, kept))
            scores[rows, slots, :kept] = np.take_along_axis(part, best, axis=1)
            ids[rows, slots, :kept] = vector_ids[best]
        scores, ids = scores.reshape(n_queries, -1), ids.reshape(n_queries, -1)
        top = np.argsort(scores, axis=1, kind="stable")[:, :k]
        best_scores = np.take_along_axis(scores, top, axis=1)
        indices = np.take_along_axis(ids, top, axis=1)
        indices[~np.isfinite(best_scores)] = -1
        distances = np.maximum(best_scores, 0) if self.metric == "L2" else -best_scores
        return distances, indices

    def _read_lists(self, index) -> list:
        """Views of each list's vectors and ids in the index, with the vectors' squared norms."""
        with self._lock:
            if self._lists is None:
                import faiss

                invlists, dim = index.invlists, index.d
                lists = []
                for list_id in range(index.nlist):
                    size = invlists.list_size(list_id)
                    if size == 0:
                        lists.append(None)
                        continue
                    vectors = faiss.rev_swig_ptr(invlists.get_codes(list_id), size * dim * 4)
                    vectors = vectors.view(np.float32).reshape(size, dim)
                    vector_ids = faiss.rev_swig_ptr(invlists.get_ids(list_id), size)
                    lists.append((vectors, vector_ids,
                                  np.einsum("ij,ij->i", vectors, vectors)))
                self._lists = lists
            return self._lists

    def __getstate__(self):
        return {"metric": self.metric}

    def __setstate__(self, state):
        self.__init__(state["metric"])
