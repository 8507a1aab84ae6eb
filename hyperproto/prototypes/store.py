"""Saving and loading placements: a float32 `.npy` plus a `.json` with how it was made."""

import contextlib
import hashlib
import json
import os
import uuid
from typing import Any, Optional

import numpy as np


def sha256(array: np.ndarray, block_rows: int = 1 << 16) -> str:
  """The sha256 of the array's float32 bytes (C order), hashed in blocks of rows: no
  copy of a large array (the same digest as hashing `tobytes()` whole)."""
  array = np.atleast_1d(array)
  digest = hashlib.sha256()
  for start in range(0, len(array), block_rows):
    digest.update(np.ascontiguousarray(array[start:start + block_rows], np.float32).data)
  return digest.hexdigest()


def save(path: str, protos: np.ndarray, metadata: Optional[dict[str, Any]] = None) -> None:
  """Writes `path` (C x D float32) and `path` with `.json` instead of `.npy`.

  Each file is written under a name of this writer's own and renamed into place, so a
  reader never sees half a file and several processes may save the same placement at
  once (every process of a multi-host run places the prototypes into one shared cache).
  A float32 array is written straight from memory (no copy; 4.3 GB for the d = 1024
  Kerdock code) and its checksum taken in blocks.
  """
  protos = np.asarray(protos, np.float32)
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  meta = dict(metadata or {}, shape=list(protos.shape), sha256=sha256(protos))
  with _private(path) as tmp:
    np.save(tmp, protos)
  with _private(_json_path(path)) as tmp:
    with open(tmp, 'w') as f:
      json.dump(meta, f, indent=2, sort_keys=True)


@contextlib.contextmanager
def _private(path: str):
  """A temporary name beside `path`, unique to this writer, renamed to `path` on exit."""
  tmp = f'{path}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp{os.path.splitext(path)[1]}'
  try:
    yield tmp
    os.replace(tmp, path)  # Atomic: readers see the old file or the new one, whole.
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)


def load(path: str) -> tuple[np.ndarray, dict[str, Any]]:
  """Reads a placement; checks the checksum when the `.json` is present."""
  try:
    protos = np.load(path)
  except (OSError, ValueError) as e:
    raise ValueError(f'Cannot read prototypes from {path}: {e}. Delete the file to '
                     f'place them again.') from e
  meta = {}
  if os.path.exists(_json_path(path)):
    with open(_json_path(path)) as f:
      meta = json.load(f)
    if meta.get('sha256') not in (None, sha256(protos)):
      raise ValueError(f'Prototypes in {path} do not match the checksum in '
                       f'{_json_path(path)}: the file is corrupt or was edited. Delete '
                       f'both files to place the prototypes again.')
  return protos.astype(np.float32, copy=False), meta


def load_metadata(path: str) -> dict[str, Any]:
  """The `.json` written beside `path` by `save` ({} if there is none)."""
  if not os.path.exists(_json_path(path)):
    return {}
  with open(_json_path(path)) as f:
    return json.load(f)


def _json_path(path: str) -> str:
  return os.path.splitext(path)[0] + '.json'
