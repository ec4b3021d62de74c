"""Upload chunks serialised straight from numpy buffers.

Building a RowBlock from a Python list of floats costs far more than sending
it; the wire form of the messages used here is simple and fixed by the
protobuf encoding spec, so the bytes are assembled directly (a memcpy per
block) and sent through a bytes-passthrough serializer. The header chunk is
serialised by the generated code.
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


def field(number: int, payload: bytes) -> bytes:
    """A length-delimited field."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def fixed32_field(number: int, value: int) -> bytes:
    return varint(number << 3 | 5) + int(value & 0xFFFFFFFF).to_bytes(4, "little")


# UploadChunk: header = 1, rows = 2, csr = 4, checksum_crc32 = 5.
# RowBlock: values = 1. CsrBlock: indptr = 1, indices = 2, values = 3.
def row_chunk(values_le_f4: bytes, crc32=None) -> bytes:
    out = field(2, field(1, values_le_f4))
    if crc32 is not None:
        out += fixed32_field(5, crc32)
    return out


def csr_chunk(indptr, indices, values_le_f4: bytes, crc32=None) -> bytes:
    block = field(1, varints(indptr)) + field(2, varints(indices)) + field(3, values_le_f4)
    out = field(4, block)
    if crc32 is not None:
        out += fixed32_field(5, crc32)
    return out
