"""Distributed fit: one streamed state per shard on Ray workers, merged and finalized here.

The streaming-state protocol does the work (``skmk/_streaming.py``): each worker runs the
estimator's own ``_stream_arrays`` / ``_stream_source`` over its shard — the code a local fit
runs over all the data — and returns its state; the driver merges the states in shard order and
commits them with the estimator's own ``_commit_array_state`` / ``_commit_source_state``.

Seeding: shard 0 gets exactly the random state a local fit would use, the others independent
streams derived from it, and the finalize continues shard 0's stream. With one worker a Ray fit
therefore runs the same computation as a local fit, draw for draw, and gives the same model.
"""

from __future__ import annotations

import copy
import functools
import itertools
import sys
import time
from numbers import Integral

import numpy as np
from sklearn.base import clone
from sklearn.utils import check_random_state

from .._kernels import effective_n_threads
from .._kernels._threads import single_threaded_blas
from .._streaming import Progress
from ..io import Source, is_source

__all__ = ["fit_distributed", "shard_bounds", "worker_random_states"]


def fit_distributed(estimator, X, y, sample_weight, backend):
    """Fit ``estimator`` on ``backend.num_workers`` Ray workers and commit the model to it.

    Parameters
    ----------
    estimator : StreamingKMeans or ApproxKNN
        Its parameters are already validated (``fit`` did it).
    X : {array-like, sparse matrix} of shape (n_samples, n_features), or a data source
        Arrays are validated here, cut into contiguous row shards and placed in Ray's object
        store; a source's files are divided between the workers (at most one worker per file).
    y : array-like of shape (n_samples,) or None
    sample_weight : array-like of shape (n_samples,) or None
    backend : RayBackend

    Returns
    -------
    estimator : the same object, fitted
    """
    ray = backend.connect()
    if is_source(X):
        if y is not None or sample_weight is not None:
            raise ValueError("y and sample_weight cannot be given with a file source: labels "
                             "come from its files")
        _fit_file_shards(ray, estimator, X, backend)
    else:
        _fit_row_shards(ray, estimator, X, y, sample_weight, backend)
    return estimator


def _tasks(ray, function, backend):
    """``function`` as a Ray task with the backend's CPUs and retries of dead workers."""
    return ray.remote(function).options(num_cpus=backend.cpus_per_worker,
                                        max_retries=backend.max_retries)


def _fit_file_shards(ray, estimator, location, backend) -> None:
    """Each worker streams its own files; full states are merged pairwise."""
    start = time.perf_counter()
    worker_estimator = clone(estimator).set_params(backend=None)
    stream = _tasks(ray, stream_shard, backend)
    source = estimator._open_training_source(location)
    shards = [_with_files(source, list(files)) for files in
              np.array_split(np.array(source.files, dtype=object),
                             min(backend.num_workers, len(source.files)))]
    _say(estimator, f"{len(shards)} shard(s) of {len(source.files)} file(s)")
    seeds = worker_random_states(estimator.random_state, len(shards))
    states = ray.get([stream.remote(worker_estimator, seed, shard)
                      for shard, seed in zip(shards, seeds)])
    merged = merge_states([s for s in states if s is not None])
    _say(estimator, f"streamed and merged in {time.perf_counter() - start:.1f} s")
    estimator._commit_source_state(merged, source)
    _say(estimator, f"fitted in {time.perf_counter() - start:.1f} s")


def _fit_row_shards(ray, estimator, X, y, sample_weight, backend) -> None:
    """Validated rows cut into contiguous shards in the object store, one task each."""
    start = time.perf_counter()
    worker_estimator = clone(estimator).set_params(backend=None)
    stream = _tasks(ray, stream_shard, backend)
    X, y, sample_weight, context = estimator._validate_fit_arrays(X, y, sample_weight)
    bounds = shard_bounds(X.shape[0], backend.num_workers)
    refs = [tuple(None if a is None else ray.put(a[lo:hi]) for a in (X, y, sample_weight))
            for lo, hi in bounds]
    _say(estimator, f"{len(bounds)} shard(s) of {X.shape[0]:,} rows")
    seeds = worker_random_states(estimator.random_state, len(bounds))
    workers = [worker_estimator] * len(bounds)
    shares = len(bounds) > 1 and hasattr(estimator, "_shard_shares")
    if shares:
        # Shard sizes are known: each worker samples only its share (ApproxKNN). The shares
        # are drawn from a generator seeded by the last shard's stream; shard 0's stream stays
        # the one a local fit uses.
        rng = np.random.default_rng(seeds[-1].randint(2**31 - 1, size=4))
        workers = [clone(worker_estimator).set_params(**params) for params in
                   estimator._shard_shares([hi - lo for lo, hi in bounds], rng)]
    # Object refs as top-level arguments: Ray hands the task the arrays themselves.
    states = ray.get([stream.remote(worker, seed, *shard)
                      for worker, shard, seed in zip(workers, refs, seeds)])
    merged = estimator._join_shares(states) if shares else merge_states(states)
    _say(estimator, f"streamed and merged in {time.perf_counter() - start:.1f} s")

    def label_rows(centers):
        # k-means' labels_ and inertia_: one more pass, on the workers that hold the shards.
        label = _tasks(ray, label_shard, backend)
        parts = ray.get([label.remote(worker_estimator, X_ref, w_ref, centers)
                         for X_ref, _, w_ref in refs])
        labels = np.concatenate([p[0] for p in parts])
        return labels, float(sum(p[1] for p in parts))

    estimator._commit_array_state(merged, context, label_rows=label_rows)
    _say(estimator, f"fitted in {time.perf_counter() - start:.1f} s")


def stream_shard(estimator, random_state, shard, y=None, sample_weight=None):
    """A Ray task: the estimator's streamed state over one shard.

    Parameters
    ----------
    estimator : an unfitted estimator carrying the hyperparameters
    random_state : numpy.random.RandomState
    shard : Source, or {ndarray, sparse matrix} of shape (n_rows, n_features)
        Files to read, or in-memory rows (Ray passes object-store arrays read-only).
    y, sample_weight : ndarray of shape (n_rows,) or None

    Returns
    -------
    state : StreamingState or None
        None when a file shard holds no rows.
    """
    label = f"{type(estimator).__name__} shard"
    progress = Progress(label, estimator.verbose)
    with single_threaded_blas(effective_n_threads()):
        if isinstance(shard, Source):
            state = estimator._stream_source(shard, random_state, progress)
        else:
            state = estimator._stream_arrays(shard, y, sample_weight, random_state, progress)
    progress.close(state)
    return state


def label_shard(estimator, X, sample_weight, centers):
    """A Ray task: ``(labels, weighted SSD)`` of one shard's rows to the final centers."""
    with single_threaded_blas(effective_n_threads()):
        return estimator._label_rows(X, sample_weight, centers.astype(X.dtype, copy=False))


def merge_states(states: list):
    """States merged left to right (shard order, so the result is reproducible); None when
    there are none."""
    if not states:
        return None
    return functools.reduce(lambda merged, state: merged.merge(state), states)


def shard_bounds(n_rows: int, n_workers: int) -> list[tuple[int, int]]:
    """Contiguous row ranges of near-equal size, one per worker (never an empty one)."""
    n_shards = max(1, min(n_workers, n_rows))
    edges = np.linspace(0, n_rows, n_shards + 1).round().astype(int)
    return [(int(lo), int(hi)) for lo, hi in itertools.pairwise(edges)]


def worker_random_states(random_state, n_workers: int) -> list[np.random.RandomState]:
    """One random state per shard.

    Shard 0 gets what a local fit would draw from (``check_random_state(random_state)``), so a
    one-worker fit reproduces a local one; shards 1.. get independent streams spawned from the
    seed (an int seed keeps the whole fit reproducible for a given number of workers).
    """
    first = check_random_state(random_state)
    if n_workers == 1:
        return [first]
    if isinstance(random_state, Integral):
        entropy = int(random_state)
    else:
        # None or a RandomState: shard 0 takes a copy of its current stream, the seed of the
        # others is drawn from it afterwards.
        first = copy.deepcopy(first)
        entropy = int(check_random_state(random_state).randint(2**31 - 1))
    return [first] + [
        np.random.RandomState(np.random.SeedSequence(entropy, spawn_key=(i,)).generate_state(4))
        for i in range(1, n_workers)
    ]


def _with_files(source: Source, files: list[str]) -> Source:
    shard = copy.copy(source)
    shard.files = files
    return shard


def _say(estimator, message: str) -> None:
    if estimator.verbose:
        print(f"[{type(estimator).__name__} on Ray] {message}", file=sys.stderr, flush=True)
