"""Data sources: files, directories, globs, manifests and URLs streamed into fit."""

from __future__ import annotations

import os
import sys
import threading

import numpy as np
import pytest

from skmk import ApproxKNN, StreamingKMeans
from skmk._streaming import Batch
from skmk.io import is_source, open_source, record_set, write_recordio


@pytest.fixture
def labelled(blobs):
    X, y, _ = blobs
    return X.astype(np.float64), y


def _rows(source):
    batches = list(source.batches())
    return np.vstack([b.X for b in batches]), (None if batches[0].y is None else
                                               np.concatenate([b.y for b in batches]))


def test_csv_with_label_column(tmp_path, labelled):
    X, y = labelled
    np.savetxt(tmp_path / "train.csv", np.column_stack([y, X]), delimiter=",")
    source = open_source(tmp_path / "train.csv", batch_size=128, label_size=1)
    got_X, got_y = _rows(source)
    np.testing.assert_allclose(got_X, X)
    np.testing.assert_array_equal(got_y, y)
    assert [b.n_rows for b in source.batches()][:2] == [128, 128]


def test_npy_parquet_and_recordio_read_the_same_rows(tmp_path, labelled):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    X, y = labelled
    np.save(tmp_path / "x.npy", X)
    columns = {f"f{i}": X[:, i] for i in range(X.shape[1])} | {"label": y}
    pq.write_table(pa.table(columns), tmp_path / "x.parquet")
    with open(tmp_path / "x.rec", "wb") as stream:
        write_recordio(stream, X, y)
    for name, kwargs in (("x.npy", {}), ("x.parquet", {"label_column": "label"}),
                         ("x.rec", {})):
        got_X, got_y = _rows(open_source(tmp_path / name, batch_size=100, **kwargs))
        np.testing.assert_allclose(got_X, X, err_msg=name)
        if name != "x.npy":
            np.testing.assert_array_equal(got_y, y)


def test_directories_globs_manifests_and_urls(tmp_path, labelled):
    X, y = labelled
    manifest = record_set(X, y, tmp_path / "shards", shards=4)
    expected = X
    for location in (tmp_path / "shards", str(tmp_path / "shards" / "*.rec"), manifest,
                     f"file://{tmp_path / 'shards'}"):
        got_X, _ = _rows(open_source(location, batch_size=50))
        np.testing.assert_allclose(got_X, expected, err_msg=str(location))


def test_memory_url(labelled):
    fsspec = pytest.importorskip("fsspec")
    X, y = labelled
    with fsspec.open("memory://skmk-test/data.rec", "wb") as stream:
        write_recordio(stream, X, y)
    got_X, got_y = _rows(open_source("memory://skmk-test/data.rec"))
    np.testing.assert_allclose(got_X, X)
    np.testing.assert_array_equal(got_y, y)


def test_streaming_kmeans_fits_a_source_like_the_array(tmp_path, labelled):
    X, y = labelled
    record_set(X, y, tmp_path, shards=3)
    from_files = StreamingKMeans(k=5, mini_batch_size=100, random_state=0).fit(tmp_path)
    in_memory = StreamingKMeans(k=5, mini_batch_size=100, random_state=0).fit(X)
    np.testing.assert_allclose(from_files.cluster_centers_, in_memory.cluster_centers_,
                               rtol=1e-10)
    assert from_files.n_features_in_ == 8 and not hasattr(from_files, "labels_")
    twice = StreamingKMeans(k=5, epochs=2, mini_batch_size=100, random_state=0).fit(tmp_path)
    assert twice.streaming_state_.n_seen == 2 * X.shape[0]


def test_approx_knn_samples_a_labelled_source(tmp_path, labelled):
    X, y = labelled
    np.savetxt(tmp_path / "train.csv", np.column_stack([y, X]), delimiter=",")
    knn = ApproxKNN(k=5, sample_size=200, random_state=0).fit(tmp_path / "train.csv")
    assert knn.n_samples_fit_ == 200 and knn.n_samples_seen_ == X.shape[0]
    assert knn.score(X, y) > 0.95
    with pytest.raises(ValueError, match="y cannot be given"):
        ApproxKNN().fit(tmp_path / "train.csv", y)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("1,2,3\n4,5\n", "line 2 has 2 columns, earlier lines have 3"),
        ("1,2,3\n4,x,6\n", "line 2: 'x' is not a number"),
    ],
)
def test_bad_csv_names_the_line(tmp_path, content, match):
    (tmp_path / "bad.csv").write_text(content)
    with pytest.raises(ValueError, match=match):
        list(open_source(tmp_path / "bad.csv").batches())


def test_missing_and_empty_sources(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        open_source(tmp_path / "nowhere.rec")
    (tmp_path / "empty.rec").write_bytes(b"")
    with pytest.raises(ValueError, match="holds no rows"):
        StreamingKMeans().fit(tmp_path / "empty.rec")
    with pytest.raises(ValueError, match="format"):
        (tmp_path / "data.bin").write_bytes(b"x")
        open_source(tmp_path / "data.bin")


def test_a_failing_source_leaves_the_model_intact(tmp_path, labelled):
    X, _ = labelled
    km = StreamingKMeans(k=5, random_state=0).fit(X)
    centers = km.cluster_centers_
    (tmp_path / "bad.csv").write_text("1,2\n3,nan\n")
    with pytest.raises(ValueError):
        km.fit(tmp_path / "bad.csv")
    assert km.cluster_centers_ is centers


def test_is_source():
    assert is_source("data.rec") and not is_source(np.zeros((2, 2)))


def test_predict_and_transform_stream_over_a_source(tmp_path, labelled):
    X, y = labelled
    np.save(tmp_path / "queries.npy", X)
    km = StreamingKMeans(k=5, mini_batch_size=128, random_state=0).fit(X)
    parts = list(km.predict(tmp_path / "queries.npy"))
    assert [p.shape[0] for p in parts][:2] == [128, 128]
    np.testing.assert_array_equal(np.concatenate(parts), km.predict(X))
    np.testing.assert_allclose(np.vstack(list(km.transform(tmp_path / "queries.npy"))),
                               km.transform(X))
    knn = ApproxKNN(k=3).fit(X, y)
    np.testing.assert_array_equal(np.concatenate(list(knn.predict(tmp_path / "queries.npy"))),
                                  knn.predict(X))


def test_verbose_fit_prints_progress(tmp_path, labelled, capsys):
    X, y = labelled
    StreamingKMeans(k=5, verbose=1, random_state=0).fit(X)
    err = capsys.readouterr().err
    assert "[StreamingKMeans] done: 600 rows" in err and "batch msd" in err
    record_set(X, y, tmp_path)
    ApproxKNN(verbose=1).fit(tmp_path)
    assert "done: 600 rows" in capsys.readouterr().err
    StreamingKMeans(k=5, random_state=0).fit(X)
    assert capsys.readouterr().err == ""


def test_a_source_object_is_read_in_the_estimators_mini_batches(tmp_path, labelled):
    X, y = labelled
    record_set(X, y, tmp_path, shards=2)
    source = open_source(tmp_path, batch_size=7)
    from_source = StreamingKMeans(k=5, mini_batch_size=100, random_state=0).fit(source)
    from_path = StreamingKMeans(k=5, mini_batch_size=100, random_state=0).fit(tmp_path)
    np.testing.assert_array_equal(from_source.cluster_centers_, from_path.cluster_centers_)
    assert source.batch_size == 7 and source.with_batch_size(100).files == source.files


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_row_in_a_file_source_fails_the_fit(tmp_path, bad):
    """Batches of a file are checked for NaN/inf in the stream, the late ones too: the fit
    fails with scikit-learn's message and keeps the model it had."""
    X = np.random.default_rng(0).standard_normal((900, 6))
    km = StreamingKMeans(k=3, mini_batch_size=100, random_state=0).fit(X)
    centers = km.cluster_centers_
    X[777, 2] = bad
    np.save(tmp_path / "bad.npy", X)
    with pytest.raises(ValueError, match="NaN" if np.isnan(bad) else "infinity"):
        km.fit(tmp_path / "bad.npy")
    assert km.cluster_centers_ is centers


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice is Linux's")
def test_the_read_ahead_thread_yields_the_cores_to_the_compute():
    from skmk.io import _sources

    def produce():
        # Runs in the read-ahead thread.
        yield Batch(np.full((1, 1), os.getpriority(os.PRIO_PROCESS, threading.get_native_id())))

    before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    (batch,) = _sources._read_ahead(produce, depth=2)
    assert batch.X[0, 0] == _sources.READ_AHEAD_NICE
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == before  # caller's own
