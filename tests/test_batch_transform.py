"""Batch transform: SageMaker's split types, strategies and assembly, in-process and on Ray."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import make_blobs

from skmk import ApproxKNN, StreamingKMeans
from skmk.io import to_bytes
from skmk.remote import _codec as codec
from skmk.remote._batch_transform import plan, transform_files


@pytest.fixture(scope="module")
def model_and_data():
    X, y = make_blobs(n_samples=300, n_features=5, centers=3, random_state=0)
    return StreamingKMeans(k=3, random_state=0).fit(X), X, y


def _csv(X) -> str:
    return "".join(",".join(map(repr, row)) + "\n" for row in X.tolist())


def _labels_of_jsonlines(path) -> np.ndarray:
    return np.array([json.loads(line)["closest_cluster"]
                     for line in path.read_text().splitlines()])


def test_csv_lines_multirecord_to_jsonlines(tmp_path, model_and_data):
    model, X, _ = model_and_data
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "part-0.csv").write_text(_csv(X[:120]) + "\n")  # a blank last line
    (tmp_path / "in" / "part-1.csv").write_text(_csv(X[120:]))
    results = model.transformer(tmp_path / "out", backend="local").transform(tmp_path / "in")
    assert [r.output for r in results] == [f"{tmp_path}/out/part-0.csv.out",
                                           f"{tmp_path}/out/part-1.csv.out"]
    assert [(r.records, r.requests) for r in results] == [(120, 1), (180, 1)]
    got = np.concatenate([_labels_of_jsonlines(tmp_path / "out" / f"part-{i}.csv.out")
                          for i in (0, 1)])
    np.testing.assert_array_equal(got, model.predict(X))


def test_single_record_gives_one_response_per_record(tmp_path, model_and_data):
    model, X, _ = model_and_data
    (tmp_path / "a.csv").write_text(_csv(X[:10]))
    [result] = transform_files(model, tmp_path / "a.csv", tmp_path / "out",
                               strategy="SingleRecord", accept="application/json",
                               backend="local")
    assert (result.records, result.requests) == (10, 10)
    lines = (tmp_path / "out" / "a.csv.out").read_text().splitlines()
    assert [json.loads(line)["predictions"][0]["closest_cluster"] for line in lines] == \
        model.predict(X[:10]).tolist()


def test_multirecord_respects_max_payload(tmp_path, model_and_data):
    model, X, _ = model_and_data
    text = "".join(",".join(f"{v:+.6e}" for v in row) + "\n" for row in X)  # fixed width
    (tmp_path / "a.csv").write_text(text)
    line_bytes = len(text.splitlines()[0]) + 1
    [result] = transform_files(model, tmp_path / "a.csv", tmp_path / "out",
                               max_payload_mb=20 * line_bytes / 2**20, accept="application/json",
                               backend="local")
    documents = (tmp_path / "out" / "a.csv.out").read_text().splitlines()
    assert result.requests == len(documents) >= len(X) // 20
    assert all(len(json.loads(doc)["predictions"]) <= 20 for doc in documents)
    got = [p["closest_cluster"] for doc in documents for p in json.loads(doc)["predictions"]]
    assert got == model.predict(X).tolist()


def test_recordio_split_and_assemble_none(tmp_path, model_and_data):
    model, X, _ = model_and_data
    (tmp_path / "a.rec").write_bytes(to_bytes(X))
    [result] = transform_files(model, tmp_path / "a.rec", tmp_path / "out",
                               split_type="RecordIO", accept=codec.RECORDIO,
                               assemble_with="None", max_payload_mb=0.01, backend="local")
    assert result.requests > 1
    columns = codec.decode_predictions((tmp_path / "out" / "a.rec.out").read_bytes(),
                                       codec.RECORDIO)
    np.testing.assert_array_equal(columns["closest_cluster"], model.predict(X))
    np.testing.assert_allclose(columns["distance_to_cluster"], model.transform(X).min(axis=1),
                               rtol=1e-5)


def test_split_none_takes_the_whole_file_as_one_request(tmp_path, model_and_data):
    model, X, _ = model_and_data
    document = {"instances": [{"features": row} for row in X[:15].tolist()]}
    (tmp_path / "a.json").write_text(json.dumps(document, indent=2))
    [result] = transform_files(model, tmp_path / "a.json", tmp_path / "out", split_type="None",
                               accept="text/csv", backend="local")
    assert (result.records, result.requests) == (15, 1)
    rows = [line.split(",") for line in (tmp_path / "out" / "a.json.out").read_text()
            .splitlines()]
    assert [float(row[0]) for row in rows] == model.predict(X[:15]).tolist()


def test_parquet_and_jsonlines_inputs(tmp_path, model_and_data):
    pd = pytest.importorskip("pandas")
    model, X, _ = model_and_data
    pd.DataFrame(X, columns=[f"f{i}" for i in range(5)]).to_parquet(tmp_path / "a.parquet")
    (tmp_path / "b.jsonl").write_text("".join(json.dumps({"features": row}) + "\n"
                                              for row in X.tolist()))
    results = transform_files(model, tmp_path, tmp_path / "out", backend="local")
    assert [r.records for r in results] == [len(X), len(X)]
    for name in ("a.parquet", "b.jsonl"):
        np.testing.assert_array_equal(_labels_of_jsonlines(tmp_path / "out" / f"{name}.out"),
                                      model.predict(X))


def test_knn_verbose_output(tmp_path):
    X, y = make_blobs(n_samples=200, n_features=4, centers=3, random_state=1)
    knn = ApproxKNN(k=4).fit(X, y)
    (tmp_path / "a.csv").write_text(_csv(X[:9]))
    transform_files(knn, tmp_path / "a.csv", tmp_path / "out",
                    accept="application/jsonlines; verbose=true", backend="local")
    rows = [json.loads(line) for line in (tmp_path / "out" / "a.csv.out").read_text()
            .splitlines()]
    assert [row["predicted_label"] for row in rows] == knn.predict(X[:9]).astype(float).tolist()
    assert all(len(row["labels"]) == len(row["distances"]) == 4 for row in rows)


def test_fsspec_urls_keep_the_layout_below_the_prefix(model_and_data):
    fsspec = pytest.importorskip("fsspec")
    model, X, _ = model_and_data
    fs = fsspec.filesystem("memory")
    fs.pipe("/bt-in/day=1/a.csv", _csv(X[:50]).encode())
    fs.pipe("/bt-in/day=2/b.csv", _csv(X[50:]).encode())
    try:
        results = transform_files(model, "memory://bt-in", "memory://bt-out", backend="local")
        assert [r.output for r in results] == ["memory://bt-out/day=1/a.csv.out",
                                               "memory://bt-out/day=2/b.csv.out"]
        got = np.concatenate([[json.loads(line)["closest_cluster"] for line in
                               fs.cat(r.output).decode().splitlines()] for r in results])
        np.testing.assert_array_equal(got, model.predict(X))
        assert not [path for path in fs.find("/bt-out") if path.endswith(".partial")]
    finally:
        fs.rm("/bt-in", recursive=True)
        if fs.exists("/bt-out"):
            fs.rm("/bt-out", recursive=True)


def test_a_bad_record_fails_the_file_and_leaves_no_output(tmp_path, model_and_data):
    model, X, _ = model_and_data
    (tmp_path / "a.csv").write_text(_csv(X[:5]) + "1,2,oops,4,5\n")
    with pytest.raises(ValueError, match=r"a\.csv: request 0: malformed CSV: 'oops'"):
        transform_files(model, tmp_path / "a.csv", tmp_path / "out", backend="local")
    (tmp_path / "b.csv").write_text("1,2,3\n")
    with pytest.raises(ValueError, match="rows have 3 features; the model expects 5"):
        transform_files(model, tmp_path / "b.csv", tmp_path / "out", backend="local")
    assert list((tmp_path / "out").iterdir()) == []


@pytest.mark.parametrize("option, value", [
    ("strategy", "AllRecords"), ("split_type", "TFRecord"), ("assemble_with", "Comma"),
    ("max_payload_mb", 0), ("accept", "image/png"), ("content_type", "image/png"),
    ("backend", "spark"),
])
def test_bad_options_are_refused_before_any_work(tmp_path, model_and_data, option, value):
    model, X, _ = model_and_data
    (tmp_path / "a.csv").write_text(_csv(X[:2]))
    with pytest.raises(ValueError, match=option if option != "accept" else "cannot answer"):
        transform_files(model, tmp_path / "a.csv", tmp_path / "out", **{option: value})
    assert not (tmp_path / "out").exists()


def test_plan_names_outputs_like_sagemaker(tmp_path):
    (tmp_path / "in" / "sub").mkdir(parents=True)
    for name in ("x.csv", "sub/y.csv"):
        (tmp_path / "in" / name).write_text("1\n")
    assert plan(tmp_path / "in", "s3://bucket/out/") == [
        (f"{tmp_path}/in/sub/y.csv", "s3://bucket/out/sub/y.csv.out"),
        (f"{tmp_path}/in/x.csv", "s3://bucket/out/x.csv.out")]
    assert plan(tmp_path / "in" / "x.csv", tmp_path) == [
        (f"{tmp_path}/in/x.csv", f"{tmp_path}/x.csv.out")]
    assert plan(f"{tmp_path}/in/*.csv", "out") == [(f"{tmp_path}/in/x.csv", "out/x.csv.out")]


@pytest.mark.ray
def test_ray_data_gives_what_the_local_run_gives(tmp_path, ray_head, model_and_data):
    import ray

    ray.init(address=ray_head.address, ignore_reinit_error=True, log_to_driver=False)
    model, X, _ = model_and_data
    (tmp_path / "in").mkdir()
    for i, chunk in enumerate(np.array_split(X, 3)):
        (tmp_path / "in" / f"part-{i}.csv").write_text(_csv(chunk))
    transformer = model.transformer(tmp_path / "ray", accept=codec.RECORDIO,
                                    assemble_with="None", max_concurrent_transforms=2,
                                    num_cpus=0.25)
    results = transformer.transform(tmp_path / "in", content_type="text/csv")
    local = model.transformer(tmp_path / "local", accept=codec.RECORDIO, assemble_with="None",
                              backend="local").transform(tmp_path / "in")
    assert [(r.records, r.requests) for r in results] == \
        [(r.records, r.requests) for r in local] == [(100, 1)] * 3
    outputs = [Path(r.output).read_bytes() for r in results]
    assert outputs == [Path(r.output).read_bytes() for r in local]
    got = np.concatenate([codec.decode_predictions(body, codec.RECORDIO)["closest_cluster"]
                          for body in outputs])
    np.testing.assert_array_equal(got, model.predict(X))
