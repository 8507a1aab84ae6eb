"""Reading the files users already have: folders or archives, idx, CIFAR pickles, images.

Every reader takes what the original distributions contain, without unpacking first: a
folder, or a `.tar`, `.tar.gz` / `.tgz` or `.zip` archive, read member by member in one
pass (a gzip stream cannot seek, so random access into it would decompress it again for
every file). macOS debris (`__MACOSX/`, `._*`) and hidden files are skipped.
"""

import gzip
import io
import os
import pickle
import re
import tarfile
import zipfile
import zlib
from typing import Any, Callable, Iterator, Optional, Sequence

import numpy as np
from PIL import Image

ARCHIVE_SUFFIXES = ('.tar', '.tar.gz', '.tgz', '.zip')
IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp')


def _hidden(rel: str) -> bool:
  return any(part.startswith(('.', '__MACOSX')) for part in rel.split('/'))


class FileTree:
  """The files under a folder or inside an archive, by relative '/'-separated path."""

  def __init__(self, path: str):
    if not os.path.exists(path):
      raise FileNotFoundError(f'{path} does not exist.')
    self.path = path
    self.is_dir = os.path.isdir(path)
    if not self.is_dir and not path.lower().endswith(ARCHIVE_SUFFIXES):
      raise ValueError(f'{path} is neither a folder nor a {"/".join(ARCHIVE_SUFFIXES)} '
                       'archive.')

  def walk(self, want: Callable[[str], bool]) -> Iterator[tuple[str, bytes]]:
    """(path, contents) of each file for which `want(path)`: sorted for a folder,
    in archive order (one sequential pass) for an archive. A truncated or corrupt
    archive raises a ValueError that names it."""
    try:
      yield from self._walk(want)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error) as e:
      raise ValueError(f'{self.path} is truncated or corrupt ({type(e).__name__}: {e}); '
                       'obtain the file again (compare its size and checksum with the '
                       'published ones).') from e

  def _walk(self, want: Callable[[str], bool]) -> Iterator[tuple[str, bytes]]:
    if self.is_dir:
      for dirpath, dirnames, filenames in os.walk(self.path):
        dirnames.sort()
        for name in sorted(filenames):
          full = os.path.join(dirpath, name)
          rel = os.path.relpath(full, self.path).replace(os.sep, '/')
          if not _hidden(rel) and want(rel):
            with open(full, 'rb') as f:
              yield rel, f.read()
    elif self.path.lower().endswith('.zip'):
      with zipfile.ZipFile(self.path) as z:
        for name in sorted(z.namelist()):
          if not name.endswith('/') and not _hidden(name) and want(name):
            yield name, z.read(name)
    else:
      with tarfile.open(self.path, 'r|*') as tar:  # streaming: one pass, no seeks
        for member in tar:
          name = member.name.removeprefix('./')
          if member.isfile() and not _hidden(name) and want(name):
            yield name, tar.extractfile(member).read()

  def read_matching(self, patterns: dict[str, str]) -> dict[str, tuple[str, bytes]]:
    """For each key, the first file whose path matches its regex (searched in one
    pass); keys with no match are left out."""
    compiled = {k: re.compile(p) for k, p in patterns.items()}
    found = {}
    for rel, data in self.walk(lambda r: any(c.search(r) for c in compiled.values())):
      for k, c in compiled.items():
        if k not in found and c.search(rel):
          found[k] = (rel, data)
    return found


def find_input(manual_dir: str, archives: Sequence[str], folders: Sequence[str],
               contains: Optional[str] = None) -> Optional[str]:
  """The first of `manual_dir/<folder>`, `manual_dir/<archive>` that exists, or
  manual_dir itself when it directly holds `contains` (the folder's contents)."""
  if not os.path.isdir(manual_dir):
    raise FileNotFoundError(f'--manual_dir {manual_dir} is not a folder.')
  for name in list(folders) + list(archives):
    path = os.path.join(manual_dir, name)
    if os.path.exists(path):
      return path
  if contains and os.path.exists(os.path.join(manual_dir, contains)):
    return manual_dir
  return None


# --- Formats ---------------------------------------------------------------------------


def maybe_gunzip(data: bytes) -> bytes:
  return gzip.decompress(data) if data[:2] == b'\x1f\x8b' else data


def read_idx(data: bytes, name: str = 'idx file') -> np.ndarray:
  """An idx file (LeCun's MNIST format; plain or gzip) as a uint8 array."""
  data = maybe_gunzip(data)
  if len(data) < 4 or data[0] != 0 or data[1] != 0:
    raise ValueError(f'{name} is not an idx file (bad magic number {data[:4]!r}).')
  if data[2] != 0x08:
    raise ValueError(f'{name}: idx element type 0x{data[2]:02x}; expected 0x08 (uint8).')
  ndim = data[3]
  shape = tuple(int(d) for d in np.frombuffer(data, '>u4', count=ndim, offset=4))
  size = int(np.prod(shape))
  body = np.frombuffer(data, np.uint8, offset=4 + 4 * ndim)
  if body.size != size:
    raise ValueError(f'{name}: header says shape {shape} ({size} bytes) but the file '
                     f'holds {body.size} bytes of data: it is truncated or corrupt.')
  return body.reshape(shape)


class _SafeUnpickler(pickle.Unpickler):
  """Unpickles plain containers and numpy arrays only: the CIFAR pickles need nothing
  else, and a pickle from elsewhere then cannot run code."""
  _ALLOWED = {('numpy.core.multiarray', '_reconstruct'),
              ('numpy._core.multiarray', '_reconstruct'), ('numpy', 'ndarray'),
              ('numpy', 'dtype'), ('_codecs', 'encode'), ('copy_reg', '_reconstructor'),
              ('__builtin__', 'object')}

  def find_class(self, module: str, name: str) -> Any:
    if (module, name) not in self._ALLOWED:
      raise pickle.UnpicklingError(f'refusing to load {module}.{name} from a data pickle')
    if module == 'numpy.core.multiarray':
      module = 'numpy._core.multiarray' if hasattr(np, '_core') else module
    module = {'copy_reg': 'copyreg', '__builtin__': 'builtins'}.get(module, module)
    return super().find_class(module, name)


def load_pickle(data: bytes) -> Any:
  """A (Python 2 or 3) data pickle, with byte-string keys decoded to str."""
  obj = _SafeUnpickler(io.BytesIO(data), encoding='bytes').load()
  if isinstance(obj, dict):
    obj = {k.decode() if isinstance(k, bytes) else k: v for k, v in obj.items()}
  return obj


def decode_image(data: bytes, mode: str = 'RGB') -> np.ndarray:
  """Encoded image bytes -> uint8 HWC (C = 3 for 'RGB', 1 for 'L')."""
  with Image.open(io.BytesIO(data)) as img:
    array = np.asarray(img.convert(mode))
  return array[..., None] if array.ndim == 2 else array


def image_size(data: bytes) -> tuple[int, int]:
  """(width, height) from the header only; raises on what PIL cannot identify."""
  with Image.open(io.BytesIO(data)) as img:
    return img.size


def check_image(data: bytes, draft: int = 64) -> np.ndarray:
  """Decodes a whole image (so a truncated or corrupt file raises here, at prepare
  time, not in the middle of an epoch) and returns it as uint8 RGB; JPEGs are decoded
  at a reduced scale (DCT scaling down to about `draft` pixels), which still reads every
  byte of the file at a fraction of the cost."""
  with Image.open(io.BytesIO(data)) as img:
    img.draft('RGB', (draft, draft))
    return np.asarray(img.convert('RGB'))


def resize_array(image: np.ndarray, size: int) -> np.ndarray:
  """A uint8 HWC image resized (bilinear, antialiased) to size x size."""
  mode = 'L' if image.shape[-1] == 1 else 'RGB'
  img = Image.fromarray(image[..., 0] if mode == 'L' else image, mode)
  out = np.asarray(img.resize((size, size), Image.BILINEAR))
  return out[..., None] if out.ndim == 2 else out
