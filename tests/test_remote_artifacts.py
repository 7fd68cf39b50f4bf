"""Model artifacts: model file + checksummed manifest, local directories and fsspec URLs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.datasets import load_iris, make_blobs

from skmk import ApproxKNN, StreamingKMeans
from skmk.remote import (
    ArtifactError,
    RayBackend,
    _artifacts,
    load_model,
    read_manifest,
    save_model,
)


@pytest.fixture(scope="module")
def kmeans():
    X, _ = make_blobs(n_samples=400, n_features=3, centers=4, random_state=0)
    return StreamingKMeans(k=4, random_state=0, center_factor=3, verbose=0).fit(X), X


def test_round_trip_restores_hyperparameters_and_predictions(kmeans, tmp_path):
    model, X = kmeans
    url = save_model(model, str(tmp_path / "m"), metrics={"fit_seconds": 1.5})
    manifest = read_manifest(url)
    assert manifest["estimator"] == "skmk.cluster._streaming_kmeans:StreamingKMeans"
    assert manifest["hyperparameters"] == model.to_hyperparameters()
    assert {"skmk", "numpy", "scikit-learn", "faiss-cpu"} <= set(manifest["versions"])
    assert manifest["metrics"]["fit_seconds"] == 1.5
    assert manifest["metrics"]["inertia"] == pytest.approx(model.inertia_)
    payload = (tmp_path / "m" / "model.pkl").read_bytes()
    import hashlib

    assert manifest["files"]["model.pkl"]["sha256"] == hashlib.sha256(payload).hexdigest()
    backend = RayBackend(num_workers=3)
    loaded = load_model(url, estimator_class=StreamingKMeans, backend=backend)
    assert loaded.get_params() == {**model.get_params(), "backend": backend}
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    np.testing.assert_array_equal(loaded.refinalize(3).cluster_centers_,
                                  model.refinalize(3).cluster_centers_)


def test_knn_with_its_faiss_index_round_trips_through_an_fsspec_url():
    pytest.importorskip("fsspec")
    X, y = load_iris(return_X_y=True)
    knn = ApproxKNN(k=5, index_type="faiss.IVFFlat", faiss_index_ivf_nlists=4,
                    random_state=0).fit(X, y)
    url = save_model(knn, "memory://skmk-tests/knn-1")
    loaded = load_model(url)
    assert type(loaded) is ApproxKNN and loaded.index_type == "faiss.IVFFlat"
    np.testing.assert_array_equal(loaded.predict(X), knn.predict(X))
    np.testing.assert_array_equal(loaded.classes_, knn.classes_)


def test_a_changed_model_file_fails_its_checksum_naming_the_file(kmeans, tmp_path):
    url = save_model(kmeans[0], str(tmp_path / "m"))
    path = tmp_path / "m" / "model.pkl"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match=r"checksum mismatch for model\.pkl"):
        load_model(url)


def test_a_directory_without_manifest_is_not_a_model(kmeans, tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="no finished model artifact"):
        load_model(str(tmp_path / "nothing"))
    # A save that dies after the model file leaves no manifest, even over an older artifact.
    url = save_model(kmeans[0], str(tmp_path / "m"))
    written = []

    def crash_on_manifest(location, data):
        if location.endswith(_artifacts.MANIFEST):
            raise OSError("disk full")
        written.append(location)
        return real_write(location, data)

    real_write = _artifacts.write_bytes
    monkeypatch.setattr(_artifacts, "write_bytes", crash_on_manifest)
    with pytest.raises(OSError, match="disk full"):
        save_model(kmeans[0], url)
    assert written and not (tmp_path / "m" / "manifest.json").exists()
    with pytest.raises(FileNotFoundError):
        load_model(url)


def test_manifest_of_another_kind_or_class_is_refused(kmeans, tmp_path):
    url = save_model(kmeans[0], str(tmp_path / "m"))
    with pytest.raises(ArtifactError, match="StreamingKMeans, not a ApproxKNN"):
        load_model(url, estimator_class=ApproxKNN)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "manifest.json").write_text(json.dumps({"format": "something"}))
    with pytest.raises(ArtifactError, match="not an skmk model manifest"):
        read_manifest(str(tmp_path / "other"))


def test_an_unfitted_estimator_cannot_be_saved(tmp_path):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        save_model(StreamingKMeans(), str(tmp_path / "m"))
