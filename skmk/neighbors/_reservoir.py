"""Reservoir sampling of (row, label) pairs: ApproxKNN's streaming state.

Algorithm R (Vitter), vectorized per batch: the t-th row of the stream (0-based) replaces a
uniformly chosen slot with probability s / (t + 1) once the reservoir holds s rows, so after n
rows every row is in the sample with probability min(1, s / n). Two reservoirs built on disjoint
parts of a stream merge into a uniform sample of the union: the number of rows taken from the
first is hypergeometric (s draws from n_a + n_b rows without replacement), and those rows are a
uniform subset of its reservoir.
"""

from __future__ import annotations

import itertools

import numpy as np
import scipy.sparse as sp

from .._streaming import Batch, StreamingState


class ReservoirState(StreamingState):
    """A uniform sample of at most ``sample_size`` rows (and their labels) of a stream.

    Parameters
    ----------
    sample_size : int
    n_features : int
    dtype : numpy dtype
        float32 or float64: rows are stored dense in it.
    random_state : numpy.random.RandomState

    Attributes
    ----------
    X : ndarray of shape (n_kept, n_features)
    y : ndarray of shape (n_kept,) or None
    n_seen : int
        Rows offered so far.
    """

    def __init__(self, sample_size, n_features, dtype, random_state):
        self.sample_size = int(sample_size)
        self.n_features = int(n_features)
        self.dtype = np.dtype(dtype)
        self.random_state = random_state
        self._X_parts: list[np.ndarray] = []  # while filling: the batches kept as they came
        self._y_parts: list[np.ndarray] = []
        self._filled: np.ndarray | None = None
        self._labels: np.ndarray | None = None
        self.n_seen = 0

    @property
    def n_kept(self) -> int:
        return min(self.n_seen, self.sample_size)

    def _consolidate(self) -> None:
        if self._X_parts:
            parts = ([self._filled] if self._filled is not None else []) + self._X_parts
            self._filled = _join(parts)
            if self._y_parts:
                labels = ([self._labels] if self._labels is not None else []) + self._y_parts
                self._labels = _join(labels)
            self._X_parts, self._y_parts = [], []

    @property
    def X(self) -> np.ndarray:
        self._consolidate()
        if self._filled is None:
            return np.empty((0, self.n_features), dtype=self.dtype)
        return self._filled

    @property
    def y(self) -> np.ndarray | None:
        self._consolidate()
        return self._labels

    def update(self, batch: Batch) -> None:
        X = batch.X.toarray() if sp.issparse(batch.X) else batch.X
        X = np.asarray(X, dtype=self.dtype)
        y = None if batch.y is None else np.asarray(batch.y)
        n = X.shape[0]
        room = max(self.sample_size - self.n_seen, 0)
        if room:  # still filling: keep the first rows as they come (views until replaced)
            take = min(room, n)
            self._X_parts.append(X[:take])
            if y is not None:
                self._y_parts.append(y[:take])
        start = min(room, n)
        if start < n:
            self._replace(X[start:], None if y is None else y[start:], self.n_seen + start)
        self.n_seen += n

    def _replace(self, X, y, first_index) -> None:
        """Algorithm R for rows with stream indices first_index, first_index + 1, ..."""
        self._consolidate()
        indices = first_index + np.arange(X.shape[0])
        slots = self._draw(indices)
        accepted = np.flatnonzero(slots < self.sample_size)
        if accepted.size == 0:
            return
        # Later rows overwrite earlier ones that drew the same slot, as in the sequential loop:
        # keep the last occurrence of each slot.
        chosen = slots[accepted]
        _, last = np.unique(chosen[::-1], return_index=True)
        keep = accepted[accepted.size - 1 - last]
        if self._filled.base is not None:  # a view of the caller's data: never write into it
            self._filled = np.array(self._filled)
        if self._labels is not None and self._labels.base is not None:
            self._labels = np.array(self._labels)
        self._filled[slots[keep]] = X[keep]
        if y is not None and self._labels is not None:
            self._labels[slots[keep]] = y[keep]

    def _draw(self, indices: np.ndarray) -> np.ndarray:
        """A uniform integer in [0, t] for each stream index t."""
        return np.floor(self.random_state.random_sample(indices.size) * (indices + 1)).astype(
            np.int64)

    def merge(self, other: ReservoirState) -> ReservoirState:
        """A uniform sample of the union of the two streams."""
        if other.n_features != self.n_features:
            raise ValueError(
                f"cannot merge reservoirs of {self.n_features} and {other.n_features} features"
            )
        merged = ReservoirState(self.sample_size, self.n_features, self.dtype, self.random_state)
        merged.n_seen = self.n_seen + other.n_seen
        n_total = merged.n_kept
        if self.n_seen and other.n_seen:
            from_self = self.random_state.hypergeometric(self.n_seen, other.n_seen, n_total)
        else:
            from_self = n_total if self.n_seen else 0
        parts_X, parts_y = [], []
        for state, count in ((self, from_self), (other, n_total - from_self)):
            rows = self.random_state.choice(state.n_kept, count, replace=False)
            rows.sort()
            parts_X.append(state.X[rows])
            if state.y is not None:
                parts_y.append(state.y[rows])
        merged._filled = np.concatenate(parts_X)
        merged._labels = np.concatenate(parts_y) if len(parts_y) == 2 else None
        return merged


def join_shares(states: list[ReservoirState]) -> ReservoirState:
    """One uniform sample from reservoirs that each drew its *share* of it.

    When shard ``i`` of a stream holds ``n_i`` rows, a uniform sample of ``s`` rows of the
    whole is: counts ``c_i`` drawn from the multivariate hypergeometric distribution (``s``
    draws without replacement from the ``n_i``), then a uniform ``c_i``-subset of each shard —
    which is what a reservoir of size ``c_i`` over shard ``i`` keeps. So the shares only need
    to be put side by side (in shard order, so that a sample of everything keeps the rows in
    order). The result continues the first state's random stream.
    """
    first = states[0]
    merged = ReservoirState(sum(s.sample_size for s in states), first.n_features, first.dtype,
                            first.random_state)
    merged.n_seen = sum(s.n_seen for s in states)
    merged._filled = np.concatenate([s.X for s in states])
    # A state whose share is 0 kept no rows and so no labels either: it adds nothing.
    labels = [s.y for s in states if s.X.shape[0]]
    merged._labels = (None if not labels or any(y is None for y in labels)
                      else np.concatenate(labels))
    return merged


def _join(parts: list[np.ndarray]) -> np.ndarray:
    """Concatenate row blocks; consecutive slices of one C-contiguous array (the mini-batches of
    in-memory data) are joined as a view, without copying the data."""
    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    adjacent = all(
        part.flags.c_contiguous and part.dtype == first.dtype and part.shape[1:] == first.shape[1:]
        and part.base is not None and part.base is first.base
        for part in parts
    ) and all(
        after.__array_interface__["data"][0]
        == before.__array_interface__["data"][0] + before.nbytes
        for before, after in itertools.pairwise(parts)
    )
    if adjacent:
        rows = sum(part.shape[0] for part in parts)
        return np.lib.stride_tricks.as_strided(first, shape=(rows, *first.shape[1:]),
                                               strides=first.strides, writeable=False)
    return np.concatenate(parts)
