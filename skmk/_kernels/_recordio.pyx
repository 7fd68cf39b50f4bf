"""Fast path of the RecordIO-protobuf reader: whole dense records decoded straight into arrays.

The Python reader (``skmk/io/_recordio.py``) learns the layout of a file from its first record
(feature dtype and width, whether labels exist). This kernel then walks the framing and the
``aialgs.data.Record`` wire format of every following record that has exactly that layout —
one whole frame; ``features["values"]`` a dense tensor of ``width`` packed values of the
expected type; optionally ``label["values"]`` whose first value becomes ``y`` — and copies the
values into the output rows. It stops, without consuming it, at the first record that does not
fit (a continuation frame, a sparse row, another width, an unknown field, a record cut by the
end of the buffer, anything malformed), and the Python reader takes over for that record: it
either handles it or raises the error that names the file, record and byte offset.
"""
from libc.stdint cimport int32_t, int64_t, uint32_t, uint64_t
from libc.string cimport memcmp, memcpy

cdef uint32_t MAGIC = 0xCED7230A


cdef inline bint _varint(const unsigned char *buf, Py_ssize_t *pos, Py_ssize_t end,
                         uint64_t *out) noexcept nogil:
    cdef uint64_t result = 0
    cdef int shift = 0
    cdef unsigned char byte
    while pos[0] < end and shift < 70:
        byte = buf[pos[0]]
        pos[0] += 1
        result |= (<uint64_t> (byte & 0x7F)) << shift
        if not (byte & 0x80):
            out[0] = result
            return True
        shift += 7
    return False


cdef inline bint _length(const unsigned char *buf, Py_ssize_t *pos, Py_ssize_t end,
                         Py_ssize_t *stop) noexcept nogil:
    """Read a length prefix; stop = end of the length-delimited field."""
    cdef uint64_t n
    if not _varint(buf, pos, end, &n) or n > <uint64_t> (end - pos[0]):
        return False
    stop[0] = pos[0] + <Py_ssize_t> n
    return True


cdef bint _values_entry(const unsigned char *buf, Py_ssize_t pos, Py_ssize_t end,
                        Py_ssize_t *value_start, Py_ssize_t *value_end) noexcept nogil:
    """A map entry whose key is "values": where its Value message lies."""
    cdef uint64_t tag
    cdef Py_ssize_t stop
    cdef bint keyed = False
    value_start[0] = -1
    while pos < end:
        if not _varint(buf, &pos, end, &tag) or (tag & 7) != 2:
            return False
        if not _length(buf, &pos, end, &stop):
            return False
        if tag >> 3 == 1:
            if stop - pos != 6 or memcmp(&buf[pos], b"values", 6) != 0:
                return False
            keyed = True
        elif tag >> 3 == 2:
            value_start[0], value_end[0] = pos, stop
        else:
            return False
        pos = stop
    return keyed and value_start[0] >= 0


cdef bint _dense_tensor(const unsigned char *buf, Py_ssize_t pos, Py_ssize_t end,
                        int expected_field, Py_ssize_t *values_start,
                        Py_ssize_t *values_end) noexcept nogil:
    """A Value holding one dense tensor in field ``expected_field``: its packed values."""
    cdef uint64_t tag
    cdef Py_ssize_t stop, inner
    if not _varint(buf, &pos, end, &tag) or tag != <uint64_t> ((expected_field << 3) | 2):
        return False
    if not _length(buf, &pos, end, &stop) or stop != end:
        return False
    values_start[0] = -1
    while pos < stop:
        if not _varint(buf, &pos, stop, &tag) or tag != ((1 << 3) | 2):
            return False  # keys or shape (sparse), or an unpacked encoding: the slow path
        if not _length(buf, &pos, stop, &inner) or values_start[0] >= 0:
            return False
        values_start[0], values_end[0] = pos, inner
        pos = inner
    return values_start[0] >= 0


cdef bint _first_label(const unsigned char *buf, Py_ssize_t pos, Py_ssize_t end,
                       double *label) noexcept nogil:
    """The first value of a Value's tensor (float32, float64 or int32) as a double."""
    cdef uint64_t tag, raw
    cdef Py_ssize_t stop, inner
    cdef float f
    cdef double d
    cdef int field
    if not _varint(buf, &pos, end, &tag) or (tag & 7) != 2:
        return False
    field = <int> (tag >> 3)
    if field != 2 and field != 3 and field != 7:
        return False
    if not _length(buf, &pos, end, &stop) or stop != end:
        return False
    if not _varint(buf, &pos, stop, &tag) or tag != ((1 << 3) | 2):
        return False
    if not _length(buf, &pos, stop, &inner) or inner == pos:
        return False
    if field == 2:
        if inner - pos < 4:
            return False
        memcpy(&f, &buf[pos], 4)
        label[0] = f
    elif field == 3:
        if inner - pos < 8:
            return False
        memcpy(&d, &buf[pos], 8)
        label[0] = d
    else:
        if not _varint(buf, &pos, inner, &raw):
            return False
        label[0] = <double> (<int32_t> (<int64_t> raw))
    return True


def decode_dense(
    const unsigned char[::1] buf,           # IN  bytes of whole frames (and maybe a cut tail)
    Py_ssize_t pos,                         # IN  where the first frame starts
    char[:, ::1] X_bytes,                   # OUT (max_rows, width * itemsize) raw rows
    double[::1] y,                          # OUT (max_rows,) labels, or empty when none
    int tensor_field,                       # IN  2 for float32, 3 for float64 features
    int itemsize,                           # IN  4 or 8
    bint labelled,                          # IN  records carry label["values"]
):
    """Decode whole dense records of the expected layout from ``pos``.

    Returns
    -------
    (rows, pos) : rows written to the front of X_bytes / y, and the position of the first
        record not consumed (the end of the buffer when all were).
    """
    cdef:
        Py_ssize_t end = buf.shape[0]
        Py_ssize_t max_rows = X_bytes.shape[0]
        Py_ssize_t row_bytes = X_bytes.shape[1]
        Py_ssize_t rows = 0, payload, payload_end, frame_end, field_pos, stop
        Py_ssize_t value_start, value_end, values_start, values_end
        uint32_t magic, word
        uint64_t tag
        bint got_features, got_label
        double label
    with nogil:
        while rows < max_rows and end - pos >= 8:
            memcpy(&magic, &buf[pos], 4)
            memcpy(&word, &buf[pos + 4], 4)
            if magic != MAGIC or (word >> 29) != 0:
                break
            payload = pos + 8
            payload_end = payload + (word & ((1 << 29) - 1))
            frame_end = payload_end + ((4 - (word & 3)) & 3)
            if frame_end > end:
                break
            field_pos = payload
            got_features = got_label = False
            while field_pos < payload_end:
                if not _varint(&buf[0], &field_pos, payload_end, &tag) or (tag & 7) != 2:
                    break
                if not _length(&buf[0], &field_pos, payload_end, &stop):
                    break
                if tag >> 3 == 1 and not got_features:
                    if not _values_entry(&buf[0], field_pos, stop, &value_start, &value_end):
                        break
                    if not _dense_tensor(&buf[0], value_start, value_end, tensor_field,
                                         &values_start, &values_end):
                        break
                    if values_end - values_start != row_bytes:
                        break
                    memcpy(&X_bytes[rows, 0], &buf[values_start], row_bytes)
                    got_features = True
                elif tag >> 3 == 2 and labelled and not got_label:
                    if not _values_entry(&buf[0], field_pos, stop, &value_start, &value_end):
                        break
                    if not _first_label(&buf[0], value_start, value_end, &label):
                        break
                    y[rows] = label
                    got_label = True
                elif tag >> 3 < 3 or tag >> 3 > 5:
                    break  # a second entry, an unexpected label, or an unknown field
                field_pos = stop
            if field_pos != payload_end or not got_features or got_label != labelled:
                break
            rows += 1
            pos = frame_end
    return rows, pos
