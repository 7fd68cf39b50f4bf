"""The ``aialgs.data.Record`` protobuf, encoded and decoded by hand.

SageMaker's schema (proto2)::

    message Float32Tensor { repeated float  values = 1 [packed]; repeated uint64 keys = 2 [packed];
                            repeated uint64 shape = 3 [packed]; }
    message Float64Tensor { repeated double values = 1 [packed]; ... keys = 2; shape = 3; }
    message Int32Tensor   { repeated int32  values = 1 [packed]; ... keys = 2; shape = 3; }
    message Bytes  { repeated bytes value = 1; optional string content_type = 2; }
    message Value  { oneof value { Float32Tensor float32_tensor = 2; Float64Tensor float64_tensor
                     = 3; Int32Tensor int32_tensor = 7; Bytes bytes = 9; } }
    message Record { map<string, Value> features = 1; map<string, Value> label = 2;
                     optional string uid = 3; optional string metadata = 4;
                     optional string configuration = 5; }

A tensor with empty ``keys`` is dense; otherwise ``keys`` are the positions of ``values`` in a
vector of ``shape[0]`` entries. Features and labels live under the key ``"values"``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Value's oneof field number for each tensor type, and the numpy dtype of its values.
TENSOR_FIELDS = {2: np.dtype("<f4"), 3: np.dtype("<f8"), 7: np.dtype(np.int32)}
FIELD_OF_DTYPE = {np.dtype(np.float32): 2, np.dtype(np.float64): 3, np.dtype(np.int32): 7}
BYTES_FIELD = 9

_VARINT, _FIXED64, _LENGTH, _FIXED32 = 0, 1, 2, 5


class ProtobufError(ValueError):
    """A payload that is not a valid ``aialgs.data.Record``."""


@dataclass
class Tensor:
    """One decoded tensor: ``values`` (and ``keys``/``shape`` when sparse)."""

    values: np.ndarray
    keys: np.ndarray | None = None
    shape: tuple[int, ...] | None = None

    @property
    def is_sparse(self) -> bool:
        """Keys make a tensor sparse; so does a shape with no values (an all-zero sparse row,
        which SageMaker's writer emits with empty keys)."""
        if self.keys is not None and self.keys.size > 0:
            return True
        return self.values.size == 0 and bool(self.shape)


# -- encoding -------------------------------------------------------------------------------------

def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative int32s are sign-extended to ten bytes, as protobuf does
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _varints(values: np.ndarray) -> bytes:
    return b"".join(_varint(int(v)) for v in values)


def _field(number: int, wire_type: int) -> bytes:
    return _varint((number << 3) | wire_type)


def _length_delimited(number: int, payload: bytes) -> bytes:
    return _field(number, _LENGTH) + _varint(len(payload)) + payload


def encode_tensor(values: np.ndarray, keys: np.ndarray | None = None,
                  shape: tuple[int, ...] | None = None) -> tuple[int, bytes]:
    """(Value field number, serialized tensor) for float32, float64 or int32 values."""
    values = np.asarray(values)
    number = FIELD_OF_DTYPE[values.dtype]
    if values.dtype == np.int32:
        packed = _varints(values)
    else:
        packed = values.astype(values.dtype.newbyteorder("<"), copy=False).tobytes()
    parts = [_length_delimited(1, packed)] if values.size else []
    if keys is not None and len(keys):
        parts.append(_length_delimited(2, _varints(np.asarray(keys))))
    if shape:
        parts.append(_length_delimited(3, _varints(np.asarray(shape))))
    return number, b"".join(parts)


def encode_record(features: tuple[int, bytes] | dict[str, tuple[int, bytes]] | None,
                  label: tuple[int, bytes] | dict[str, tuple[int, bytes]] | None = None
                  ) -> bytes:
    """A Record from encoded tensors (``encode_tensor``'s pairs).

    Each of ``features`` and ``label`` is one tensor, stored under the key ``"values"``, or a
    dict of key → tensor (SageMaker's inference responses put ``closest_cluster``,
    ``predicted_label``, ... as label keys), or None for an empty map.
    """

    def entries(field: int, tensors) -> bytes:
        if tensors is None:
            return b""
        if isinstance(tensors, tuple):
            tensors = {"values": tensors}
        out = []
        for key, (number, payload) in tensors.items():
            entry = _length_delimited(1, key.encode("utf-8")) + \
                _length_delimited(2, _length_delimited(number, payload))
            out.append(_length_delimited(field, entry))
        return b"".join(out)

    return entries(1, features) + entries(2, label)


def encode_bytes(values: list[bytes]) -> tuple[int, bytes]:
    """(Value field number, serialized ``Bytes`` message) holding ``values``."""
    return BYTES_FIELD, b"".join(_length_delimited(1, value) for value in values)


# -- decoding -------------------------------------------------------------------------------------

def _read_varint(buffer: bytes, position: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if position >= end:
            raise ProtobufError("varint runs past the end of its message")
        byte = buffer[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, position
        shift += 7
        if shift >= 70:
            raise ProtobufError("varint longer than ten bytes")


def _fields(buffer: bytes, start: int, end: int):
    """Yield (field number, wire type, value start, value end or varint value)."""
    position = start
    while position < end:
        key, position = _read_varint(buffer, position, end)
        number, wire_type = key >> 3, key & 7
        if number == 0:
            raise ProtobufError("field number 0")
        if wire_type == _VARINT:
            value, position = _read_varint(buffer, position, end)
            yield number, wire_type, value, position
        elif wire_type == _LENGTH:
            length, position = _read_varint(buffer, position, end)
            if position + length > end:
                raise ProtobufError(f"field {number} of {length} bytes runs past its message")
            yield number, wire_type, position, position + length
            position += length
        elif wire_type in (_FIXED32, _FIXED64):
            size = 4 if wire_type == _FIXED32 else 8
            if position + size > end:
                raise ProtobufError(f"field {number} runs past its message")
            yield number, wire_type, position, position + size
            position += size
        else:
            raise ProtobufError(f"unsupported wire type {wire_type} (field {number})")


def _decode_varints(buffer: bytes, start: int, end: int) -> list[int]:
    out, position = [], start
    while position < end:
        value, position = _read_varint(buffer, position, end)
        out.append(value)
    return out


def decode_tensor(buffer: bytes, start: int, end: int, dtype: np.dtype) -> Tensor:
    values, keys, shape = [], [], []
    for number, wire_type, a, b in _fields(buffer, start, end):
        if number == 1:
            if dtype == np.int32:
                raw = [a] if wire_type == _VARINT else _decode_varints(buffer, a, b)
                # int32 varints carry the sign as 64-bit two's complement
                values.append(np.array(raw, dtype=np.uint64).view(np.int64).astype(np.int32))
            elif wire_type == _LENGTH:
                if (b - a) % dtype.itemsize:
                    raise ProtobufError(f"packed values of {b - a} bytes are not a whole number "
                                        f"of {dtype.itemsize}-byte numbers")
                values.append(np.frombuffer(buffer, dtype=dtype, count=(b - a) // dtype.itemsize,
                                            offset=a))
            else:
                values.append(np.frombuffer(buffer, dtype=dtype, count=1, offset=a))
        elif number in (2, 3):
            decoded = _decode_varints(buffer, a, b) if wire_type == _LENGTH else [a]
            (keys if number == 2 else shape).extend(decoded)
    value_array = np.concatenate(values) if values else np.empty(0, dtype=dtype)
    key_array = np.asarray(keys, dtype=np.int64) if keys else None
    if key_array is not None and key_array.size != value_array.size:
        raise ProtobufError(f"sparse tensor has {key_array.size} keys for "
                            f"{value_array.size} values")
    return Tensor(value_array.astype(dtype.newbyteorder("="), copy=False), key_array,
                  tuple(shape) or None)


def _decode_value(buffer: bytes, start: int, end: int) -> Tensor | bytes:
    for number, wire_type, a, b in _fields(buffer, start, end):
        if wire_type != _LENGTH:
            raise ProtobufError(f"Value field {number} is not a message")
        if number in TENSOR_FIELDS:
            return decode_tensor(buffer, a, b, TENSOR_FIELDS[number])
        if number == BYTES_FIELD:
            return b"".join(bytes(buffer[x:y]) for n, _, x, y in _fields(buffer, a, b) if n == 1)
    raise ProtobufError("Value holds no tensor")


def decode_record(buffer: bytes, start: int = 0, end: int | None = None):
    """(features, label) of a serialized Record: dicts of name → Tensor or bytes."""
    end = len(buffer) if end is None else end
    maps: dict[int, dict] = {1: {}, 2: {}}
    for number, wire_type, a, b in _fields(buffer, start, end):
        if number not in maps:
            continue  # uid, metadata, configuration
        if wire_type != _LENGTH:
            raise ProtobufError(f"Record field {number} is not a map entry")
        key, value = None, None
        for entry_number, entry_type, x, y in _fields(buffer, a, b):
            if entry_type != _LENGTH:
                raise ProtobufError("map entry field is not length-delimited")
            if entry_number == 1:
                try:
                    key = bytes(buffer[x:y]).decode("utf-8")
                except UnicodeDecodeError as error:
                    raise ProtobufError("map key is not UTF-8") from error
            elif entry_number == 2:
                value = _decode_value(buffer, x, y)
        if key is None or value is None:
            raise ProtobufError("map entry without key or value")
        maps[number][key] = value
    return maps[1], maps[2]


def protobuf_message_class():
    """``aialgs.data.Record`` as a class of the ``protobuf`` package, built from descriptors at
    run time (no generated code): the reference that tests and benchmarks check skmk against."""
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
