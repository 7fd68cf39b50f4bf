"""The streaming-state protocol shared by every way of fitting.

Both algorithms are *initialize → update → merge → finalize* (Liberty et al., "Elastic machine
learning algorithms in Amazon SageMaker", SIGMOD 2020). One small, picklable state object per
algorithm carries a fit:

* ``fit(X)``: one state, ``update`` over the mini-batches of X, ``finalize``;
* ``partial_fit``: ``update`` on the state kept from the previous call, ``finalize`` again;
* out-of-core sources: the same loop over batches read from files;
* distributed fit: one state per worker shard, ``merge`` on the driver, ``finalize``;
* checkpoint/resume and re-finalizing for new settings (a k-means coreset for another k).

An estimator supplies two methods: ``_initialize_state(batch, random_state)`` and
``_finalize_state(state)``; the loop, progress and the all-or-nothing commit of fitted
attributes live here.
"""

from __future__ import annotations

import abc
import functools
import logging
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

logger = logging.getLogger("skmk")

__all__ = ["Batch", "Progress", "StreamingState", "atomic_fit", "commit_fitted", "fit_source",
           "run_updates"]


@dataclass(frozen=True)
class Batch:
    """One mini-batch: features, optional targets and optional per-row weights.

    Attributes
    ----------
    X : ndarray or sparse matrix of shape (n_rows, n_features)
    y : ndarray of shape (n_rows,) or None
    sample_weight : ndarray of shape (n_rows,) or None
    """

    X: Any
    y: np.ndarray | None = None
    sample_weight: np.ndarray | None = None

    @property
    def n_rows(self) -> int:
        return self.X.shape[0]


class StreamingState(abc.ABC):
    """What an algorithm remembers between mini-batches.

    Subclasses are plain picklable objects (numpy arrays and numbers), so a state can be
    checkpointed, shipped to a worker and merged on a driver.
    """

    #: Rows (or total weight) absorbed so far.
    n_seen: float = 0.0

    @abc.abstractmethod
    def update(self, batch: Batch) -> None:
        """Absorb one mini-batch in place."""

    @abc.abstractmethod
    def merge(self, other: StreamingState) -> StreamingState:
        """Combine with a state built on other data of the same stream; returns the result."""


def run_updates(
    state: StreamingState,
    batches: Iterable[Batch],
    *,
    progress=None,
) -> StreamingState:
    """Feed every batch to ``state.update``; ``progress(state, batch)`` is called after each."""
    for batch in batches:
        if batch.n_rows == 0:
            continue
        state.update(batch)
        if progress is not None:
            progress(state, batch)
    return state


class Progress:
    """Progress lines for long fits: rows, rows/s, MB/s and the state's current metric.

    Called after every batch (``run_updates(progress=...)``); prints at most every
    ``interval`` seconds, and once more from ``close()``. Silent unless ``verbose``.

    Parameters
    ----------
    label : str
        What is being fitted, e.g. "StreamingKMeans".
    verbose : int
        0 prints nothing.
    interval : float, default=2.0
        Seconds between lines.
    """

    def __init__(self, label: str, verbose: int, interval: float = 2.0, stream=None):
        self.label, self.verbose, self.interval = label, verbose, interval
        self.stream = stream or sys.stderr
        self.rows = self.bytes = 0
        self.start = self.last = time.perf_counter()

    def __call__(self, state: StreamingState, batch: Batch) -> None:
        self.rows += batch.n_rows
        X = batch.X
        self.bytes += X.data.nbytes if hasattr(X, "indptr") else X.nbytes
        now = time.perf_counter()
        if self.verbose and now - self.last >= self.interval:
            self._line(state, now)
            self.last = now

    def close(self, state: StreamingState | None = None) -> None:
        if self.verbose:
            self._line(state, time.perf_counter(), final=True)

    def _line(self, state, now, final=False) -> None:
        elapsed = max(now - self.start, 1e-9)
        metric = getattr(state, "progress_metric", None)
        shown = "" if metric is None else f", {metric[0]} {metric[1]:.6g}"
        print(f"[{self.label}] {'done: ' if final else ''}{self.rows:,} rows in {elapsed:.1f} s "
              f"({self.rows / elapsed:,.0f} rows/s, {self.bytes / 2**20 / elapsed:,.1f} MB/s)"
              f"{shown}", file=self.stream, flush=True)


def fit_source(estimator, location, random_state) -> None:
    """Fit ``estimator`` on a file source in this process: stream it into a new state, then
    finalize and commit.

    The estimator supplies ``_open_training_source(location)``,
    ``_stream_source(source, random_state, progress)`` and ``_commit_source_state(state,
    source)``; the workers of a distributed fit call the same ``_stream_source`` on their
    shards of the files.
    """
    source = estimator._open_training_source(location)
    progress = Progress(f"{type(estimator).__name__} <- {source!r}", estimator.verbose)
    state = estimator._stream_source(source, random_state, progress)
    progress.close(state)
    estimator._commit_source_state(state, source)


def peek(batches: Iterable[Batch]) -> tuple[Batch, Iterator[Batch]]:
    """The first non-empty batch and an iterator over all batches, that first one included.

    Initialization needs the first batch (k-means seeds its extra centers from it) before the
    update loop sees it; this avoids reading a source twice.
    """
    iterator = iter(batches)
    for batch in iterator:
        if batch.n_rows:
            return batch, _chain_first(batch, iterator)
    raise ValueError("the data holds no rows: at least one sample is required to fit")


def _chain_first(first: Batch, rest: Iterator[Batch]) -> Iterator[Batch]:
    yield first
    yield from rest


def commit_fitted(estimator, fitted: dict[str, Any]) -> None:
    """Set all fitted attributes at once, after everything that can fail has run.

    Fitting computes into a local dict and commits here, so a fit that raises leaves a
    previously fitted estimator exactly as it was. Fitted attributes of an earlier fit that the
    new one does not produce (e.g. ``feature_names_in_`` after fitting an ndarray) are removed.
    """
    for name in _fitted_attributes(estimator):
        if name not in fitted:
            delattr(estimator, name)
    for name, value in fitted.items():
        setattr(estimator, name, value)


def atomic_fit(method):
    """Decorate a fitting method so that, if it raises, the estimator is left as it was.

    Fitted attributes (names ending in ``_``) are snapshotted before the call and restored on
    any exception — including ones that ``validate_data`` sets early, such as
    ``n_features_in_``. The snapshot is shallow: fitting code replaces attributes and never
    mutates a fitted array or state in place.
    """

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        snapshot = _fitted_attributes(self)
        try:
            return method(self, *args, **kwargs)
        except BaseException:
            for name in _fitted_attributes(self):
                delattr(self, name)
            for name, value in snapshot.items():
                setattr(self, name, value)
            raise

    return wrapper


def _fitted_attributes(estimator) -> dict[str, Any]:
    return {name: value for name, value in vars(estimator).items()
            if name.endswith("_") and not name.startswith("__")}
