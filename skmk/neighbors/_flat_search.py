"""The faiss.Flat search, made faster where the data allows it and exact everywhere.

``IndexFlat`` computes every query–row distance. On data whose variance sits in a few hundred
directions of a larger space (images, embeddings), ``skmk._bounded_search`` finds the very same
neighbours computing only a small fraction of the distances; on data without such structure it
would compute nearly all of them, slower than faiss. So the accelerator decides by measurement:
the first queries it answers tell how much the bound prunes, and if it prunes too little it
steps aside for good and faiss answers everything.

The bound is built once enough queries have come to pay for it (a PCA of a few thousand rows
and the low-rank coordinates of every indexed row, about 4 % of the index's memory, costs
about as much as searching a few hundred queries with faiss), so ``fit`` costs what building
the faiss index costs and a model that answers a handful of queries never builds it. Pickling
drops it; it is rebuilt when queries come again.
"""

from __future__ import annotations

import threading

import numpy as np

from .._bounded_search import BoundedSearch, LowRankBound

#: Only worth it in high dimension with many rows: below these, faiss's GEMM is already cheap.
MIN_DIM = 256
MIN_ROWS = 8192
#: Queries (over all calls) before the bound is built: the build costs about what faiss
#: spends on a few hundred queries, and from then on each query costs a fraction.
BUILD_AFTER_QUERIES = 1000
#: Basis size: on Fashion-MNIST (784 dims), 128 directions leave ~280 exact distances per query
#: of 60,000 rows; 64 leave ~720 and 192 ~140 at a larger GEMM (docs/knn.md).
N_COMPONENTS = 128
#: The first queries measure the pruning; above this fraction of rows evaluated exactly the
#: bound costs more than it saves, and faiss takes over.
PROBE_QUERIES = 64
MAX_EVALUATED_FRACTION = 0.02


class FlatSearchAccelerator:
    """Exact L2 search over the vectors of a faiss ``IndexFlat``, pruned by a low-rank bound.

    Parameters
    ----------
    seed : int
        Seeds the randomized PCA (it changes speed only: results are exact for any basis).

    Attributes
    ----------
    enabled : bool
        False once the probe found the bound not worth it; ``search`` then returns None.
    """

    def __init__(self, seed: int):
        self.seed = seed
        self.enabled = True
        self._search: BoundedSearch | None = None
        self._probed = False
        self._queries_seen = 0
        self._lock = threading.Lock()

    @staticmethod
    def applies(index_type: str, metric: str, dim: int, n_rows: int) -> bool:
        """Whether a fitted model should carry an accelerator."""
        return (index_type == "faiss.Flat" and metric in ("L2", "COSINE") and dim >= MIN_DIM
                and n_rows >= MIN_ROWS)

    def search(self, index, queries: np.ndarray, n_neighbors: int):
        """Squared L2 distances and indices of the nearest indexed rows, or None.

        Parameters
        ----------
        index : faiss.IndexFlat
            The index whose vectors are searched (read in place).
        queries : ndarray of shape (n_queries, dim), float32
        n_neighbors : int

        Returns
        -------
        (sq_distances, indices) of shape (n_queries, n_neighbors) — float32 ascending and
        int64 — or None when faiss should answer.
        """
        if not self.enabled:
            return None
        self._queries_seen += queries.shape[0]
        if self._search is None and self._queries_seen < BUILD_AFTER_QUERIES:
            return None
        search = self._bounded(index)
        if not self._probed:
            probe = queries[:PROBE_QUERIES]
            head = search.search(probe, n_neighbors)
            self._probed = True
            if search.n_evaluated > MAX_EVALUATED_FRACTION * probe.shape[0] * index.ntotal:
                self.enabled, self._search = False, None
                return None
            rest = search.search(queries[PROBE_QUERIES:], n_neighbors)
            sq_distances, indices = (np.concatenate(parts) for parts in zip(head, rest))
        else:
            sq_distances, indices = search.search(queries, n_neighbors)
        return sq_distances, indices.astype(np.int64)

    def _bounded(self, index) -> BoundedSearch:
        with self._lock:
            if self._search is None:
                import faiss

                base = faiss.rev_swig_ptr(index.get_xb(), index.ntotal * index.d)
                base = base.reshape(index.ntotal, index.d)
                bound = LowRankBound.fit(base, N_COMPONENTS, np.random.RandomState(self.seed))
                self._search = BoundedSearch(base, bound)
                self._probed = False
            return self._search

    def __getstate__(self):
        return {"seed": self.seed, "enabled": self.enabled}

    def __setstate__(self, state):
        self.__init__(state["seed"])
        self.enabled = state["enabled"]
