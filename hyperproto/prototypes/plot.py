"""A 3-D picture of prototypes on the sphere (PNG), like the paper's figure.

matplotlib is an optional dependency (extra `plot`), imported only here, when called.
Prototypes with d > 3 are shown by their first three principal axes.
"""

from typing import Optional

import numpy as np


def plot_sphere(protos_CxD: np.ndarray, path: str, title: Optional[str] = None) -> None:
  """Writes a PNG of the prototypes (dots) on a wireframe unit sphere."""
  try:
    import matplotlib  # pylint: disable=g-import-not-at-top
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError("Plotting needs matplotlib: pip install -e '.[plot]'") from e
  p = np.asarray(protos_CxD, np.float64)
  if p.shape[1] > 3:
    centred = p - p.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    p = p @ vt[:3].T
  p = np.pad(p, ((0, 0), (0, 3 - min(p.shape[1], 3))))
  p /= np.linalg.norm(p, axis=1, keepdims=True)
  fig = plt.figure(figsize=(6, 6))
  ax = fig.add_subplot(projection='3d')
  u, v = np.mgrid[0:2 * np.pi:30j, 0:np.pi:15j]
  ax.plot_wireframe(np.cos(u) * np.sin(v), np.sin(u) * np.sin(v), np.cos(v),
                    color='0.85', linewidth=0.5)
  ax.scatter(p[:, 0], p[:, 1], p[:, 2], s=25, c=np.arange(len(p)), cmap='viridis',
             depthshade=True)
  ax.set_box_aspect((1, 1, 1))
  ax.set_axis_off()
  if title:
    ax.set_title(title)
  fig.savefig(path, dpi=120, bbox_inches='tight')
  plt.close(fig)
