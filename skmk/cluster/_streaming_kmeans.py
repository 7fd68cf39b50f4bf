"""StreamingKMeans: SageMaker's web-scale k-means with scikit-learn's manners."""

from __future__ import annotations

import copy
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    ClusterMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.metrics.pairwise import euclidean_distances
from sklearn.utils import assert_all_finite, check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from .._hyperparams import Hyperparameter, HyperparameterMixin, ListOf
from .._kernels import effective_n_threads, nearest_centers
from .._kernels._threads import single_threaded_blas
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
from ._lloyd import weighted_lloyd
from ._state import KMeansState

#: ``center_factor="auto"``: extra centers per final center, ``ceil(k / AUTO_CENTER_FACTOR_STEP)``
#: clipped to these bounds: 4 up to k=80, 5 up to k=100, SageMaker's 10 from k=181. Measured on
#: Fashion-MNIST (docs/kmeans.md has the tables): up to k=100, 4 or 5 extra centers per cluster
#: give the SSD of 10 within the spread between seeds (at k=10 about 0.3 % worse on average,
#: at k=100 no measurable difference), at 0.7-0.8x the fit time; at k=200, 5 were 0.08 % worse
#: than 10 on average, so the factor climbs to SageMaker's 10 there.
AUTO_CENTER_FACTOR_MIN = 4
AUTO_CENTER_FACTOR_MAX = 10
AUTO_CENTER_FACTOR_STEP = 20
#: ``num_trials="auto"`` when finalizing for another k than the one streamed (no tentative
#: centers to start from): SageMaker's published logs show 10 local trials.
AUTO_NUM_TRIALS_COLD = 10


def resolve_center_factor(center_factor, k: int) -> int:
    """The extra-center factor ``center_factor`` means for ``k`` clusters."""
    if center_factor != "auto":
        return int(center_factor)
    return min(AUTO_CENTER_FACTOR_MAX,
               max(AUTO_CENTER_FACTOR_MIN, -(-int(k) // AUTO_CENTER_FACTOR_STEP)))


def resolve_num_trials(num_trials, *, warm_start: bool) -> int:
    """Local Lloyd's trials for ``num_trials``.

    "auto" is one trial — the one started from the tentative centers tracked while streaming,
    which had the lowest loss in every measurement (docs/kmeans.md) — when those exist for the
    requested k, and ``AUTO_NUM_TRIALS_COLD`` seeded trials when they do not.
    """
    if num_trials != "auto":
        return int(num_trials)
    return 1 if warm_start else AUTO_NUM_TRIALS_COLD


class StreamingKMeans(
    RemoteMixin, DeployMixin, HyperparameterMixin, ClassNamePrefixFeaturesOutMixin,
    TransformerMixin, ClusterMixin, BaseEstimator,
):
    """SageMaker's streaming k-means: one pass with extra centers, then a local Lloyd's.

    While the data streams by in mini-batches, ``k * center_factor`` extra centers follow the
    running weighted means of the rows nearest to them. ``fit`` then clusters those weighted
    extra centers into ``k`` centers with a weighted local Lloyd's (best of ``num_trials``).
    The extra centers are kept, so :meth:`refinalize` gives the model for another ``k`` and
    :meth:`elbow_curve` the loss over a range of ``k`` — without reading the data again.

    Parameters
    ----------
    %(parameters)s

    Attributes
    ----------
    cluster_centers_ : ndarray of shape (k, n_features)
        Final centers, in the training data's dtype (float32 stays float32).
    labels_ : ndarray of shape (n_samples,), int32
        Cluster of each training row (set by ``fit`` on in-memory data).
    inertia_ : float
        Weighted sum of squared distances of the training rows to their closest center
        (set by ``fit`` on in-memory data).
    n_iter_ : int
        Local Lloyd's iterations of the winning trial.
    extra_centers_ : ndarray of shape (n_extra_centers_, n_features)
        The streamed extra centers (``k * center_factor_`` of them once that many rows were
        seen; until then the rows themselves).
    extra_center_weights_ : ndarray of shape (n_extra_centers_,), float64
        Weight each extra center absorbed (decayed when ``half_life_time_size > 0``).
    n_extra_centers_ : int
        Number of extra centers.
    coreset_size_ : int
        Weighted points the local Lloyd's clustered: the extra centers' rows split by the
        tentative cluster they fell in (see ``skmk/cluster/_state.py``).
    coreset_loss_ : float
        Weighted SSD the local Lloyd's reached plus the scatter within the coreset cells: an
        estimate (an upper bound for in-memory fits) of the SSD of the streamed data.
    center_factor_ : int
        The resolved ``center_factor``.
    num_trials_ : int
        The resolved ``num_trials``.
    streaming_state_ : KMeansState
        The streamed state; ``partial_fit`` continues it.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during fit, when X has string feature names.
    training_job_ : skmk.remote.TrainingJob
        Only after ``fit(..., wait=False)`` on a Ray backend: the submitted training job.

    See Also
    --------
    sklearn.cluster.KMeans : Lloyd's algorithm on data in memory.
    sklearn.cluster.MiniBatchKMeans : Mini-batch k-means without extra centers.

    Notes
    -----
    The algorithm is SageMaker's (Liberty et al., SIGMOD 2020). Centers whose weight falls
    below 1/1000 of the mean center weight are re-seeded to a row of the current batch drawn
    with probability proportional to ``w * D^2`` (see ``KMeansState._reseed_starved``).

    Examples
    --------
    >>> import numpy as np
    >>> from skmk import StreamingKMeans
    >>> X = np.array([[1, 2], [1, 4], [1, 0], [10, 2], [10, 4], [10, 0]], dtype=float)
    >>> km = StreamingKMeans(k=2, random_state=0).fit(X)
    >>> sorted(km.cluster_centers_.tolist())
    [[1.0, 2.0], [10.0, 2.0]]
    """

    k = Hyperparameter([Interval(Integral, 2, None, closed="left")], default=8,
                       doc="Number of clusters. SageMaker requires it; 8 as in scikit-learn.")
    init_method = Hyperparameter(
        [StrOptions({"random", "kmeans++"})], default="random",
        doc="How the extra centers are drawn from the first rows: uniformly at random, or by "
            "k-means++ D² sampling.")
    max_iterations = Hyperparameter(
        [Interval(Integral, 1, None, closed="left")], default=300,
        wire_name="local_lloyd_max_iter", doc="Local Lloyd's iterations per trial at most.")
    tol = Hyperparameter(
        [Interval(Real, 0, 1, closed="both")], default=1e-4, wire_name="local_lloyd_tol",
        doc="A local Lloyd's trial stops when the relative decrease of its weighted SSD is at "
            "most this.")
    num_trials = Hyperparameter(
        [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})], default="auto",
        wire_name="local_lloyd_num_trials", type_doc="int or 'auto'",
        doc="Local Lloyd's trials; the lowest loss wins. The first starts from the centers "
            "tracked while streaming, the others from ``local_init_method`` seeds. 'auto' = 1 "
            f"for the streamed k, {AUTO_NUM_TRIALS_COLD} when re-finalizing for another k.")
    local_init_method = Hyperparameter(
        [StrOptions({"random", "kmeans++"})], default="kmeans++",
        wire_name="local_lloyd_init_method",
        doc="Seeding of each local Lloyd's trial: weighted k-means++ or weighted random.")
    half_life_time_size = Hyperparameter(
        [Interval(Integral, 0, None, closed="left")], default=0,
        doc="Decay: after this many further rows a row's weight is halved; 0 = no decay.")
    epochs = Hyperparameter([Interval(Integral, 1, None, closed="left")], default=1,
                            doc="Passes over the data.")
    center_factor = Hyperparameter(
        [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})], default="auto",
        wire_name="extra_center_factor", type_doc="int or 'auto'",
        doc=f"Extra centers kept while streaming, per final center. 'auto' = "
            f"ceil(k / {AUTO_CENTER_FACTOR_STEP}) clipped to [{AUTO_CENTER_FACTOR_MIN}, "
            f"{AUTO_CENTER_FACTOR_MAX}]: {AUTO_CENTER_FACTOR_MIN} up to k=80, "
            f"{AUTO_CENTER_FACTOR_MAX} (SageMaker's) from k=181.")
    eval_metrics = Hyperparameter(
        [ListOf({"msd", "ssd"})], default=("msd",), type_doc="list or tuple of {'msd', 'ssd'}",
        doc="Metrics :meth:`evaluate` reports: 'msd' (mean squared distance to the closest "
            "center) and/or 'ssd' (their sum).")
    mini_batch_size = Hyperparameter([Interval(Integral, 1, None, closed="left")],
                                     default=5000, doc="Rows per mini-batch.")
    random_state = Hyperparameter(
        ["random_state"], default=None,
        doc="Seeds the extra centers, re-seeding and the local trials. Pass an int for "
            "reproducible results.")
    verbose = Hyperparameter(
        [Interval(Integral, 0, None, closed="left")], default=0, on_wire=False,
        doc="Print progress lines while fitting (rows, rows/s, MB/s, the batch's mean squared "
            "distance to the extra centers), at most every two seconds; 0 is silent.")
    backend = backend_hyperparameter()

    # -- fitting ---------------------------------------------------------------------------------

    @_fit_context(prefer_skip_nested_validation=True)
    @atomic_fit
    def fit(self, X, y=None, sample_weight=None, *, wait=True, job_name=None):
        """Stream X in mini-batches, then finalize to ``k`` centers.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features), or a data source
            Training rows; float32 stays float32, other types become float64; sparse as CSR.
            A path, directory, glob, SageMaker manifest or fsspec URL of RecordIO-protobuf,
            CSV, Parquet or .npy files is streamed batch by batch; so is a ``Source`` from
            ``skmk.io.open_source`` (which carries ``storage_options``: credentials, endpoint).
        y : Ignored
        sample_weight : array-like of shape (n_samples,), default=None
            Weight of each row (default 1).
        wait : bool, default=True
            With a Ray ``backend``, False submits a training job and returns at once, with
            ``training_job_`` set (docs/remote.md). Must be True for a local fit.
        job_name : str, default=None
            Name of the training job (``wait=False`` only); generated when None.

        Returns
        -------
        self : StreamingKMeans
        """
        backend = self._execution_backend(wait)
        if backend is not None:
            return backend.fit(self, X, None, sample_weight, wait=wait, job_name=job_name)
        if is_source(X):
            return self._fit_source(X, sample_weight)
        X, _, sample_weight, context = self._validate_fit_arrays(X, None, sample_weight,
                                                                 finite_in_stream=True)
        random_state = check_random_state(self.random_state)
        progress = Progress(type(self).__name__, self.verbose)
        with single_threaded_blas(effective_n_threads()):
            state = self._stream_arrays(X, None, sample_weight, random_state, progress,
                                        labelled_after=True)
            progress.close(state)
            self._commit_array_state(
                state, context,
                label_rows=lambda centers: self._label_rows(X, sample_weight, centers, state))
        return self

    def _fit_source(self, location, sample_weight):
        """Stream a file source (``skmk.io.open_source``): one pass per epoch, bounded memory.

        ``labels_`` and ``inertia_`` are not set: they would need another pass.
        """
        if sample_weight is not None:
            raise ValueError("sample_weight cannot be given with a file source")
        with single_threaded_blas(effective_n_threads()):
            fit_source(self, location, check_random_state(self.random_state))
        return self

    # -- the pieces of a fit, shared by the local fit and the workers of a distributed one ------

    def _validate_fit_arrays(self, X, y, sample_weight, *, finite_in_stream=False):
        """Validate in-memory training data as ``fit`` does.

        With ``finite_in_stream`` dense rows are not checked for NaN and infinity here: the
        k-means state checks each mini-batch as it reads it (``KMeansState.update``), which
        spares a whole pass over the data; a failed fit commits nothing.

        Returns
        -------
        X, y, sample_weight, context
            The validated arrays (``y`` is None) and the keyword arguments
            ``_commit_array_state`` needs (none for k-means).
        """
        X, sample_weight = self._validate_training_data(X, sample_weight, reset=True,
                                                        finite_in_stream=finite_in_stream)
        return X, None, sample_weight, {}

    def _open_training_source(self, location):
        return source_for_estimator(location, batch_size=self.mini_batch_size)

    def _stream_arrays(self, X, y, sample_weight, random_state, progress, *,
                       labelled_after=False) -> KMeansState:
        """A new state updated with every mini-batch of validated rows, ``epochs`` times.

        ``labelled_after``: the same rows will be labelled (``_label_rows``) with this state,
        which then keeps what the last epoch learned about them (their low-rank coordinates).
        """
        state = self._new_state(Batch(X[:1]), random_state=random_state)
        for epoch in range(self.epochs):
            if labelled_after and epoch == self.epochs - 1:
                state.keep_row_coordinates()
            run_updates(state, self._batches(X, sample_weight), progress=progress)
        return state

    def _stream_source(self, source, random_state, progress) -> KMeansState | None:
        """A new state updated with every batch of ``source``, ``epochs`` times; None when the
        source holds no rows."""
        state = None
        for _ in range(self.epochs):
            batches = validated_batches(self, source.batches(),
                                        dtype=None if state is None else state.dtype,
                                        finite_in_stream=True)
            for batch in batches:
                if state is None:
                    state = self._new_state(batch, random_state=random_state)
                if state.n_features != batch.X.shape[1]:
                    raise ValueError(f"{source!r} has {batch.X.shape[1]} features in a "
                                     f"later epoch, {state.n_features} before")
                state.update(batch)
                progress(state, batch)
        return state

    def _label_rows(self, X, sample_weight, centers, state=None) -> tuple[np.ndarray, float]:
        """Closest center of each row and the weighted SSD (``labels_``, ``inertia_``), with
        what ``state`` kept of these rows (``_stream_arrays(labelled_after=True)``) if given.
        """
        labels, sq_distances = nearest_centers(X, centers) if state is None \
            else state.label_kept_rows(X, centers)
        return labels, float(np.dot(sample_weight.astype(np.float64), sq_distances))

    def _commit_array_state(self, state: KMeansState, context: dict, *, label_rows) -> None:
        """Finalize a state streamed from in-memory rows and commit the model.

        ``label_rows(centers)`` returns ``(labels_, inertia_)`` for the training rows: computed
        here in one piece, or on the workers that hold the shards of a distributed fit.
        """
        fitted = self._finalized_attributes(state, state.random_state)
        fitted["labels_"], fitted["inertia_"] = label_rows(fitted["cluster_centers_"])
        fitted.update(self._feature_attributes())
        commit_fitted(self, fitted)

    def _commit_source_state(self, state: KMeansState | None, source) -> None:
        """Finalize a state streamed from a file source and commit the model."""
        if state is None:
            raise ValueError(f"{source!r} holds no rows")
        n_rows = state.coreset()[1].sum() if not state.initialized else state.n_seen
        if n_rows < self.k:
            raise ValueError(f"{source!r} holds {n_rows:g} rows, fewer than k={self.k}")
        fitted = self._finalized_attributes(state, state.random_state)
        fitted["n_features_in_"] = state.n_features
        commit_fitted(self, fitted)

    @atomic_fit
    def partial_fit(self, X, y=None, sample_weight=None):
        """Stream one more chunk of data; the model is finalized again and usable after each call.

        The first call fixes ``n_features_in_`` and the dtype; later calls must have the same
        number of features.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : Ignored
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : StreamingKMeans
        """
        first_call = not hasattr(self, "streaming_state_")
        if first_call:
            self._validate_params()
        X, sample_weight = self._validate_training_data(X, sample_weight, reset=first_call,
                                                        finite_in_stream=True)
        if first_call:
            random_state = check_random_state(self.random_state)
            state = self._new_state(Batch(X[:1]), random_state=random_state)
        else:
            # Work on a copy: a failure below must leave the fitted model as it was.
            state = copy.deepcopy(self.streaming_state_)
            random_state = state.random_state
        with single_threaded_blas(effective_n_threads()):
            run_updates(state, self._batches(X, sample_weight))
            fitted = self._finalized_attributes(state, random_state)
        if first_call:
            fitted.update(self._feature_attributes())
        else:
            fitted.update({name: getattr(self, name) for name in
                           ("n_features_in_", "feature_names_in_") if hasattr(self, name)})
        commit_fitted(self, fitted)
        return self

    def _validate_training_data(self, X, sample_weight, *, reset, finite_in_stream=False):
        dtype = [np.float64, np.float32] if reset else self.streaming_state_.dtype
        X = validate_data(self, X, accept_sparse="csr", dtype=dtype, order="C",
                          accept_large_sparse=False, reset=reset,
                          ensure_all_finite=not finite_in_stream or sp.issparse(X))
        sample_weight = _check_sample_weight(sample_weight, X, dtype=X.dtype)
        if reset and X.shape[0] < self.k:
            raise ValueError(
                f"n_samples={X.shape[0]} should be >= k={self.k}: there must be at least as "
                "many rows as clusters"
            )
        return X, sample_weight

    def _batches(self, X, sample_weight):
        """The one place data reaches the algorithm: mini-batches of validated rows."""
        return iter_array_batches(X, None, sample_weight, batch_size=self.mini_batch_size)

    def _feature_attributes(self) -> dict:
        """``n_features_in_`` / ``feature_names_in_`` as ``validate_data`` just set them, so that
        ``commit_fitted`` keeps them beside the model."""
        fitted = {"n_features_in_": self.n_features_in_}
        if hasattr(self, "feature_names_in_"):
            fitted["feature_names_in_"] = self.feature_names_in_
        return fitted

    # -- the streaming-state protocol ------------------------------------------------------------

    def _new_state(self, first_batch: Batch, random_state=None) -> KMeansState:
        """Initialize: an empty state for data shaped like ``first_batch``."""
        factor = resolve_center_factor(self.center_factor, self.k)
        dtype = first_batch.X.dtype if first_batch.X.dtype == np.float32 else np.float64
        return KMeansState(
            k=self.k,
            n_extra=self.k * factor,
            n_features=first_batch.X.shape[1],
            dtype=dtype,
            init_method=self.init_method,
            half_life=self.half_life_time_size,
            random_state=check_random_state(
                self.random_state if random_state is None else random_state),
        )

    def _finalize_state(self, state: KMeansState, *, n_features_in: int,
                        feature_names_in=None) -> StreamingKMeans:
        """Finalize a streamed (e.g. merged) state into this estimator's fitted model."""
        fitted = self._finalized_attributes(state, state.random_state)
        fitted["n_features_in_"] = n_features_in
        if feature_names_in is not None:
            fitted["feature_names_in_"] = feature_names_in
        commit_fitted(self, fitted)
        return self

    def _finalized_attributes(self, state: KMeansState, random_state) -> dict:
        points, weights = state.coreset()
        if points.shape[0] == 0:
            raise ValueError("no row with positive weight was seen: nothing to cluster")
        warm_start = state.tentative if state.k == self.k else None
        n_trials = resolve_num_trials(self.num_trials, warm_start=warm_start is not None)
        bound = state.bound_for(self.k)
        result = weighted_lloyd(
            points, weights, self.k, init_method=self.local_init_method,
            max_iter=self.max_iterations, tol=self.tol, n_trials=n_trials,
            random_state=random_state, warm_start=warm_start, bound=bound,
            coordinates=state.coreset_coordinates(bound),
        )
        return {
            "cluster_centers_": result.centers,
            "n_iter_": result.n_iter,
            "extra_centers_": state.centers.copy() if state.initialized else points,
            "extra_center_weights_": state.weights.copy() if state.initialized else weights,
            "n_extra_centers_": state.n_extra if state.initialized else points.shape[0],
            "coreset_size_": points.shape[0],
            "center_factor_": resolve_center_factor(self.center_factor, state.k),
            "num_trials_": n_trials,
            "coreset_loss_": result.loss + state.within_scatter(),
            "streaming_state_": state,
        }

    # -- re-finalizing the coreset ---------------------------------------------------------------

    def refinalize(self, k: int, **params) -> StreamingKMeans:
        """The fitted model for another ``k`` (and other finalize settings), from the kept
        extra centers: no pass over the data.

        Parameters
        ----------
        k : int
            Clusters of the new model, at most ``n_extra_centers_``.
        **params
            Other finalize hyperparameters to change (``num_trials``, ``local_init_method``,
            ``max_iterations``, ``tol``, ``random_state``).

        Returns
        -------
        model : StreamingKMeans
            A new fitted estimator with ``k`` clusters; ``labels_`` and ``inertia_`` are not
            set (they need the data), ``coreset_loss_`` estimates the inertia.
        """
        check_is_fitted(self)
        allowed = {"num_trials", "local_init_method", "max_iterations", "tol", "random_state"}
        unknown = sorted(set(params) - allowed)
        if unknown:
            raise ValueError(f"refinalize can change only {sorted(allowed)}, got {unknown}")
        model = copy.deepcopy(self)
        model.set_params(k=k, **params)
        model._validate_params()
        model._finalize_state(
            copy.deepcopy(self.streaming_state_),
            n_features_in=self.n_features_in_,
            feature_names_in=getattr(self, "feature_names_in_", None),
        )
        return model

    def elbow_curve(self, k_values, **params) -> np.ndarray:
        """Estimated SSD of the data for each k, from the kept extra centers alone.

        Each value is the weighted local Lloyd's loss on the extra centers plus the scatter of
        the rows around them, an estimate of what ``inertia_`` would be; plot it against k to
        pick k at the elbow. See docs/kmeans.md for an example.

        Parameters
        ----------
        k_values : iterable of int
        **params
            Finalize settings, as for :meth:`refinalize`.

        Returns
        -------
        ssd : ndarray of shape (len(k_values),), float64
        """
        return np.array([self.refinalize(int(k), **params).coreset_loss_ for k in k_values])

    # -- using the model -------------------------------------------------------------------------

    def _check_test_data(self, X, *, finite_later=False):
        """Validate rows to predict for. With ``finite_later`` dense rows are not checked for
        NaN/inf here: the caller checks the distances it computes (``_nearest``)."""
        check_is_fitted(self)
        return validate_data(self, X, accept_sparse="csr", dtype=[np.float64, np.float32],
                             order="C", accept_large_sparse=False, reset=False,
                             ensure_all_finite=not finite_later or sp.issparse(X))

    def _nearest(self, X):
        """Closest center of each row of ``_check_test_data(X, finite_later=True)`` and the
        squared distance to it.

        The distances double as the NaN/inf check: a row with either has a non-finite distance,
        and only then is X scanned for scikit-learn's error. That spares the whole pass over X
        a separate check costs (Fashion-MNIST, k=100: predict 66 ms -> about 60 ms)."""
        labels, sq_distances = nearest_centers(X, self._centers_for(X))
        if not np.isfinite(sq_distances).all():
            assert_all_finite(X, input_name="X")
        return labels, sq_distances

    def _centers_for(self, X) -> np.ndarray:
        return self.cluster_centers_.astype(X.dtype, copy=False)

    def predict(self, X):
        """Index of the closest center of each row.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        labels : ndarray of shape (n_samples,), int32
            For a data source (path, URL, ...): an iterator of such arrays, one per batch.
        """
        if is_source(X):
            return results_per_batch(self, X, self.predict, batch_size=self.mini_batch_size)
        return self._nearest(self._check_test_data(X, finite_later=True))[0]

    def fit_predict(self, X, y=None, sample_weight=None):
        """Fit, then return ``labels_``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : Ignored
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        labels : ndarray of shape (n_samples,), int32
        """
        return self.fit(X, sample_weight=sample_weight).labels_

    def transform(self, X):
        """Euclidean distance of each row to each of the ``k`` centers.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        distances : ndarray of shape (n_samples, k), X's float dtype
            For a data source: an iterator of such arrays, one per batch.
        """
        if is_source(X):
            return results_per_batch(self, X, self.transform, batch_size=self.mini_batch_size)
        X = self._check_test_data(X)
        return euclidean_distances(X, self._centers_for(X))

    def fit_transform(self, X, y=None, sample_weight=None):
        """Fit, then return the distances of the training rows to the centers.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : Ignored
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        distances : ndarray of shape (n_samples, k)
        """
        return self.fit(X, sample_weight=sample_weight).transform(X)

    def _weighted_sq_distances(self, X, sample_weight):
        X = self._check_test_data(X, finite_later=True)
        sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64)
        return self._nearest(X)[1].astype(np.float64), sample_weight

    def score(self, X, y=None, sample_weight=None) -> float:
        """Opposite of the weighted SSD of X to the closest centers (higher is better).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : Ignored
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        score : float
        """
        sq_distances, sample_weight = self._weighted_sq_distances(X, sample_weight)
        return -float(np.dot(sample_weight, sq_distances))

    def evaluate(self, X, sample_weight=None) -> dict[str, float]:
        """The ``eval_metrics`` on X, as SageMaker reports them on a test channel.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        metrics : dict
            ``{"msd": mean squared distance to the closest center, "ssd": their sum}``,
            restricted to ``eval_metrics``; weighted when ``sample_weight`` is given.
        """
        metrics = self.eval_metrics
        if isinstance(metrics, str) or not set(metrics) <= {"msd", "ssd"}:
            # Same message as fit's validation would give.
            self._validate_params()
        sq_distances, sample_weight = self._weighted_sq_distances(X, sample_weight)
        ssd = float(np.dot(sample_weight, sq_distances))
        values = {"msd": ssd / float(sample_weight.sum()), "ssd": ssd}
        return {name: values[name] for name in metrics}

    @property
    def _n_features_out(self):
        return self.cluster_centers_.shape[0]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

