"""ApproxKNN: SageMaker's k-NN — a sample, an optional projection and a faiss index."""

from __future__ import annotations

from numbers import Integral

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, _fit_context
from sklearn.metrics import accuracy_score, mean_squared_error, r2_score
from sklearn.utils import check_random_state
from sklearn.utils._available_if import available_if
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils._tags import ClassifierTags, RegressorTags
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from .._hyperparams import Hyperparameter, HyperparameterMixin
from .._remote_mixin import RemoteMixin, backend_hyperparameter
from .._streaming import (
    Batch,
    Progress,
    atomic_fit,
    commit_fitted,
    fit_source,
    run_updates,
)
from ..io import is_source, iter_array_batches
from ..io._arrays import results_per_batch, validated_batches
from ..io._sources import source_for_estimator
from ..remote._deploy_mixin import DeployMixin
from . import _faiss_index
from ._faiss_index import ALLOWED_PQ_M
from ._flat_search import FlatSearchAccelerator
from ._ivf_search import BatchedIVFFlatSearch
from ._projection import PROJECTIONS
from ._reservoir import ReservoirState, join_shares

#: Default ``sample_size``: large enough that ordinary data is kept whole.
DEFAULT_SAMPLE_SIZE = 10_000_000


class ApproxKNN(RemoteMixin, DeployMixin, HyperparameterMixin, BaseEstimator):
    """SageMaker's k-nearest-neighbours: a uniform sample indexed by faiss.

    ``fit`` streams the data once, keeping a uniform reservoir sample of ``sample_size`` rows
    with their labels; optionally projects them to ``dimension_reduction_target`` dimensions
    (random signs or a fast Johnson–Lindenstrauss transform); and indexes them in faiss. A
    classifier predicts the majority label of the ``k`` nearest sampled rows, a regressor their
    mean label.

    The estimator is a classifier or a regressor as ``predictor_type`` says (scikit-learn's
    ``is_classifier``, stratified splits and default scoring follow it);
    :class:`ApproxKNNClassifier` and :class:`ApproxKNNRegressor` fix it.

    Parameters
    ----------
    %(parameters)s

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels (classifier only), sorted.
    sample_labels_ : ndarray of shape (n_samples_fit_,)
        Label of each sampled row; ``kneighbors`` indices point into it.
    n_samples_fit_ : int
        Rows in the sample (and the index).
    n_samples_seen_ : int
        Rows streamed through ``fit``.
    projection_ : SignProjection, FJLTProjection or None
        The fitted projection, applied to every query.
    index_ : faiss.Index
        The index over the (projected) sample; pickled as faiss's serialized bytes.
    nlists_ : int or None
        IVF lists used.
    nprobe_ : int or None
        Lists searched per query (resolved from ``nprobe``).
    pq_m_ : int or None
        PQ sub-quantizers used (IVFPQ).
    index_dim_ : int
        Dimension inside the index: after projection, padded to a multiple of ``pq_m_`` for
        IVFPQ (zero columns, which change no distance).
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
    training_job_ : skmk.remote.TrainingJob
        Only after ``fit(..., wait=False)`` on a Ray backend: the submitted training job.

    Notes
    -----
    Ties in the classifier's vote go to the tied label whose nearest member is closest to the
    query (the label that appears first in the distance-ordered neighbour list): deterministic,
    and the natural extension of 1-NN. With ``sample_size`` at least the number of rows, every
    row is kept, in order.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from skmk import ApproxKNN
    >>> X, y = load_iris(return_X_y=True)
    >>> knn = ApproxKNN(k=5).fit(X, y)
    >>> float(knn.score(X, y)) > 0.95
    True
    """

    k = Hyperparameter([Interval(Integral, 1, 1024, closed="both")], default=5,
                       doc="Neighbours per query (SageMaker: 1 to 1024).")
    sample_size = Hyperparameter(
        [Interval(Integral, 1, None, closed="left")], default=DEFAULT_SAMPLE_SIZE,
        doc="Rows kept from the training data by uniform reservoir sampling. When it is at "
            "least the number of rows, every row is kept.")
    predictor_type = Hyperparameter(
        [StrOptions({"classifier", "regressor"})], default="classifier",
        doc="'classifier' votes among the neighbours' labels, 'regressor' averages them.")
    dimension_reduction_type = Hyperparameter(
        [None, StrOptions({"sign", "fjlt"})], default=None,
        doc="Random projection before indexing: 'sign' (dense ±1) or 'fjlt' (fast "
            "Johnson–Lindenstrauss); None keeps the features.")
    dimension_reduction_target = Hyperparameter(
        [None, Interval(Integral, 1, None, closed="left")], default=None,
        doc="Dimensions after the projection; required exactly when a reduction type is set, "
            "and below the number of features.")
    index_type = Hyperparameter(
        [StrOptions({"faiss.Flat", "faiss.IVFFlat", "faiss.IVFPQ"})], default="faiss.Flat",
        doc="faiss index: exact ('faiss.Flat'), inverted lists ('faiss.IVFFlat') or inverted "
            "lists of product-quantized codes ('faiss.IVFPQ').")
    index_metric = Hyperparameter(
        [StrOptions({"L2", "INNER_PRODUCT", "COSINE"})], default="L2",
        doc="Similarity: Euclidean distance, inner product, or cosine (normalised rows under "
            "inner product). IVFPQ supports L2 only.")
    faiss_index_ivf_nlists = Hyperparameter(
        [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})], default="auto",
        type_doc="int or 'auto'",
        doc="IVF lists; 'auto' = round(sqrt(rows in the sample)). At most the sample's rows.")
    faiss_index_pq_m = Hyperparameter(
        [None, Options(Integral, set(ALLOWED_PQ_M))], default=None,
        type_doc="int in {" + ", ".join(map(str, ALLOWED_PQ_M)) + "} or None",
        doc="PQ sub-quantizers (IVFPQ only). The dimension is zero-padded up to a multiple of "
            "it, as SageMaker does. None: the largest allowed value with sixteen or more "
            "dimensions per sub-quantizer.")
    nprobe = Hyperparameter(
        [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})], default="auto",
        type_doc="int or 'auto'",
        doc="IVF lists searched per query. 'auto' calibrates it at fit: the fewest lists (1, 2, "
            "4, ...) reaching 90 % recall of the exact neighbours on held-out sample rows.")
    mini_batch_size = Hyperparameter([Interval(Integral, 1, None, closed="left")],
                                     default=5000, doc="Rows per mini-batch while sampling.")
    random_state = Hyperparameter(["random_state"], default=None,
                                  doc="Seeds sampling, projection and index training.")
    verbose = Hyperparameter(
        [Interval(Integral, 0, None, closed="left")], default=0, on_wire=False,
        doc="Print progress lines while sampling (rows, rows/s, MB/s), at most every two "
            "seconds; 0 is silent.")
    backend = backend_hyperparameter()

    # -- scikit-learn's view of the estimator ----------------------------------------------------

    @property
    def _is_regressor(self) -> bool:
        return self.predictor_type == "regressor"

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        if self._is_regressor:
            tags.estimator_type = "regressor"
            tags.regressor_tags = RegressorTags()
        else:
            tags.estimator_type = "classifier"
            tags.classifier_tags = ClassifierTags()
        tags.target_tags.required = True
        tags.input_tags.sparse = True
        return tags

    # -- fitting ---------------------------------------------------------------------------------

    @_fit_context(prefer_skip_nested_validation=True)
    @atomic_fit
    def fit(self, X, y=None, *, wait=True, job_name=None):
        """Sample the rows, project them and build the index.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features), or a data source
            Training rows; float32 stays float32, other types become float64. A path,
            directory, glob, SageMaker manifest or fsspec URL of labelled RecordIO-protobuf,
            CSV (label first) or Parquet (column ``label``) files is sampled in one pass; so is
            a ``Source`` from ``skmk.io.open_source`` (its own label settings and
            ``storage_options`` apply).
        y : array-like of shape (n_samples,), or None for a data source
            Class labels (any type scikit-learn classifiers take) or float targets.
        wait : bool, default=True
            With a Ray ``backend``, False submits a training job and returns at once, with
            ``training_job_`` set (docs/remote.md). Must be True for a local fit.
        job_name : str, default=None
            Name of the training job (``wait=False`` only); generated when None.

        Returns
        -------
        self : ApproxKNN
        """
        self._check_parameter_combinations()
        backend = self._execution_backend(wait)
        if backend is not None:
            return backend.fit(self, X, y, None, wait=wait, job_name=job_name)
        if is_source(X):
            return self._fit_source(X, y)
        X, y, _, context = self._validate_fit_arrays(X, y, None)
        random_state = check_random_state(self.random_state)
        progress = Progress(type(self).__name__, self.verbose)
        state = self._stream_arrays(X, y, None, random_state, progress)
        progress.close(state)
        self._commit_array_state(state, context)
        return self

    def _fit_source(self, location, y):
        """Sample a file source (``skmk.io.open_source``) in one pass; labels come from it
        (RecordIO labels, CSV's first column, Parquet's ``label`` column).

        ``classes_`` are the labels present in the sample.
        """
        if y is not None:
            raise ValueError("y cannot be given with a file source: its labels come from it")
        fit_source(self, location, check_random_state(self.random_state))
        return self

    # -- the pieces of a fit, shared by the local fit and the workers of a distributed one ------

    def _validate_fit_arrays(self, X, y, sample_weight):
        """Validate in-memory training data as ``fit`` does; labels become class codes.

        Returns
        -------
        X, y, sample_weight, context
            Validated rows, float64 targets or int class codes, None, and the keyword
            arguments of ``_commit_array_state`` (``classes``).
        """
        X, y = validate_data(self, X, y, accept_sparse="csr", dtype=[np.float64, np.float32],
                             y_numeric=self._is_regressor, reset=True)
        self._check_dimensions(X.shape[1])
        classes = None
        if self._is_regressor:
            y = y.astype(np.float64)
        else:
            check_classification_targets(y)
            classes, y = np.unique(y, return_inverse=True)
        return X, y, None, {"classes": classes}

    def _open_training_source(self, location):
        return source_for_estimator(location, batch_size=self.mini_batch_size, label_size=1,
                                    label_column="label")

    def _stream_arrays(self, X, y, sample_weight, random_state, progress) -> ReservoirState:
        """A new reservoir offered every mini-batch of validated rows."""
        state = self._new_state(Batch(X[:1]), random_state=random_state)
        return run_updates(state, self._batches(X, y), progress=progress)

    def _shard_shares(self, shard_rows: list[int], rng: np.random.Generator) -> list[dict]:
        """Per-shard parameters of a distributed fit over in-memory shards of known sizes:
        each shard's reservoir keeps only its share of the sample, drawn here
        (``join_shares`` explains why that is a uniform sample of the whole)."""
        shares = rng.multivariate_hypergeometric(
            np.asarray(shard_rows, dtype=np.int64), min(self.sample_size, sum(shard_rows)))
        return [{"sample_size": int(share)} for share in shares]

    @staticmethod
    def _join_shares(states: list[ReservoirState]) -> ReservoirState:
        return join_shares(states)

    def _stream_source(self, source, random_state, progress) -> ReservoirState | None:
        """A new reservoir offered every labelled batch of ``source``; None when it holds no
        rows."""
        state = None
        for batch in validated_batches(self, source.batches()):
            if batch.y is None:
                raise ValueError(f"{source!r} has rows without labels")
            if state is None:
                self._check_dimensions(batch.X.shape[1])
                state = self._new_state(batch, random_state=random_state)
            state.update(batch)
            progress(state, batch)
        return state

    def _commit_array_state(self, state: ReservoirState, context: dict, *,
                            label_rows=None) -> None:
        """Finalize a reservoir sampled from in-memory rows and commit the model
        (``label_rows`` is for k-means' ``labels_``; k-NN has no pass over its training
        rows)."""
        classes = context["classes"]
        fitted = {} if classes is None else {"classes_": classes}
        fitted.update(self._finalized_attributes(state, state.random_state, classes))
        fitted["n_features_in_"] = self.n_features_in_
        if hasattr(self, "feature_names_in_"):
            fitted["feature_names_in_"] = self.feature_names_in_
        commit_fitted(self, fitted)

    def _commit_source_state(self, state: ReservoirState | None, source) -> None:
        """Finalize a reservoir sampled from a file source: the sample's labels become
        ``classes_`` and codes (classifier) or float targets (regressor)."""
        if state is None:
            raise ValueError(f"{source!r} holds no rows")
        classes = None
        if self._is_regressor:
            state._labels = np.asarray(state.y, dtype=np.float64)
        else:
            classes, codes = np.unique(state.y, return_inverse=True)
            state._labels = codes
        fitted = self._finalized_attributes(state, state.random_state, classes)
        if classes is not None:
            fitted["classes_"] = classes
        fitted["n_features_in_"] = state.n_features
        commit_fitted(self, fitted)

    def _check_parameter_combinations(self) -> None:
        """Rules that tie parameters together (single values are validated by the mixin)."""
        reduction, target = self.dimension_reduction_type, self.dimension_reduction_target
        if reduction is not None and target is None:
            raise ValueError(f"dimension_reduction_type={reduction!r} needs "
                             "dimension_reduction_target (the reduced dimension)")
        if reduction is None and target is not None:
            raise ValueError(f"dimension_reduction_target={target} is set but "
                             "dimension_reduction_type is None; set 'sign' or 'fjlt'")
        if self.index_type == "faiss.IVFPQ" and self.index_metric != "L2":
            raise ValueError(f"index_type='faiss.IVFPQ' supports index_metric='L2' only, got "
                             f"{self.index_metric!r}")
        if self.faiss_index_pq_m is not None and self.index_type != "faiss.IVFPQ":
            raise ValueError(f"faiss_index_pq_m applies to index_type='faiss.IVFPQ' only, got "
                             f"index_type={self.index_type!r}")

    def _check_dimensions(self, n_features: int) -> None:
        target = self.dimension_reduction_target
        if target is not None and target >= n_features:
            raise ValueError(f"dimension_reduction_target={target} must be smaller than the "
                             f"number of features, n_features={n_features}")

    def _batches(self, X, y):
        """The one place data reaches the algorithm: mini-batches of validated rows."""
        return iter_array_batches(X, y, None, batch_size=self.mini_batch_size)

    # -- the streaming-state protocol ------------------------------------------------------------

    def _new_state(self, first_batch: Batch, random_state=None) -> ReservoirState:
        """Initialize: an empty reservoir for data shaped like ``first_batch``."""
        dtype = first_batch.X.dtype if first_batch.X.dtype == np.float32 else np.float64
        return ReservoirState(
            self.sample_size, first_batch.X.shape[1], dtype,
            check_random_state(self.random_state if random_state is None else random_state))

    def _finalize_state(self, state: ReservoirState, *, n_features_in: int,
                        feature_names_in=None, classes=None) -> ApproxKNN:
        """Finalize a streamed (e.g. merged) reservoir into this estimator's fitted model."""
        fitted = self._finalized_attributes(state, state.random_state, classes)
        if classes is not None:
            fitted["classes_"] = classes
        fitted["n_features_in_"] = n_features_in
        if feature_names_in is not None:
            fitted["feature_names_in_"] = feature_names_in
        commit_fitted(self, fitted)
        return self

    def _finalized_attributes(self, state: ReservoirState, random_state, classes) -> dict:
        sample, labels = state.X, state.y
        if sample.shape[0] < self.k:
            raise ValueError(f"k={self.k} neighbours need at least {self.k} sampled rows, got "
                             f"n_samples={sample.shape[0]} (sample_size={self.sample_size}, "
                             f"rows seen={state.n_seen})")
        projection = None
        if self.dimension_reduction_type is not None:
            projection = PROJECTIONS[self.dimension_reduction_type](
                sample.shape[1], self.dimension_reduction_target, sample.dtype, random_state)
            sample = projection.transform(sample)
        layout = _faiss_index.plan_layout(self.index_type, sample.shape[1], sample.shape[0],
                                          self.faiss_index_ivf_nlists, self.faiss_index_pq_m)
        vectors = _faiss_index.prepare(sample, self.index_metric, layout.padded_dim)
        seed = int(random_state.randint(0, 2**31 - 1))
        index = _faiss_index.build(vectors, self.index_type, self.index_metric, layout, seed)
        nprobe = None
        if layout.nlists is not None:
            nprobe = _faiss_index.calibrate_nprobe(
                index, vectors, self.k, self.index_metric, random_state) \
                if self.nprobe == "auto" else min(int(self.nprobe), layout.nlists)
        return {
            "sample_labels_": labels if classes is None else labels.astype(np.intp),
            "n_samples_fit_": sample.shape[0],
            "n_samples_seen_": int(state.n_seen),
            "projection_": projection,
            "index_": index,
            "nlists_": layout.nlists,
            "nprobe_": nprobe,
            "pq_m_": layout.pq_m,
            "index_dim_": layout.padded_dim,
            "_flat_search_": FlatSearchAccelerator(seed) if FlatSearchAccelerator.applies(
                self.index_type, self.index_metric, layout.padded_dim, sample.shape[0])
            else None,
            "_ivf_search_": BatchedIVFFlatSearch(self.index_metric)
            if self.index_type == "faiss.IVFFlat" else None,
        }

    # -- queries ---------------------------------------------------------------------------------

    def _query_vectors(self, X) -> tuple[np.ndarray, np.dtype]:
        check_is_fitted(self)
        X = validate_data(self, X, accept_sparse="csr", dtype=[np.float64, np.float32],
                          reset=False)
        dtype = X.dtype
        if self.projection_ is not None:
            X = self.projection_.transform(X)
        elif sp.issparse(X):
            X = X.toarray()
        return _faiss_index.prepare(X, self.index_metric, self.index_dim_), dtype

    def _search(self, X, n_neighbors: int):
        """faiss's answer: squared distances (L2) or similarities, indices, and X's dtype."""
        vectors, dtype = self._query_vectors(X)
        accelerator = getattr(self, "_flat_search_", None)
        exact = accelerator and accelerator.search(self.index_, vectors, n_neighbors)
        if exact:
            sq_distances, indices = exact
            # COSINE vectors are unit length: ||a - b||² = 2 - 2 cos(a, b).
            return (sq_distances if self.index_metric == "L2" else 1 - sq_distances / 2,
                    indices, dtype)
        similarities, indices = _faiss_index.search(self.index_, vectors, n_neighbors,
                                                    self.nprobe_,
                                                    getattr(self, "_ivf_search_", None))
        return similarities, indices, dtype

    def kneighbors(self, X=None, n_neighbors=None, return_distance=True):
        """The sampled rows nearest to each query.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_queries, n_features)
            Queries. (``None``, scikit-learn's "the training data" shortcut, is not available:
            the training data is not kept, only a sample of it.)
        n_neighbors : int, default=None
            Neighbours per query; defaults to ``k``.
        return_distance : bool, default=True

        Returns
        -------
        distances : ndarray of shape (n_queries, n_neighbors), X's dtype
            For L2, Euclidean distances (as scikit-learn reports them), ascending; for
            INNER_PRODUCT, inner products, and for COSINE, cosine similarities, both
            descending. Measured after the projection, if any.
        indices : ndarray of shape (n_queries, n_neighbors), int64
            Rows of the sample (``sample_labels_``).
        """
        if X is None:
            raise ValueError("ApproxKNN keeps a sample, not the training data: pass X")
        n_neighbors = self.k if n_neighbors is None else n_neighbors
        if not isinstance(n_neighbors, Integral) or n_neighbors < 1:
            raise ValueError(f"n_neighbors must be a positive int, got {n_neighbors!r}")
        if n_neighbors > self.n_samples_fit_:
            raise ValueError(f"n_neighbors={n_neighbors} exceeds the {self.n_samples_fit_} "
                             "sampled rows")
        similarities, indices, dtype = self._search(X, n_neighbors)
        if not return_distance:
            return indices
        if self.index_metric == "L2":
            similarities = np.sqrt(np.maximum(similarities, 0))
        return similarities.astype(dtype), indices

    def kneighbors_graph(self, X=None, n_neighbors=None, mode="connectivity"):
        """Sparse graph from queries to their nearest sampled rows.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_queries, n_features)
        n_neighbors : int, default=None
        mode : {"connectivity", "distance"}, default="connectivity"

        Returns
        -------
        graph : sparse matrix of shape (n_queries, n_samples_fit_), CSR
            1 (or the value ``kneighbors`` reports) at each neighbour.
        """
        if mode not in ("connectivity", "distance"):
            raise ValueError(f"mode must be 'connectivity' or 'distance', got {mode!r}")
        distances, indices = self.kneighbors(X, n_neighbors)
        n_queries, n_neighbors = indices.shape
        values = np.ones(indices.size) if mode == "connectivity" else distances.ravel()
        indptr = np.arange(0, n_queries * n_neighbors + 1, n_neighbors)
        return sp.csr_matrix((values, indices.ravel(), indptr),
                             shape=(n_queries, self.n_samples_fit_))

    def _neighbor_labels(self, X) -> np.ndarray:
        _, indices, _ = self._search(X, self.k)
        return self.sample_labels_[indices]

    def predict(self, X):
        """Majority label (classifier) or mean label (regressor) of the k nearest rows.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_queries, n_features)

        Returns
        -------
        y : ndarray of shape (n_queries,)
            Labels of ``classes_``'s type, or float64 predictions. For a features-only data
            source (path, URL, ...): an iterator of such arrays, one per batch.
        """
        if is_source(X):
            return results_per_batch(self, X, self.predict, batch_size=self.mini_batch_size)
        labels = self._neighbor_labels(X)
        if self._is_regressor:
            return labels.mean(axis=1)
        return self.classes_[vote(labels, len(self.classes_))]

    @available_if(lambda self: not self._is_regressor)
    def predict_proba(self, X):
        """Share of the k neighbours in each class (classifier only).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_queries, n_features)

        Returns
        -------
        proba : ndarray of shape (n_queries, n_classes), columns ordered as ``classes_``
            ``count / k``, with tied classes separated by at most 1e-9 in favour of the one
            ``predict`` picks, so that ``argmax(predict_proba) == predict``.
        """
        return vote_shares(self._neighbor_labels(X), len(self.classes_))

    def score(self, X, y, sample_weight=None) -> float:
        """Accuracy (classifier) or R² (regressor) on (X, y).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_queries, n_features)
        y : array-like of shape (n_queries,)
        sample_weight : array-like of shape (n_queries,), default=None

        Returns
        -------
        score : float
        """
        if self._is_regressor:
            return float(r2_score(y, self.predict(X), sample_weight=sample_weight))
        return float(accuracy_score(y, self.predict(X), sample_weight=sample_weight))

    def evaluate(self, X, y) -> dict[str, float]:
        """SageMaker's test metric: ``{"accuracy": ...}`` or ``{"mse": ...}``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_queries, n_features)
        y : array-like of shape (n_queries,)

        Returns
        -------
        metrics : dict of str to float
        """
        if self._is_regressor:
            return {"mse": float(mean_squared_error(y, self.predict(X)))}
        return {"accuracy": float(accuracy_score(y, self.predict(X)))}

    # -- pickling: the faiss index travels as its serialized bytes ------------------------------

    def __getstate__(self):
        state = super().__getstate__()
        if "index_" in state:
            state = dict(state)
            state["index_"] = _faiss_index.serialize(state["index_"])
        return state

    def __setstate__(self, state):
        if isinstance(state.get("index_"), np.ndarray):
            state = dict(state)
            state["index_"] = _faiss_index.deserialize(state["index_"])
        super().__setstate__(state)


class ApproxKNNClassifier(ApproxKNN):
    """:class:`ApproxKNN` with ``predictor_type="classifier"`` fixed.

    Parameters
    ----------
    %(parameters)s
    """

    predictor_type = "classifier"


class ApproxKNNRegressor(ApproxKNN):
    """:class:`ApproxKNN` with ``predictor_type="regressor"`` fixed.

    Parameters
    ----------
    %(parameters)s
    """

    predictor_type = "regressor"


def _tally(labels: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Per query and class: neighbour count, and position of the class's nearest member
    (k when absent). ``labels`` are class codes of distance-ordered neighbours."""
    n_queries, k = labels.shape
    flat = (np.arange(n_queries)[:, None] * n_classes + labels).ravel()
    counts = np.bincount(flat, minlength=n_queries * n_classes).reshape(n_queries, n_classes)
    first = np.full((n_queries, n_classes), k, dtype=np.int64)
    rows = np.arange(n_queries)
    for position in range(k - 1, -1, -1):
        first[rows, labels[:, position]] = position
    return counts, first


def vote(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Majority class per row of distance-ordered neighbour labels (class codes).

    Ties go to the tied class that appears first in the row, i.e. whose nearest member is the
    closest: the score ``count * (k + 1) - first_position`` orders by count, then by nearness.
    """
    counts, first = _tally(labels, n_classes)
    return np.argmax(counts * (labels.shape[1] + 1) - first, axis=1)


def vote_shares(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Share of the neighbours in each class, ties nudged (≤ 1e-9) towards ``vote``'s pick."""
    counts, first = _tally(labels, n_classes)
    k = labels.shape[1]
    shares = counts / k + 1e-9 * (counts > 0) * (k - first) / (k + 1)
    return shares / shares.sum(axis=1, keepdims=True)
