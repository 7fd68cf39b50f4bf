"""RecordIO-protobuf decoding: skmk's reader against the protobuf package's Python API.

Fashion-MNIST train (60,000 × 784 float32 + labels) written as RecordIO-protobuf in memory;
rows/s and MB/s of decoding it into numpy batches. The peer frames records with ``struct`` and
parses each payload with a message class the protobuf package builds from SageMaker's schema
(upb, its compiled backend), then copies the values into numpy — what a user would write.
"""

from __future__ import annotations

import io
import struct

import numpy as np

from skmk.io import read_recordio, to_bytes

from ..datasets import load_fashion_mnist
from ..harness import Case, suite


def record_message_class():
    """``aialgs.data.Record`` as a protobuf message class, built from descriptors at run time."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    proto = descriptor_pb2.FileDescriptorProto(name="skmk_bench_record.proto",
                                               package="aialgs.data", syntax="proto2")
    for name, kind in (("Float32Tensor", "TYPE_FLOAT"), ("Float64Tensor", "TYPE_DOUBLE"),
                       ("Int32Tensor", "TYPE_INT32")):
        message = proto.message_type.add(name=name)
        for number, field, field_kind in ((1, "values", kind), (2, "keys", "TYPE_UINT64"),
                                          (3, "shape", "TYPE_UINT64")):
            entry = message.field.add(name=field, number=number, label=3,
                                      type=getattr(descriptor_pb2.FieldDescriptorProto,
                                                   field_kind))
            entry.options.packed = True
    value = proto.message_type.add(name="Value")
    value.oneof_decl.add(name="value")
    for number, field, type_name in ((2, "float32_tensor", "Float32Tensor"),
                                     (3, "float64_tensor", "Float64Tensor"),
                                     (7, "int32_tensor", "Int32Tensor")):
        value.field.add(name=field, number=number, label=1, type=11,
                        type_name=f".aialgs.data.{type_name}", oneof_index=0)
    record = proto.message_type.add(name="Record")
    for number, field, entry_name in ((1, "features", "FeaturesEntry"),
                                      (2, "label", "LabelEntry")):
        nested = record.nested_type.add(name=entry_name)
        nested.options.map_entry = True
        nested.field.add(name="key", number=1, label=1, type=9)
        nested.field.add(name="value", number=2, label=1, type=11,
                         type_name=".aialgs.data.Value")
        record.field.add(name=field, number=number, label=3, type=11,
                         type_name=f".aialgs.data.Record.{entry_name}")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("aialgs.data.Record"))


def _protobuf_decode(data: bytes, Record, batch_size: int):
    batches, rows, labels, pos = [], [], [], 0
    message = Record()
    while pos < len(data):
        _, word = struct.unpack_from("<II", data, pos)
        length = word & ((1 << 29) - 1)
        message.ParseFromString(data[pos + 8:pos + 8 + length])
        rows.append(np.array(message.features["values"].float32_tensor.values,
                             dtype=np.float32))
        labels.append(message.label["values"].int32_tensor.values[0])
        pos += 8 + length + (-length % 4)
        if len(rows) == batch_size:
            batches.append((np.vstack(rows), np.array(labels)))
            rows, labels = [], []
    if rows:
        batches.append((np.vstack(rows), np.array(labels)))
    return batches


def _cases(ctx):
    X, y = load_fashion_mnist(ctx.data_dir)[:2]
    if ctx.quick:
        X, y = X[:3000], y[:3000]
    data = to_bytes(X, y.astype(np.int32))
    megabytes = len(data) / 2**20
    Record = record_message_class()
    params = {"rows": X.shape[0], "MB": megabytes}

    yield Case("decode", "skmk read_recordio",
               lambda _: list(read_recordio(io.BytesIO(data), batch_size=5000)),
               quality=lambda batches: {"rows": sum(b.n_rows for b in batches)}, params=params)
    yield Case("decode", "protobuf Python API (upb) + numpy",
               lambda _: _protobuf_decode(data, Record, 5000),
               quality=lambda batches: {"rows": sum(b[0].shape[0] for b in batches)},
               params=params)


def _summarize(results):
    by = {r.name: r for r in results}
    ours, theirs = by["skmk read_recordio"], by["protobuf Python API (upb) + numpy"]
    megabytes, rows = ours.params["MB"], ours.params["rows"]
    ratio = theirs.median_s / ours.median_s
    return [
        "| reader | MB/s | rows/s |", "|---|---|---|",
        f"| skmk | {megabytes / ours.median_s:,.0f} | {rows / ours.median_s:,.0f} |",
        f"| protobuf Python API | {megabytes / theirs.median_s:,.0f} | "
        f"{rows / theirs.median_s:,.0f} |",
        "", f"skmk decodes {ratio:.1f}× as fast (goal, issue 5: ≥ 5×): "
        f"{'met' if ratio >= 5 else 'NOT met'}.",
    ]


suite("io", "RecordIO-protobuf decoding vs the protobuf package",
      summarize=_summarize)(_cases)
