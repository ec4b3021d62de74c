"""Upload chunks serialised straight from numpy buffers.

Building a RowBlock from a Python list of floats costs far more than sending
it; the wire form of the messages used here is simple and fixed by the
protobuf encoding spec (a packed `repeated float` is a length-delimited field
whose payload is the little-endian float32 bytes), so the bytes are assembled
directly and sent through a bytes-passthrough serializer. Each chunk is built
with one copy of its payload: the small field headers are encoded first and
`bytes.join` copies them and the caller's buffer (a memoryview of the numpy
array, not a bytes copy of it) into the one message. Each extra copy of a
fresh 2 MB buffer costs page faults that, on a VM, cost more than the copy
(docs/SERVICE.md, "Upload throughput"). The header chunk is serialised by the
generated code.
"""
import numpy as np


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def varints(a: np.ndarray) -> bytes:
    """Packed varint encoding of non-negative integers, vectorised."""
    a = np.asarray(a, dtype=np.uint64)
    if a.size == 0:
        return b""
    groups = np.empty((a.size, 10), dtype=np.uint8)
    rest = a.copy()
    length = np.ones(a.size, dtype=np.int64)
    for k in range(10):
        groups[:, k] = (rest & np.uint64(0x7F)).astype(np.uint8)
        rest >>= np.uint64(7)
        more = rest > 0
        groups[more, k] |= 0x80
        length += more
        if not more.any():
            break
    keep = np.arange(10)[None, :] < length[:, None]
    return groups[keep].tobytes()


def tag_len(number: int, length: int) -> bytes:
    """The key and length of a length-delimited field (its payload follows)."""
    return varint(number << 3 | 2) + varint(length)


def field(number: int, payload) -> bytes:
    """A length-delimited field; payload is bytes or any byte buffer."""
    return b"".join((tag_len(number, len(payload)), payload))


def fixed32_field(number: int, value: int) -> bytes:
    return varint(number << 3 | 5) + int(value & 0xFFFFFFFF).to_bytes(4, "little")


# UploadChunk: header = 1, rows = 2, csr = 4, checksum_crc32 = 5.
# RowBlock: values = 1. CsrBlock: indptr = 1, indices = 2, values = 3.
def _nbytes(buf) -> int:
    return memoryview(buf).nbytes


def row_chunk(values_le_f4, crc32=None) -> bytes:
    """values_le_f4: a buffer (bytes, or a memoryview of a C-contiguous <f4
    array); its bytes are copied once, into the returned message."""
    n = _nbytes(values_le_f4)
    inner = tag_len(1, n)
    parts = [tag_len(2, len(inner) + n), inner, values_le_f4]
    if crc32 is not None:
        parts.append(fixed32_field(5, crc32))
    return b"".join(parts)


def csr_chunk(indptr, indices, values_le_f4, crc32=None) -> bytes:
    p, ix = varints(indptr), varints(indices)
    n = _nbytes(values_le_f4)
    block = [tag_len(1, len(p)), p, tag_len(2, len(ix)), ix, tag_len(3, n)]
    size = sum(len(b) for b in block) + n
    parts = [tag_len(4, size)] + block + [values_le_f4]
    if crc32 is not None:
        parts.append(fixed32_field(5, crc32))
    return b"".join(parts)
