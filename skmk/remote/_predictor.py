"""A fitted model as the columns SageMaker's inference responses hold (no Ray, no HTTP).

Shared by the endpoint and batch transform. The per-row work is kept small: the input arrives
validated by the codec (2-D, finite, the model's width and dtype), so k-means goes straight to
the assignment kernel instead of through scikit-learn's input checks.
"""

from __future__ import annotations

import itertools

import numpy as np
import scipy.sparse as sp
from sklearn.utils.validation import check_is_fitted

#: Below this many rows, the assignment kernel runs on one thread: starting an OpenMP team costs
#: more than it saves, and an endpoint replica shares its cores with the HTTP proxy.
_SERIAL_ROWS = 2048


class Predictor:
    """Predictions of one fitted model, as named columns.

    Parameters
    ----------
    model : StreamingKMeans or ApproxKNN
        A fitted estimator.

    Attributes
    ----------
    kind : {"kmeans", "knn"}
    n_features : int
        Features per row the model takes.
    dtype : numpy.dtype
        The model's float dtype; rows are decoded into it.
    """

    def __init__(self, model):
        check_is_fitted(model)
        self.model = model
        self.n_features = int(model.n_features_in_)
        if hasattr(model, "cluster_centers_"):
            self.kind = "kmeans"
            self._centers = np.ascontiguousarray(model.cluster_centers_)
            self.dtype = self._centers.dtype
            self._center_sq_norms = (self._centers.astype(np.float64) ** 2).sum(axis=1) \
                .astype(self.dtype)
        elif hasattr(model, "index_"):
            self.kind = "knn"
            self.dtype = np.dtype(np.float32)  # faiss searches in float32
            self._regressor = bool(model._is_regressor)
        else:
            raise TypeError(f"cannot serve {type(model).__name__}: expected a fitted "
                            "StreamingKMeans or ApproxKNN")

    def __call__(self, X, *, verbose: bool = False) -> dict[str, np.ndarray]:
        """Predict rows.

        Parameters
        ----------
        X : ndarray or CSR matrix of shape (n_rows, n_features)
            Finite rows (the codec's output).
        verbose : bool, default=False
            k-NN only: add the neighbours' ``labels`` and ``distances``, each of shape
            (n_rows, k), distances ascending (L2) or similarities descending.

        Returns
        -------
        predictions : dict of str to ndarray
            k-means: ``closest_cluster`` (float32, as SageMaker writes it) and
            ``distance_to_cluster`` (Euclidean, the model's dtype), each of shape (n_rows,).
            k-NN: ``predicted_label`` of shape (n_rows,) (float64 for numeric labels).
        """
        if self.kind == "kmeans":
            return self._kmeans(X)
        return self._knn(X, verbose)

    def _kmeans(self, X):
        from .._kernels import nearest_centers

        X = X.astype(self.dtype, copy=False)
        labels, sq = nearest_centers(X, self._centers, centers_sq_norms=self._center_sq_norms,
                                     n_threads=1 if X.shape[0] < _SERIAL_ROWS else None)
        return {"closest_cluster": labels.astype(np.float32),
                "distance_to_cluster": np.sqrt(sq)}

    def _knn(self, X, verbose):
        from ..neighbors._approx_knn import vote

        model = self.model
        distances, indices = model.kneighbors(X)
        neighbour_labels = model.sample_labels_[indices]
        if self._regressor:
            predicted, labels = neighbour_labels.mean(axis=1), neighbour_labels
        else:
            classes = model.classes_
            predicted = classes[vote(neighbour_labels, len(classes))]
            labels = classes[neighbour_labels]
        out = {"predicted_label": _numeric(predicted)}
        if verbose:
            out["labels"] = _numeric(labels)
            out["distances"] = distances
        return out

    def split(self, predictions: dict[str, np.ndarray], sizes: list[int]
              ) -> list[dict[str, np.ndarray]]:
        """Cut the predictions of concatenated requests back into one dict per request."""
        if len(sizes) == 1:  # a batch of one request, the usual case on a quiet endpoint
            return [predictions]
        bounds = np.cumsum([0, *sizes])
        return [{name: column[lo:hi] for name, column in predictions.items()}
                for lo, hi in itertools.pairwise(bounds)]


def _numeric(labels: np.ndarray) -> np.ndarray:
    """Numeric labels as float64 (SageMaker's 0.0, 1.0, ...); others as they are."""
    if labels.dtype.kind in "iubf":
        return labels.astype(np.float64)
    return labels


def as_batch(arrays: list) -> np.ndarray | sp.csr_matrix:
    """Rows of several requests stacked into one array (CSR if any request is sparse)."""
    if len(arrays) == 1:
        return arrays[0]
    if any(sp.issparse(a) for a in arrays):
        return sp.vstack([sp.csr_matrix(a) for a in arrays], format="csr")
    return np.concatenate(arrays)
