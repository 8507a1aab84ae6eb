"""TFRecord files without TensorFlow: CRC32C, reading (every checksum checked), writing.

A TFRecord file is a sequence of records, each framed as

    uint64 length | uint32 masked_crc32c(length) | data | uint32 masked_crc32c(data)

(little-endian; TensorFlow's `core/lib/io/record_writer.h`). Reading checks both
checksums of every record and fails with `CorruptRecordError`, naming the file, the
record and its byte offset, on a mismatch or a truncated file. (grain's pure-Python
`TFRecordIterDataset` skips the checks: a TODO in grain 0.2.18.)

CRC32C is computed in numpy for a whole chunk of a file at once (`crc32c_ranges`).
The CRC register is linear over GF(2): a 64-byte block's register is the XOR of one
table entry per byte (position, value), the register after n zero bytes is a linear
map applied with four 256-entry lookups, and a scan over the blocks gives the register
of every prefix, from which each record's CRC follows. No Python loop runs per byte
or per record; `experiments/bench_tfrecord.py` measures the speed.
"""

import os
import struct
from typing import Iterable, Iterator, Sequence, Union

import numpy as np

_POLY = 0x82F63B78  # CRC-32C (Castagnoli), bit-reflected
_MASK_DELTA = 0xA282EAD8  # TFRecord's checksum mask (crc32c.h)
_BLOCK = 64  # bytes per block of the scan (a multiple of 8, at most 256)
_HEADER = 12  # uint64 length + uint32 its masked CRC
_FOOTER = 4  # uint32 masked CRC of the data
CHUNK_BYTES = 32 << 20  # read and checked at a time

Buffer = Union[bytes, bytearray, memoryview, np.ndarray]


class CorruptRecordError(ValueError):
  """A TFRecord file whose framing or checksums are wrong, or that ends mid-record."""


def _byte_table() -> np.ndarray:
  """The reflected CRC-32C register after one zero byte, for each low byte (uint32[256])."""
  table = np.arange(256, dtype=np.uint32)
  for _ in range(8):
    table = np.where(table & 1, (table >> 1) ^ np.uint32(_POLY), table >> 1)
  return table


def _apply(tables: np.ndarray, v: np.ndarray) -> np.ndarray:
  """A linear map of 32-bit registers, given as its images of each byte (uint32[4, 256])."""
  return (tables[0][v & 0xFF] ^ tables[1][(v >> 8) & 0xFF]
          ^ tables[2][(v >> 16) & 0xFF] ^ tables[3][v >> 24])


def _zero_tables(levels: int = 48) -> np.ndarray:
  """Z[k] (uint32[levels, 4, 256]): the register after 2**k zero bytes, as `_apply` tables.

  With the register r (no initial value or final xor), one byte b updates it to
  Z1(r ^ b), four bytes w (a little-endian uint32) to Z4(r ^ w), and two messages
  concatenated give crc(A + B) = Z_len(B)(crc(A)) ^ crc(B).
  """
  basis = np.arange(256, dtype=np.uint32)[None, :] << (
      8 * np.arange(4, dtype=np.uint32)[:, None])
  out = np.empty((levels, 4, 256), np.uint32)
  out[0] = (basis >> 8) ^ _byte_table()[basis & 0xFF]
  for k in range(1, levels):
    out[k] = _apply(out[k - 1], _apply(out[k - 1], basis))
  return out


_Z = _zero_tables()


def _shift(v: np.ndarray, nbytes) -> np.ndarray:
  """Z_n(v): registers `v` after `nbytes` zero bytes (one count, or one each)."""
  v = np.asarray(v, np.uint32)
  if np.ndim(nbytes) == 0:
    for k in range(int(nbytes).bit_length()):
      if int(nbytes) >> k & 1:
        v = _apply(_Z[k], v)
    return v
  nbytes = np.asarray(nbytes, np.int64)
  for k in range(int(nbytes.max(initial=0)).bit_length()):
    v = np.where((nbytes >> k) & 1 == 1, _apply(_Z[k], v), v)
  return v


def _position_tables() -> np.ndarray:
  """P[i][b] (uint32[_BLOCK, 256]): the register of a block holding byte b at position
  i and zeros elsewhere, so that a block's register is the XOR of P[i][block[i]]."""
  return np.stack([_shift(_byte_table(), _BLOCK - 1 - i) for i in range(_BLOCK)])


_P = _position_tables().reshape(-1)  # (flat: one gather for a whole block)
_P_OFFSETS = np.arange(_BLOCK, dtype=np.uint16) * 256


def _rows_crc(rows: np.ndarray, rows_at_a_time: int = 1 << 14) -> np.ndarray:
  """The register (from 0) of each row of a uint8[n, w] array (w <= _BLOCK)."""
  offsets = _P_OFFSETS[_BLOCK - rows.shape[1]:]  # a row is the end of a block
  out = np.empty(rows.shape[0], np.uint32)
  for i in range(0, rows.shape[0], rows_at_a_time):  # (1 MiB: the temporaries stay small)
    part = rows[i:i + rows_at_a_time]
    out[i:i + len(part)] = np.bitwise_xor.reduce(_P[part + offsets], axis=1)
  return out


def _window_crc(data: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
  """The register of each data[start:end] (at most _BLOCK bytes): the bytes that end
  at `end` (as many as the longest range, rounded up to 8), with those before `start`
  zeroed (leading zeros leave the register 0)."""
  if not start.size:
    return np.zeros(0, np.uint32)
  width = min(_BLOCK, max(8, -(-int((end - start).max(initial=0)) // 8) * 8))
  near = end < width
  if near.any():  # (ranges at the very start: read from a copy with zeros in front)
    front = np.concatenate([np.zeros(width, np.uint8), data[:width]])
    out = np.empty(start.shape, np.uint32)
    out[near] = _window_crc(front, start[near] + width, end[near] + width)
    out[~near] = _window_crc(data, start[~near], end[~near])
    return out
  rows = np.lib.stride_tricks.sliding_window_view(data, width)[end - width]
  rows[np.arange(width) < (start - end + width)[:, None]] = 0
  return _rows_crc(rows)


def crc32c_ranges(buf: Buffer, starts: Iterable[int], ends: Iterable[int]) -> np.ndarray:
  """CRC-32C of buf[starts[i]:ends[i]] for every i, computed together (uint32)."""
  data = np.frombuffer(buf, np.uint8) if not isinstance(buf, np.ndarray) else buf
  starts, ends = np.asarray(starts, np.int64), np.asarray(ends, np.int64)
  register = np.empty(starts.shape, np.uint32)
  short = ends - starts <= _BLOCK
  register[short] = _window_crc(data, starts[short], ends[short])
  if not short.all():
    register[~short] = _long_crc(data, starts[~short], ends[~short])
  # The standard CRC starts the register at ~0 and inverts it at the end.
  return register ^ _shift(np.full(starts.shape, 0xFFFFFFFF, np.uint32),
                           ends - starts) ^ np.uint32(0xFFFFFFFF)


def _long_crc(data: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
  """The register of each data[start:end] longer than a block: every whole block of
  `data` gets its register; a scan gives the register G[j] of data[:j * _BLOCK]; a
  range is then its head up to the first block boundary, the whole blocks between
  (from G at both ends) and its tail after the last boundary."""
  blocks = data[:data.size // _BLOCK * _BLOCK].reshape(-1, _BLOCK)
  g = np.concatenate([np.zeros(1, np.uint32), _scan(_rows_crc(blocks), _BLOCK)])
  up = -(-starts // _BLOCK) * _BLOCK  # the first block boundary in the range
  down = ends // _BLOCK * _BLOCK  # the last
  head = _window_crc(data, starts, up)
  middle = g[down // _BLOCK] ^ _shift(g[up // _BLOCK], down - up)
  tail = _window_crc(data, down, ends)
  return _shift(_shift(head, down - up) ^ middle, ends - down) ^ tail


def _scan(r: np.ndarray, nbytes: int) -> np.ndarray:
  """The register of the first i + 1 pieces, for every i, given each piece's own
  register `r` (pieces of `nbytes` bytes): pairs are combined, their prefixes found
  the same way, then the pieces between filled in (a work-efficient scan)."""
  if r.size <= 1:
    return r
  if r.size % 2:  # (a zero piece in front changes no register)
    return _scan(np.concatenate([np.zeros(1, np.uint32), r]), nbytes)[1:]
  pairs = _scan(_shift(r[0::2], nbytes) ^ r[1::2], 2 * nbytes)
  out = np.empty_like(r)
  out[1::2] = pairs
  out[0] = r[0]
  out[2::2] = _shift(pairs[:-1], nbytes) ^ r[2::2]
  return out


def crc32c(data: Buffer) -> int:
  """CRC-32C (Castagnoli) of one buffer."""
  return int(crc32c_ranges(data, [0], [memoryview(data).nbytes])[0])


def masked(crc: np.ndarray) -> np.ndarray:
  """TFRecord's masked checksums: rotated right by 15 bits, plus a constant."""
  crc = np.asarray(crc, np.uint64)  # (wider: no overflow warnings; cut back to 32 bits)
  return ((((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF).astype(np.uint32)


def frames(records: Sequence[bytes]) -> bytes:
  """Records as TFRecord bytes (their checksums computed together)."""
  lengths = b''.join(struct.pack('<Q', len(r)) for r in records)
  ends = np.cumsum([len(r) for r in records], dtype=np.int64)
  starts = ends - [len(r) for r in records]
  length_crcs = masked(crc32c_ranges(lengths, np.arange(len(records)) * 8,
                                     np.arange(1, len(records) + 1) * 8))
  data_crcs = masked(crc32c_ranges(b''.join(records), starts, ends))
  return b''.join(b''.join([lengths[8 * i:8 * i + 8], struct.pack('<I', length_crcs[i]),
                            r, struct.pack('<I', data_crcs[i])])
                  for i, r in enumerate(records))


def write(path: str, records: Iterable[bytes]) -> int:
  """Writes `records` as a TFRecord file; returns how many."""
  n, batch, size = 0, [], 0
  with open(path, 'wb') as f:
    for record in records:
      batch.append(record)
      size += len(record)
      if size >= CHUNK_BYTES:
        f.write(frames(batch))
        n, batch, size = n + len(batch), [], 0
    f.write(frames(batch))
  return n + len(batch)


def _check(path: str, buf: bytes, offset: int, first: int, at: list,
           lengths: list) -> None:
  """Both checksums of each record (at offsets `at` in buf, with data `lengths`)."""
  if not at:
    return
  at, lengths = np.asarray(at, np.int64), np.asarray(lengths, np.int64)
  data_start = at + _HEADER
  data_end = data_start + lengths
  stored = np.frombuffer(buf, np.uint8)
  length_bad = masked(crc32c_ranges(buf, at, at + 8)) != _read_u32(stored, at + 8)
  data_bad = masked(crc32c_ranges(buf, data_start, data_end)) != _read_u32(
      stored, data_end)
  bad = np.flatnonzero(length_bad | data_bad)
  if bad.size:
    i = int(bad[0])
    _fail(path, first + i, offset + int(at[i]),
          f'fails its {"length" if length_bad[i] else "data"} checksum ({bad.size} of '
          f'the {len(at)} records read with it do): the file is corrupt')


def _read_u32(data: np.ndarray, at: np.ndarray) -> np.ndarray:
  """Little-endian uint32 at each offset."""
  b = data[at[:, None] + np.arange(4)].astype(np.uint32)
  return b[:, 0] | b[:, 1] << 8 | b[:, 2] << 16 | b[:, 3] << 24


def _length_ok(buf: bytes, at: int) -> bool:
  """Whether the length field of the record at `at` matches its checksum."""
  (stored,) = struct.unpack_from('<I', buf, at + 8)
  return int(masked(crc32c(buf[at:at + 8]))) == stored


def read(path: str, chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytes]:
  """The records of a TFRecord file, in order, each checksum checked.

  Raises:
    CorruptRecordError: a checksum does not match, or the file ends inside a record
      (a truncated copy); it names the file, the record and its byte offset.
  """
  size = os.path.getsize(path)
  offset, count, pending = 0, 0, b''  # (offset: where `pending` starts in the file)
  with open(path, 'rb') as f:
    while True:
      chunk = f.read(chunk_bytes)
      buf = pending + chunk
      at, lengths, p = [], [], 0  # the records complete in buf
      while p + _HEADER <= len(buf):
        (n,) = struct.unpack_from('<Q', buf, p)
        if offset + p + _HEADER + n + _FOOTER > size:  # beyond the end of the file
          _check(path, buf, offset, count, at, lengths)
          if not _length_ok(buf, p):
            _fail(path, count + len(at), offset + p, 'fails its length checksum')
          _fail(path, count + len(at), offset + p,
                f'needs {n} bytes of data, but the file ends first: the file is truncated')
        if p + _HEADER + n + _FOOTER > len(buf):
          break  # (complete in the next chunk)
        at.append(p)
        lengths.append(n)
        p += _HEADER + n + _FOOTER
      _check(path, buf, offset, count, at, lengths)
      for start, n in zip(at, lengths):
        yield buf[start + _HEADER:start + _HEADER + n]
      count += len(at)
      offset, pending = offset + p, buf[p:]
      if not chunk:
        if pending:
          _fail(path, count, offset, f'is cut short ({len(pending)} bytes, less than a '
                'header): the file is truncated')
        return


def _fail(path: str, record: int, at: int, what: str) -> None:
  raise CorruptRecordError(f'{path}: record {record} (at byte {at}) {what}. Copy or '
                           'prepare the file again.')
