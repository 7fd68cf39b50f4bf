"""Fast path of the RecordIO-protobuf reader: whole records decoded straight into batch arrays.

The Python reader (``skmk/io/_recordio.py``) learns the layout of a file from its first record
(feature type and width, dense or sparse, whether labels exist). These kernels then walk the
framing and the ``aialgs.data.Record`` wire format of every following record that has exactly
that layout — one whole frame; ``features["values"]`` a tensor of the expected type, either
dense (``width`` packed values, no keys, no shape) or sparse (packed values and as many packed
keys below ``width``, ``shape == [width]``; no values and no keys for an all-zero row);
optionally ``label["values"]`` whose first value becomes ``y`` — and copy the values into the
output rows (dense) or CSR arrays (sparse). They stop, without consuming it, at the first record
that does not fit (a continuation frame, another layout or width, a key out of range, an unknown
field, a repeated field, a record cut by the end of the buffer, anything malformed), and the
Python reader takes over for that record: it either handles it or raises the error that names
the file, record and byte offset.
"""
from libc.errno cimport EINTR, errno
from libc.stdint cimport int32_t, int64_t, uint32_t, uint64_t
from cython.parallel cimport parallel, prange
from libc.stdlib cimport free, malloc
from libc.string cimport memcmp, memcpy


cdef extern from "_preadv.h":
    struct skmk_iovec:
        void *iov_base
        size_t iov_len
    int SKMK_IOV_MAX
    long long skmk_preadv(int fd, const skmk_iovec *iov, int count, long long offset) nogil

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


cdef bint _frame(const unsigned char *buf, Py_ssize_t pos, Py_ssize_t end,
                 Py_ssize_t *payload_end, Py_ssize_t *frame_end) noexcept nogil:
    """A whole (not continued) frame at ``pos`` that ends inside the buffer; its payload starts
    at ``pos + 8``."""
    cdef uint32_t magic, word
    if end - pos < 8:
        return False
    memcpy(&magic, &buf[pos], 4)
    memcpy(&word, &buf[pos + 4], 4)
    if magic != MAGIC or (word >> 29) != 0:
        return False
    payload_end[0] = pos + 8 + (word & ((1 << 29) - 1))
    frame_end[0] = payload_end[0] + ((4 - (word & 3)) & 3)
    return frame_end[0] <= end


cdef bint _record(const unsigned char *buf, Py_ssize_t pos, Py_ssize_t end, bint labelled,
                  Py_ssize_t *value_start, Py_ssize_t *value_end, double *label,
                  bint got_features=False) noexcept nogil:
    """A Record with one ``features["values"]`` entry, one ``label["values"]`` entry exactly when
    ``labelled``, and otherwise only uid/metadata/configuration: where the features' Value lies,
    and the label. ``got_features``: the fields from ``pos`` follow a features entry already
    read (which then must not come again)."""
    cdef uint64_t tag
    cdef Py_ssize_t stop, entry_start, entry_end
    cdef bint got_label = False
    while pos < end:
        if not _varint(buf, &pos, end, &tag) or (tag & 7) != 2:
            return False
        if not _length(buf, &pos, end, &stop):
            return False
        if tag >> 3 == 1 and not got_features:
            if not _values_entry(buf, pos, stop, value_start, value_end):
                return False
            got_features = True
        elif tag >> 3 == 2 and labelled and not got_label:
            if not _values_entry(buf, pos, stop, &entry_start, &entry_end):
                return False
            if not _first_label(buf, entry_start, entry_end, label):
                return False
            got_label = True
        elif tag >> 3 < 3 or tag >> 3 > 5:
            return False  # a second entry, an unexpected label, or an unknown field
        pos = stop
    return got_features and got_label == labelled


def decode_dense(
    const unsigned char[::1] buf,           # IN  bytes of whole frames (and maybe a cut tail)
    Py_ssize_t pos,                         # IN  where the first frame starts
    char[:, ::1] X_bytes,                   # OUT (max_rows, width * itemsize) raw rows
    double[::1] y,                          # OUT (max_rows,) labels, or empty when none
    int tensor_field,                       # IN  2 for float32, 3 for float64 features
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
        Py_ssize_t rows = 0, payload_end, frame_end
        Py_ssize_t value_start, value_end, values_start, values_end
        double label = 0
    with nogil:
        while rows < max_rows and _frame(&buf[0], pos, end, &payload_end, &frame_end):
            if not _record(&buf[0], pos + 8, payload_end, labelled, &value_start, &value_end,
                           &label):
                break
            if not _dense_tensor(&buf[0], value_start, value_end, tensor_field,
                                 &values_start, &values_end):
                break
            if values_end - values_start != row_bytes:
                break
            memcpy(&X_bytes[rows, 0], &buf[values_start], row_bytes)
            if labelled:
                y[rows] = label
            rows += 1
            pos = frame_end
    return rows, pos


cdef bint _sparse_tensor(const unsigned char *buf, Py_ssize_t pos, Py_ssize_t end,
                         int expected_field, Py_ssize_t *spans, uint64_t *width) noexcept nogil:
    """A Value holding one tensor in field ``expected_field`` with a one-entry shape: the spans
    of its packed values (``spans[0:2]``) and keys (``spans[2:4]``), each empty when absent."""
    cdef uint64_t tag
    cdef Py_ssize_t stop, inner, field
    cdef bint got_shape = False
    if not _varint(buf, &pos, end, &tag) or tag != <uint64_t> ((expected_field << 3) | 2):
        return False
    if not _length(buf, &pos, end, &stop) or stop != end:
        return False
    spans[0] = spans[1] = spans[2] = spans[3] = -1
    while pos < stop:
        # Each of values (1), keys (2) and shape (3) packed, at most once: anything else (an
        # unpacked encoding, a field split in two) is rare and left to the Python reader.
        if not _varint(buf, &pos, stop, &tag) or (tag & 7) != 2:
            return False
        if not _length(buf, &pos, stop, &inner):
            return False
        field = <Py_ssize_t> (tag >> 3)
        if field == 1 or field == 2:
            if spans[2 * field - 2] >= 0:
                return False
            spans[2 * field - 2], spans[2 * field - 1] = pos, inner
        elif field == 3:
            if got_shape or not _varint(buf, &pos, inner, width) or pos != inner:
                return False
            got_shape = True
        else:
            return False
        pos = inner
    if spans[0] < 0:
        spans[0] = spans[1] = 0
    if spans[2] < 0:
        spans[2] = spans[3] = 0
    return got_shape


cdef inline Py_ssize_t _count_varints(const unsigned char *buf, Py_ssize_t pos,
                                      Py_ssize_t end) noexcept nogil:
    """How many varints ``buf[pos:end]`` holds (bytes without the continuation bit), or -1
    when the last one is cut off."""
    cdef Py_ssize_t n = 0
    if pos < end and buf[end - 1] & 0x80:
        return -1
    while pos < end:
        n += not (buf[pos] & 0x80)
        pos += 1
    return n


def decode_sparse(
    const unsigned char[::1] buf,           # IN  bytes of whole frames (and maybe a cut tail)
    Py_ssize_t pos,                         # IN  where the first frame starts
    char[::1] data_bytes,                   # OUT (capacity * itemsize,) CSR values, raw
    int32_t[::1] indices,                   # OUT (capacity,) CSR column indices
    int32_t[::1] indptr,                    # IN/OUT (max_rows + 1,) row starts; indptr[row0]
                                            #        holds the nonzeros written so far
    double[::1] y,                          # OUT (max_rows,) labels, or empty when none
    Py_ssize_t row0,                        # IN  rows already in the batch
    int tensor_field,                       # IN  2 float32, 3 float64, 7 int32 (as float64)
    uint64_t width,                         # IN  the features' shape[0]
    bint labelled,                          # IN  records carry label["values"]
):
    """Decode whole sparse records of the expected layout from ``pos`` into CSR arrays.

    Keys are kept in the order the record stores them (protobuf does not ask them sorted), as
    the Python reader keeps them.

    Returns
    -------
    (rows, pos, full) : rows the batch holds now, the position of the first record not
        consumed, and whether decoding stopped because that record's nonzeros do not fit in
        ``data_bytes``/``indices`` (grow them and call again).
    """
    cdef:
        Py_ssize_t end = buf.shape[0]
        Py_ssize_t max_rows = indptr.shape[0] - 1
        Py_ssize_t capacity = indices.shape[0]
        Py_ssize_t rows = row0, nnz = indptr[row0], n_values, n_keys, i, at
        Py_ssize_t payload_end, frame_end, value_start, value_end
        Py_ssize_t spans[4]
        Py_ssize_t itemsize = 4 if tensor_field == 2 else 8
        uint64_t shape = 0, key, raw
        double label = 0, value
        bint full = False, ok
    with nogil:
        while rows < max_rows and _frame(&buf[0], pos, end, &payload_end, &frame_end):
            if not _record(&buf[0], pos + 8, payload_end, labelled, &value_start, &value_end,
                           &label):
                break
            if not _sparse_tensor(&buf[0], value_start, value_end, tensor_field, spans,
                                  &shape) or shape != width:
                break
            if tensor_field == 7:
                n_values = _count_varints(&buf[0], spans[0], spans[1])
            elif (spans[1] - spans[0]) % itemsize == 0:
                n_values = (spans[1] - spans[0]) // itemsize
            else:
                break
            if n_values < 0:
                break
            if nnz + n_values > capacity:
                full = True
                break
            # Keys straight into indices: exactly n_values of them, each below width (a dense
            # row inside a sparse file has values without keys and stops here too).
            ok = True
            n_keys = 0
            at = spans[2]
            while at < spans[3]:
                if n_keys == n_values or not _varint(&buf[0], &at, spans[3], &key) \
                        or key >= width:
                    ok = False  # the Python reader names the key out of range
                    break
                indices[nnz + n_keys] = <int32_t> key
                n_keys += 1
            if n_keys != n_values:
                ok = False
            if ok and tensor_field == 7:
                at = spans[0]
                for i in range(n_values):
                    if not _varint(&buf[0], &at, spans[1], &raw):
                        ok = False
                        break
                    value = <double> (<int32_t> (<int64_t> raw))
                    memcpy(&data_bytes[(nnz + i) * 8], &value, 8)
            if not ok:
                break
            if tensor_field != 7 and n_values:
                memcpy(&data_bytes[nnz * itemsize], &buf[spans[0]], n_values * itemsize)
            if labelled:
                y[rows] = label
            nnz += n_keys
            rows += 1
            indptr[rows] = <int32_t> nnz
            pos = frame_end
    return rows, pos, full


# -- records of one fixed size, read straight into the rows -----------------------------------

def fixed_frame(const unsigned char[::1] buf, int tensor_field, bint labelled):
    """Where the values lie in a dense record that every record of its file may repeat.

    ``buf`` starts with a whole frame. It qualifies when it decodes as ``decode_dense`` would
    take it and its features entry is the payload's first field, ending with the values: then
    a record with the same bytes before the values has its values at the same place, and
    whatever follows them (the label, other fields) is checked by ``read_fixed_frames``.

    Returns
    -------
    (values_start, payload_end, frame_end) : byte offsets in the frame, or None
    """
    cdef:
        Py_ssize_t end = buf.shape[0], pos = 8, stop
        Py_ssize_t payload_end, frame_end, value_start, value_end, values_start, values_end
        uint64_t tag
        double label
    if end < 8 or not _frame(&buf[0], 0, end, &payload_end, &frame_end):
        return None
    if not _record(&buf[0], 8, payload_end, labelled, &value_start, &value_end, &label):
        return None
    if not _dense_tensor(&buf[0], value_start, value_end, tensor_field, &values_start,
                         &values_end):
        return None
    if not _varint(&buf[0], &pos, payload_end, &tag) or tag != ((1 << 3) | 2):
        return None
    if not _length(&buf[0], &pos, payload_end, &stop) or stop != values_end:
        return None
    return values_start, payload_end, frame_end


def read_fixed_frames(
    int fd,                                 # IN  a file opened for reading
    long long offset,                       # IN  where the first frame starts
    const unsigned char[::1] head,          # IN  (values_start,) the bytes every frame starts with
    Py_ssize_t payload_end,                 # IN  end of the payload in each frame
    Py_ssize_t frame_bytes,                 # IN  size of each frame (payload and padding)
    char[:, ::1] X_bytes,                   # OUT (max_rows, width * itemsize) raw rows
    double[::1] y,                          # OUT (max_rows,) labels, or empty when none
    bint labelled,                          # IN  records carry label["values"]
    int n_threads,
):
    """Read frames of one fixed layout with ``preadv``: each frame's values land straight in
    their row of X, its other bytes in a small scratch buffer, where they are checked: the
    bytes before the values must equal ``head`` (the magic, the length — so the frame has the
    same size — and every tag and length down to the values), and the fields after them must
    decode (a label exactly when ``labelled``, see ``_record``).

    Groups of frames are read by ``n_threads`` threads at once (``preadv`` takes its own
    offset): the kernel's copy out of the page cache is most of the work, and it runs on
    every core that is free.

    Returns
    -------
    rows : int
        Frames read and checked, from ``offset`` on; fewer than ``max_rows`` at the end of the
        file or at the first frame that differs (rows past it may be written, not counted).
    """
    cdef:
        Py_ssize_t max_rows = X_bytes.shape[0]
        Py_ssize_t row_bytes = X_bytes.shape[1]
        Py_ssize_t head_bytes = head.shape[0]
        Py_ssize_t tail_bytes = frame_bytes - head_bytes - row_bytes
        Py_ssize_t spare_bytes = frame_bytes - row_bytes
        Py_ssize_t group = min(SKMK_IOV_MAX, 1024) // 3
        Py_ssize_t n_groups = (max_rows + group - 1) // group
        Py_ssize_t g, start, n, i, k, whole, value_start, value_end, rows = 0
        long long got
        double label
        Py_ssize_t *good
        skmk_iovec *iov
        unsigned char *spare
    if max_rows == 0:
        return 0
    if tail_bytes < 0 or head_bytes < 8:
        raise ValueError("read_fixed_frames: the head and the row must fit in a frame")
    good = <Py_ssize_t *> malloc(sizeof(Py_ssize_t) * n_groups)
    if good == NULL:
        raise MemoryError()
    iov = NULL
    spare = NULL
    if n_groups < n_threads:
        n_threads = <int> n_groups
    with nogil, parallel(num_threads=n_threads):
        iov = <skmk_iovec *> malloc(sizeof(skmk_iovec) * 3 * group)
        spare = <unsigned char *> malloc(spare_bytes * group)
        for g in prange(n_groups, schedule="static"):
            good[g] = 0
            # Assigned here, so that each thread has its own (the parser writes them through
            # pointers, which alone would leave them shared).
            label = 0
            value_start = value_end = 0
            if iov == NULL or spare == NULL:
                continue
            start = g * group
            n = min(group, max_rows - start)
            k = 0
            for i in range(n):
                iov[k].iov_base = &spare[i * spare_bytes]
                iov[k].iov_len = head_bytes
                iov[k + 1].iov_base = &X_bytes[start + i, 0]
                iov[k + 1].iov_len = row_bytes
                k = k + 2
                if tail_bytes:
                    iov[k].iov_base = &spare[i * spare_bytes + head_bytes]
                    iov[k].iov_len = tail_bytes
                    k = k + 1
            got = skmk_preadv(fd, iov, <int> k, offset + start * frame_bytes)
            while got < 0 and errno == EINTR:
                got = skmk_preadv(fd, iov, <int> k, offset + start * frame_bytes)
            whole = 0
            if got > 0:
                whole = <Py_ssize_t> (got // frame_bytes)
            for i in range(whole):
                if memcmp(&spare[i * spare_bytes], &head[0], head_bytes) != 0:
                    whole = i
                    break
                # The tail is the payload after the values, then padding: what follows the
                # features entry must be a record's other fields.
                if not _record(&spare[i * spare_bytes], head_bytes, payload_end - row_bytes,
                               labelled, &value_start, &value_end, &label, True):
                    whole = i
                    break
                if labelled:
                    y[start + i] = label
            good[g] = whole
        free(iov)
        free(spare)
    # The rows read are the groups read whole, then the first group's good part.
    for g in range(n_groups):
        rows += good[g]
        if good[g] < min(group, max_rows - g * group):
            break
    free(good)
    return rows
