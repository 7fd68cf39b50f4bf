"""Fitting from object storage: skmk's own code paths against a real S3 server on 127.0.0.1.

The server (``rclone serve s3``, see ``tests/servers.py``) checks AWS Signature V4 on every
request, so these tests also show that credentials and the endpoint reach s3fs the way a user
passes them: ``storage_options``. Each test writes under a prefix of its own.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sp

from skmk import ApproxKNN, StreamingKMeans
from skmk.io import open_source, record_set

pytestmark = pytest.mark.s3

#: How each format is written, and the reader settings that give features and labels.
FORMATS = {
    "recordio": {"label_size": 0, "label_column": None},
    "recordio-sparse": {"label_size": 0, "label_column": None},
    "csv": {"label_size": 1, "label_column": None},
    "parquet": {"label_size": 0, "label_column": "label"},
    "npy": {"label_size": 0, "label_column": None},
}


@pytest.fixture
def data():
    rng = np.random.default_rng(7)
    centers = rng.normal(scale=6, size=(4, 6))
    y = rng.integers(0, 4, 900)
    X = centers[y] + rng.normal(size=(900, 6))
    X[rng.random(X.shape) < 0.3] = 0  # zeros, so that the sparse records are sparse
    return X, y


def _write_shards(directory, fmt, X, y, shards=3):
    """``shards`` files of ``fmt`` in ``directory``; their names, in order."""
    directory.mkdir(parents=True, exist_ok=True)
    if fmt.startswith("recordio"):
        record_set(sp.csr_matrix(X) if fmt.endswith("sparse") else X, y, directory,
                   shards=shards)
        return sorted(p.name for p in directory.glob("*.rec"))
    names = []
    for i, rows in enumerate(np.array_split(np.arange(len(X)), shards)):
        name = f"part-{i}.{fmt}"
        if fmt == "csv":
            np.savetxt(directory / name, np.column_stack([y[rows], X[rows]]), delimiter=",")
        elif fmt == "npy":
            np.save(directory / name, X[rows])
        else:
            pa = pytest.importorskip("pyarrow")
            import pyarrow.parquet as pq

            columns = {f"f{j}": X[rows, j] for j in range(X.shape[1])} | {"label": y[rows]}
            pq.write_table(pa.table(columns), directory / name)
        names.append(name)
    return names


def _upload(s3_server, directory, names, prefix):
    for name in names:
        s3_server.filesystem.put_file(str(directory / name), f"{s3_server.bucket}/{prefix}/{name}")
    return s3_server.url(f"{prefix}/")


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_fits_from_s3_shards_equal_fits_from_local_files(s3_server, tmp_path, data, fmt):
    X, y = data
    names = _write_shards(tmp_path / fmt, fmt, X, y)
    url = _upload(s3_server, tmp_path / fmt, names, f"fits/{fmt}")
    local = open_source(tmp_path / fmt, **FORMATS[fmt])
    remote = open_source(url, storage_options=s3_server.storage_options, **FORMATS[fmt])
    assert remote.files == [f"{url}{name}" for name in names]

    def kmeans(source):
        return StreamingKMeans(k=4, mini_batch_size=128, random_state=0).fit(source)

    np.testing.assert_array_equal(kmeans(remote).cluster_centers_, kmeans(local).cluster_centers_)
    if fmt == "npy":
        return  # features only: nothing for a classifier
    ours, theirs = (ApproxKNN(k=3, sample_size=500, mini_batch_size=128, random_state=0)
                    .fit(source) for source in (remote, local))
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
    np.testing.assert_array_equal(ours.kneighbors(X[:50])[0], theirs.kneighbors(X[:50])[0])
    assert ours.n_samples_seen_ == len(X)


def test_a_manifest_of_s3_uris(s3_server, tmp_path, data):
    X, y = data
    names = _write_shards(tmp_path / "rec", "recordio", X, y)
    url = _upload(s3_server, tmp_path / "rec", names, "manifest")
    manifest = json.dumps([{"prefix": url}, *names])
    (tmp_path / "train.manifest").write_text(manifest)
    s3_server.filesystem.pipe(f"{s3_server.bucket}/manifest/train.manifest", manifest.encode())
    expected = StreamingKMeans(k=4, random_state=0).fit(tmp_path / "rec").cluster_centers_
    for location in (tmp_path / "train.manifest", f"{url}train.manifest"):
        source = open_source(location, storage_options=s3_server.storage_options)
        assert source.files == [url + name for name in names]
        got = StreamingKMeans(k=4, random_state=0).fit(source).cluster_centers_
        np.testing.assert_array_equal(got, expected)


def test_a_glob_picks_its_files_from_a_prefix(s3_server, tmp_path, data):
    X, y = data
    names = _write_shards(tmp_path / "rec", "recordio", X, y)
    url = _upload(s3_server, tmp_path / "rec", names, "glob")
    s3_server.filesystem.pipe(f"{s3_server.bucket}/glob/README.txt", b"not data")
    source = open_source(f"{url}*.rec", storage_options=s3_server.storage_options)
    assert source.files == [url + name for name in names]
    np.testing.assert_array_equal(np.vstack([b.X for b in source.batches()]), X)


def test_predict_and_transform_stream_over_an_s3_source(s3_server, tmp_path, data):
    X, y = data
    names = _write_shards(tmp_path / "q", "npy", X, y, shards=2)
    url = _upload(s3_server, tmp_path / "q", names, "queries")
    queries = open_source(url, storage_options=s3_server.storage_options)
    km = StreamingKMeans(k=4, mini_batch_size=200, random_state=0).fit(X)
    parts = list(km.predict(queries))
    assert [len(p) for p in parts] == [200, 200, 50, 200, 200, 50]  # two shards of 450 rows
    np.testing.assert_array_equal(np.concatenate(parts), km.predict(X))
    np.testing.assert_allclose(np.vstack(list(km.transform(queries))), km.transform(X))
    knn = ApproxKNN(k=3, random_state=0).fit(X, y)
    np.testing.assert_array_equal(np.concatenate(list(knn.predict(queries))), knn.predict(X))


def test_fsspec_configuration_lets_fit_take_a_plain_url(s3_server, tmp_path, data, monkeypatch):
    # fsspec's own per-protocol defaults (also settable as FSSPEC_S3_* variables or a config
    # file) reach every S3 filesystem it makes: fit("s3://...") then needs no Source object.
    fsspec = pytest.importorskip("fsspec")
    X, y = data
    names = _write_shards(tmp_path / "rec", "recordio", X, y, shards=1)
    url = _upload(s3_server, tmp_path / "rec", names, "config")
    monkeypatch.setitem(fsspec.config.conf, "s3", s3_server.storage_options)
    got = StreamingKMeans(k=4, random_state=0).fit(url).cluster_centers_
    expected = StreamingKMeans(k=4, random_state=0).fit(tmp_path / "rec").cluster_centers_
    np.testing.assert_array_equal(got, expected)


def test_missing_bucket_key_and_empty_prefix_are_named(s3_server, tmp_path, data):
    options = s3_server.storage_options
    with pytest.raises(FileNotFoundError, match="no bucket 'skmk-no-such-bucket'.*"
                                                r"s3://skmk-no-such-bucket/train/"):
        open_source("s3://skmk-no-such-bucket/train/", storage_options=options)
    with pytest.raises(FileNotFoundError, match="no bucket 'skmk-no-such-bucket'"):
        StreamingKMeans().fit(open_source("s3://skmk-no-such-bucket", storage_options=options))
    missing = s3_server.url("errors/missing.rec")
    with pytest.raises(FileNotFoundError, match=f"no such object: {missing}"):
        open_source(missing, storage_options=options)
    empty = s3_server.url("errors/empty/")
    with pytest.raises(FileNotFoundError, match=f"no objects under the prefix {empty}"):
        StreamingKMeans().fit(open_source(empty, storage_options=options))
    # A manifest naming an object that is not there fails when the object is read.
    X, y = data
    names = _write_shards(tmp_path / "rec", "recordio", X, y, shards=1)
    url = _upload(s3_server, tmp_path / "rec", names, "errors")
    (tmp_path / "bad.manifest").write_text(json.dumps([{"prefix": url}, names[0], "gone.rec"]))
    source = open_source(tmp_path / "bad.manifest", storage_options=options)
    with pytest.raises(FileNotFoundError, match=f"no such object: {url}gone.rec"):
        StreamingKMeans(k=4).fit(source)


def test_wrong_credentials_are_refused_naming_the_url(s3_server):
    options = {**s3_server.storage_options, "secret": "not-the-secret"}
    url = s3_server.url("anything/")
    with pytest.raises(PermissionError, match=f"access to {url} denied"):
        open_source(url, storage_options=options)


def test_the_server_is_on_loopback(s3_server):
    assert s3_server.endpoint_url.startswith("http://127.0.0.1:")
