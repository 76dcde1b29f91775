"""Live-wire ("intelligent scissors") boundary tracing between anchor points.

A path between two anchors is the cheapest 8-connected pixel path on a
directed graph whose step costs are low on the object's outline:

- **Edge profile** (Mortensen and Barrett's on-the-fly training): annotators
  outline nuclei and organs on the outer foot of the intensity edge, not on its
  steepest point. Each anchor shows the tool what the image looks like across
  the boundary there (intensity sampled along the gradient), and pixels whose
  cross-boundary profile matches the anchors' are cheap.
- **Edge strength**: strong gradients are cheaper.
- **Side**: once the tracing direction is known, the object stays on one side of
  the path (a step is cheap when the gradient points to that side). This stops
  a path from running back along the route it came by.
- **Shape prior** (:func:`livewire_path` only, where the neighbouring anchors are
  known): a centripetal Catmull-Rom curve through the anchors; straying far from
  it costs extra, which keeps short cuts through textured interiors away. For a
  closed path, pixels inside the closed curve also cost a little more (a balloon
  force against the pull of shortest paths towards the inside of a convex object).

Costs and shortest paths are computed only in a window around the anchor (or
around the segment), so the image size does not matter.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra
from skimage.draw import polygon as draw_polygon

from napari_medseg.validation import as_gray2d, as_point, as_shape

__all__ = ["LiveWire", "NetworkBoundary", "livewire_path", "path_to_mask"]

_SIGMA = 1.0  # smoothing (pixels) of intensity and edge strength
_DIR_SIGMA = 2.0  # smoothing for the gradient direction, stable a few pixels off the edge
_PROFILE_T = np.arange(-4, 5, dtype=np.float32)  # samples across the boundary (pixels)
_PROFILE_W = np.exp(-(_PROFILE_T**2) / 8)  # near samples matter most
_STEPS = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))
# Cost weights: profile mismatch, weak edge, wrong side, off the shape prior.
_W_PROFILE, _W_EDGE, _W_SIDE, _W_PRIOR = 0.7, 0.28, 0.3, 0.3
# Closed paths: a step inside the closed prior curve costs this much more per unit length. Like a
# balloon force it offsets the shortest-path pull towards chords, which puts outlines inside.
_W_INSIDE = 0.25
_PROFILE_TOL = 0.25  # profile mismatch (fraction of local contrast) that counts as "off"
_PRIOR_TOL = 0.25  # distance from the prior (fraction of the anchor spacing) that counts as "off"
_SEGMENT_PAD = 30  # margin (pixels) around a segment's anchors for livewire_path
# with a network's boundary map: its term, and what is left of the image terms
_W_NET, _IMAGE_SHARE = 0.4, 0.85  # chosen on the DSB2018 training set's validation split
_TILE, _TILE_MARGIN = 256, 32  # the boundary map is computed once per tile, with context


class NetworkBoundary:
    """A segmentation model's boundary probability over an image, computed on demand.

    The annotators' outline of a nucleus is what the shipped nuclei models learnt as
    their "boundary" output (the objects' outermost pixels), so a path that follows it
    follows the annotators rather than the steepest edge. The map is computed tile by
    tile (256 pixels, with 32 of context) as windows ask for it, and kept.

    Parameters
    ----------
    image : ndarray, shape (Y, X) or (Y, X, 3|4)
        The image the live-wire traces on.
    model : SegmentationModel or str
        An instance model (``output="instance-boundary"``), default the built-in one
        made for the image (grey or colour).

    Examples
    --------
    >>> from napari_medseg import nuclei_2d
    >>> image, labels = nuclei_2d()
    >>> boundary = NetworkBoundary(image)
    >>> p = boundary((slice(200, 280), slice(80, 140)))
    >>> p.shape, bool(0 <= p.min() <= p.max() <= 1)
    ((80, 60), True)
    """

    def __init__(self, image: np.ndarray, model=None):
        from napari_medseg.model_files import suggested_model
        from napari_medseg.model_runner import SegmentationModel, load_model
        from napari_medseg.validation import holds_colour

        self.image = np.asarray(image)
        if model is None:
            model = suggested_model(holds_colour(self.image), 2)
        self.model = model if isinstance(model, SegmentationModel) else load_model(model)
        if self.model.info.output != "instance-boundary" or self.model.info.dims != 2:
            raise ValueError(f"{self.model.info.name or 'the model'} has no 2D boundary "
                             "output; choose an instance model such as 'nuclei-2d'.")
        self._tiles: dict[tuple[int, int], np.ndarray] = {}

    def __call__(self, window: tuple[slice, slice]) -> np.ndarray:
        """The boundary probability on ``window`` of the image, float32 in [0, 1]."""
        h, w = self.image.shape[:2]
        out = np.empty((window[0].stop - window[0].start, window[1].stop - window[1].start),
                       np.float32)
        for ty in range(window[0].start // _TILE, (window[0].stop - 1) // _TILE + 1):
            for tx in range(window[1].start // _TILE, (window[1].stop - 1) // _TILE + 1):
                tile = self._tile(ty, tx, h, w)
                y0, x0 = max(window[0].start, ty * _TILE), max(window[1].start, tx * _TILE)
                y1 = min(window[0].stop, (ty + 1) * _TILE)
                x1 = min(window[1].stop, (tx + 1) * _TILE)
                out[y0 - window[0].start:y1 - window[0].start,
                    x0 - window[1].start:x1 - window[1].start] = \
                    tile[y0 - ty * _TILE:y1 - ty * _TILE, x0 - tx * _TILE:x1 - tx * _TILE]
        return out

    def _tile(self, ty: int, tx: int, h: int, w: int) -> np.ndarray:
        if (ty, tx) not in self._tiles:
            y0, x0 = max(ty * _TILE - _TILE_MARGIN, 0), max(tx * _TILE - _TILE_MARGIN, 0)
            y1 = min((ty + 1) * _TILE + _TILE_MARGIN, h)
            x1 = min((tx + 1) * _TILE + _TILE_MARGIN, w)
            prob = self.model.predict(self.image[y0:y1, x0:x1], progress=False)[2]
            self._tiles[ty, tx] = prob[ty * _TILE - y0:, tx * _TILE - x0:][:_TILE, :_TILE]
        return self._tiles[ty, tx]


class LiveWire:
    """Interactive boundary tracing on a 2D image.

    Parameters
    ----------
    image : ndarray, shape (Y, X) or (Y, X, 3|4)
        Any real dtype (8/16-bit, float, negative CT values); colour images are
        converted to luminance. NaN/inf are treated as the darkest finite value.
        The array is not modified.
    radius : int
        Half-size of the search window around an anchor (pixels); it doubles on
        demand when a target lies outside.
    spacing : (float, float)
        Physical pixel size ``(dy, dx)``, so path lengths are measured in the
        image's real geometry (e.g. a slice of an anisotropic volume).
    boundary : NetworkBoundary or callable, optional
        A map of where the object's outline lies (``boundary(window) -> (h, w)``
        probabilities): the path then follows it as well as the image's edges
        (:class:`NetworkBoundary`: the nuclei models' outline of the objects).

    Examples
    --------
    >>> from napari_medseg import nuclei_2d
    >>> image, labels = nuclei_2d()
    >>> wire = LiveWire(image)
    >>> wire.anchor((236, 102))
    >>> path = wire.path_to((248, 115))   # (N, 2) array of (y, x) pixels
    >>> path[-1].tolist()
    [248, 115]
    """

    def __init__(self, image: np.ndarray, radius: int = 96,
                 spacing: Sequence[float] = (1.0, 1.0), boundary=None):
        self.image = as_gray2d(image, minimum=2)
        self.boundary = boundary
        self.radius = int(radius)
        if self.radius < 4:
            raise ValueError(f"radius must be at least 4 pixels, got {radius}.")
        self.spacing = _check_spacing(spacing)
        self.anchors: list[tuple[int, int]] = []
        self._learned: list[_AnchorInfo] = []
        self._tree: _Tree | None = None

    @property
    def current_anchor(self) -> tuple[int, int] | None:
        """The anchor paths start from, or None before the first :meth:`anchor`."""
        return self.anchors[-1] if self.anchors else None

    def anchor(self, point: Sequence[float]) -> None:
        """Fix an anchor at ``point`` ``(y, x)`` and prepare paths from it.

        The edge profile is learned from this anchor and the one before it; the
        side the object lies on is learned from the anchors placed so far.
        """
        y, x = _check_point(point, self.image.shape)
        self.anchors.append((y, x))
        self._learned.append(_learn_at(self.image, (y, x), self.spacing))
        self._prepare(self.radius)

    def undo_anchor(self) -> None:
        """Remove the last anchor; paths start again from the one before it."""
        if not self.anchors:
            return
        self.anchors.pop()
        self._learned.pop()
        self._tree = None
        if self.anchors:
            self._prepare(self.radius)

    def path_to(self, point: Sequence[float]) -> np.ndarray:
        """Cheapest path from the current anchor to ``point``.

        Returns
        -------
        ndarray of intp, shape (N, 2)
            ``(y, x)`` pixels from the anchor to ``point`` inclusive, 8-connected.
        """
        if self._tree is None:
            raise RuntimeError("Call anchor() before path_to().")
        target = _check_point(point, self.image.shape)
        radius = self._tree.radius
        while not self._tree.contains(target):
            radius *= 2  # grow the search region to reach the target
            self._prepare(radius)
        return self._tree.trace(target)

    def reset(self) -> None:
        """Forget all anchors and what was learned from them."""
        self.anchors, self._learned, self._tree = [], [], None

    def _prepare(self, radius: int) -> None:
        y, x = self.anchors[-1]
        h, w = self.image.shape
        window = (slice(max(y - radius, 0), min(y + radius + 1, h)),
                  slice(max(x - radius, 0), min(x + radius + 1, w)))
        reference = np.mean([info.profile for info in self._learned[-2:]], axis=0)
        side = _side_from_gradient(self.anchors, self._learned, self.spacing)
        self._tree = _Tree.build(self.image, window, (y, x), reference, side, self.spacing,
                                 boundary=self.boundary)
        self._tree.radius = radius


def livewire_path(
    image: np.ndarray,
    anchors: Sequence[Sequence[float]],
    closed: bool = True,
    spacing: Sequence[float] = (1.0, 1.0),
    boundary=None,
) -> np.ndarray:
    """Boundary through ``anchors`` in order (and back to the first if ``closed``).

    Parameters
    ----------
    image : ndarray, shape (Y, X) or (Y, X, 3|4)
        Any real dtype; not modified.
    anchors : sequence of (y, x)
        At least 2 (open) or 3 (closed) distinct points inside the image;
        consecutive repeats (double clicks) are dropped.
    closed : bool
        Whether to return to the first anchor.
    spacing : (float, float)
        Physical pixel size ``(dy, dx)``.
    boundary : NetworkBoundary or callable, optional
        See :class:`LiveWire`.

    Returns
    -------
    ndarray of intp, shape (N, 2)
        8-connected ``(y, x)`` path through every anchor; for closed paths the
        first anchor is not repeated at the end.

    Examples
    --------
    >>> from napari_medseg import nuclei_2d
    >>> image, labels = nuclei_2d()
    >>> path = livewire_path(image, [(236, 102), (248, 115), (236, 115)])
    >>> path.shape[1], path[0].tolist()
    (2, [236, 102])
    """
    gray = as_gray2d(image, minimum=2)
    spacing = _check_spacing(spacing)
    points = _distinct_anchors(anchors, gray.shape, closed)
    n = len(points)
    learned = [_learn_at(gray, tuple(p), spacing) for p in points]
    if closed:
        side = _side_from_area(points, spacing)
        pairs = [(i, (i + 1) % n) for i in range(n)]
    else:
        side = _side_from_gradient(points, learned, spacing)
        pairs = [(i, i + 1) for i in range(n - 1)]
    inside = None
    if closed:  # the closed prior curve's interior, over the region all segment windows share
        spline = np.concatenate([_catmull_rom(points[(i - 1) % n], points[i], points[(i + 1) % n],
                                              points[(i + 2) % n]) for i in range(n)])
        corner = np.maximum(points.min(0) - _SEGMENT_PAD, 0)
        far = np.minimum(points.max(0) + _SEGMENT_PAD + 1, gray.shape)
        inside = np.zeros(tuple(far - corner), bool)
        rr, cc = draw_polygon(spline[:, 0] - corner[0], spline[:, 1] - corner[1], inside.shape)
        inside[rr, cc] = True
    pieces = []
    for i, j in pairs:
        # Neighbouring anchors shape the prior curve; an open path's ends repeat themselves.
        before = points[(i - 1) % n] if closed or i > 0 else points[i]
        after = points[(j + 1) % n] if closed or j < n - 1 else points[j]
        curve = _catmull_rom(before, points[i], points[j], after)
        lo = np.minimum(points[i], points[j]) - _SEGMENT_PAD
        hi = np.maximum(points[i], points[j]) + _SEGMENT_PAD + 1
        window = (slice(max(lo[0], 0), min(hi[0], gray.shape[0])),
                  slice(max(lo[1], 0), min(hi[1], gray.shape[1])))
        reference = (learned[i].profile + learned[j].profile) / 2
        tree = _Tree.build(gray, window, tuple(points[i]), reference, side, spacing,
                           prior=(curve, float(np.hypot(*((points[j] - points[i]) * spacing))),
                                  None if inside is None else inside[
                                      window[0].start - corner[0]:window[0].stop - corner[0],
                                      window[1].start - corner[1]:window[1].stop - corner[1]]),
                           boundary=boundary)
        pieces.append(tree.trace(tuple(points[j]))[:-1])
    if not closed:
        pieces.append(points[-1][None])
    return np.concatenate(pieces).astype(np.intp)


def path_to_mask(path: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Fill a closed pixel path: the path pixels and everything they enclose.

    Parameters
    ----------
    path : ndarray of int, shape (N, 2)
        Closed ``(y, x)`` path (the last point connects back to the first).
    shape : (int, int)
        Output shape.

    Returns
    -------
    ndarray of bool, shape ``shape``

    Examples
    --------
    >>> square = np.array([[2, 2], [2, 6], [6, 6], [6, 2]])
    >>> int(path_to_mask(square, (9, 9)).sum())
    25
    """
    shape = as_shape(shape, "shape", ndim=2)
    path = np.asarray(path)
    mask = np.zeros(shape, bool)
    if path.size == 0:
        return mask
    if path.ndim != 2 or path.shape[1] != 2 or path.dtype.kind not in "iu":
        raise ValueError(f"path must be (N, 2) integer (y, x) pixels, got an array of shape "
                         f"{path.shape} and dtype {path.dtype}.")
    rr, cc = draw_polygon(path[:, 0], path[:, 1], shape)
    mask[rr, cc] = True
    inside = ((path[:, 0] >= 0) & (path[:, 0] < shape[0])
              & (path[:, 1] >= 0) & (path[:, 1] < shape[1]))
    mask[path[inside, 0], path[inside, 1]] = True
    return mask


# -- cost model ------------------------------------------------------------------------------
@dataclass
class _Features:
    """Per-pixel image features of a window (computed with a margin, then cropped)."""

    smooth: np.ndarray  # intensity smoothed by _SIGMA
    uy: np.ndarray  # unit gradient direction (towards brighter), physical axes
    ux: np.ndarray
    strength: np.ndarray  # gradient magnitude / its window maximum, in [0, 1]
    contrast: float  # robust intensity range of the window

    @classmethod
    def compute(cls, image: np.ndarray, window: tuple[slice, slice],
                spacing: np.ndarray) -> _Features:
        margin = int(4 * _DIR_SIGMA) + 2
        h, w = image.shape
        outer = (slice(max(window[0].start - margin, 0), min(window[0].stop + margin, h)),
                 slice(max(window[1].start - margin, 0), min(window[1].stop + margin, w)))
        inner = tuple(slice(win.start - out.start, win.stop - out.start)
                      for win, out in zip(window, outer, strict=True))
        region = image[outer]
        sigma = _SIGMA * spacing.min() / spacing  # isotropic in physical units
        smooth = ndi.gaussian_filter(region, sigma)
        grad = ndi.gaussian_gradient_magnitude(region, sigma)
        dir_sigma = _DIR_SIGMA * spacing.min() / spacing
        gy = ndi.gaussian_filter(region, dir_sigma, order=(1, 0)) / spacing[0]
        gx = ndi.gaussian_filter(region, dir_sigma, order=(0, 1)) / spacing[1]
        norm = np.maximum(np.hypot(gy, gx), 1e-12)
        grad = grad[inner]
        lo, hi = np.percentile(smooth[inner], (2, 98))
        return cls(smooth=smooth[inner], uy=(gy / norm)[inner], ux=(gx / norm)[inner],
                   strength=grad / max(float(grad.max()), 1e-12),
                   contrast=max(float(hi - lo), 1e-6))

    def profiles(self, points: np.ndarray, spacing: np.ndarray) -> np.ndarray:
        """Smoothed intensity across the boundary at ``points`` (K, 2): shape (K, T)."""
        step = spacing.min() / spacing  # one physical pixel along the gradient
        uy = self.uy[points[:, 0], points[:, 1]] * step[0]
        ux = self.ux[points[:, 0], points[:, 1]] * step[1]
        yy = points[:, :1] + _PROFILE_T * uy[:, None]
        xx = points[:, 1:] + _PROFILE_T * ux[:, None]
        samples = ndi.map_coordinates(self.smooth, [yy.ravel(), xx.ravel()], order=1,
                                      mode="nearest")
        return samples.reshape(len(points), len(_PROFILE_T))


@dataclass
class _Tree:
    """Shortest-path tree from one source pixel over a window."""

    window: tuple[slice, slice]
    source: int
    predecessors: np.ndarray
    radius: int = 0

    @classmethod
    def build(cls, image, window, source, reference, side, spacing, prior=None,
              boundary=None) -> _Tree:
        features = _Features.compute(image, window, spacing)
        cost = _node_cost(features, reference, spacing, window, prior,
                          None if boundary is None else boundary(window))
        graph = _step_graph(cost, features, side, spacing)
        w = cost.shape[1]
        src = (source[0] - window[0].start) * w + (source[1] - window[1].start)
        _, pred = dijkstra(graph, directed=True, indices=src, return_predecessors=True)
        return cls(window=window, source=src, predecessors=pred)

    def contains(self, point: tuple[int, int]) -> bool:
        return all(s.start <= p < s.stop for p, s in zip(point, self.window, strict=True))

    def trace(self, point: tuple[int, int]) -> np.ndarray:
        width = self.window[1].stop - self.window[1].start
        node = (point[0] - self.window[0].start) * width + (point[1] - self.window[1].start)
        nodes = [node]
        while node != self.source:
            node = self.predecessors[node]
            if node < 0:  # cannot happen on a connected grid; guards against a silent loop
                raise RuntimeError("live-wire target is not reachable from the anchor.")
            nodes.append(node)
        nodes = np.asarray(nodes[::-1])
        return np.stack([nodes // width + self.window[0].start,
                         nodes % width + self.window[1].start], axis=1).astype(np.intp)


def _node_cost(features: _Features, reference: np.ndarray, spacing: np.ndarray,
               window: tuple[slice, slice], prior, outline: np.ndarray | None = None
               ) -> np.ndarray:
    """Cost of the boundary passing through each pixel, in [0.02, 1.3]; with an
    ``outline`` probability map, part of the image terms give way to it."""
    h, w = features.smooth.shape
    pixels = np.stack(np.meshgrid(np.arange(h), np.arange(w), indexing="ij"), -1).reshape(-1, 2)
    mismatch = np.sqrt((features.profiles(pixels, spacing) - reference) ** 2 @ _PROFILE_W
                       / _PROFILE_W.sum()).reshape(h, w)
    off_profile = np.minimum(mismatch / (_PROFILE_TOL * features.contrast), 1.0)
    cost = 0.02 + _W_PROFILE * off_profile + _W_EDGE * (1.0 - features.strength)
    if outline is not None:
        cost = 0.02 + _IMAGE_SHARE * (cost - 0.02) + _W_NET * (1.0 - outline)
    if prior is not None:
        curve, span, inside = prior
        if inside is not None:
            cost += _W_INSIDE * inside
        on_curve = np.zeros((h, w), bool)
        local = np.rint(curve - (window[0].start, window[1].start)).astype(int)
        inside = (local[:, 0] >= 0) & (local[:, 0] < h) & (local[:, 1] >= 0) & (local[:, 1] < w)
        on_curve[local[inside, 0], local[inside, 1]] = True
        if on_curve.any():
            distance = ndi.distance_transform_edt(~on_curve, sampling=spacing)
            cost += _W_PRIOR * np.minimum(distance / (_PRIOR_TOL * max(span, 1.0)), 1.0) ** 2
    return cost


def _step_graph(cost: np.ndarray, features: _Features, side: int,
                spacing: np.ndarray) -> csr_matrix:
    """Directed 8-neighbour graph: step cost = length x (mean node cost + wrong-side cost)."""
    h, w = cost.shape
    index = np.arange(h * w).reshape(h, w)
    rows, cols, weights = [], [], []
    for dy, dx in _STEPS:
        src = (slice(max(-dy, 0), h - max(dy, 0)), slice(max(-dx, 0), w - max(dx, 0)))
        dst = (slice(max(dy, 0), h - max(-dy, 0)), slice(max(dx, 0), w - max(-dx, 0)))
        py, px = dy * spacing[0], dx * spacing[1]
        length = float(np.hypot(py, px))
        step = 0.5 * (cost[src] + cost[dst])
        if side:
            # The object (gradient direction) should lie on the path's `side`.
            gy = features.uy[src] + features.uy[dst]
            gx = features.ux[src] + features.ux[dst]
            cross = (py * gx - px * gy) / (length * np.maximum(np.hypot(gy, gx), 1e-12))
            step = step + _W_SIDE * 0.5 * (1.0 - side * cross)
        rows.append(index[src].ravel())
        cols.append(index[dst].ravel())
        weights.append((length * step).ravel())
    return csr_matrix((np.concatenate(weights), (np.concatenate(rows), np.concatenate(cols))),
                      shape=(h * w, h * w))


@dataclass(frozen=True)
class _AnchorInfo:
    """What an anchor teaches: the boundary's profile and the gradient direction there."""

    profile: np.ndarray  # (T,)
    direction: np.ndarray  # (2,) unit (gy, gx), towards brighter


def _learn_at(image: np.ndarray, point: tuple[int, int], spacing: np.ndarray) -> _AnchorInfo:
    r = int(4 * _DIR_SIGMA) + 6
    y, x = point
    window = (slice(max(y - r, 0), min(y + r + 1, image.shape[0])),
              slice(max(x - r, 0), min(x + r + 1, image.shape[1])))
    ly, lx = y - window[0].start, x - window[1].start
    features = _Features.compute(image, window, spacing)
    return _AnchorInfo(profile=features.profiles(np.array([[ly, lx]]), spacing)[0],
                       direction=np.array([features.uy[ly, lx], features.ux[ly, lx]]))


def _side_from_area(points: np.ndarray, spacing: np.ndarray) -> int:
    """Which side of a closed anchor polygon, traversed in order, is its inside."""
    p = points * spacing
    area = np.sum(p[:, 0] * np.roll(p[:, 1], -1) - p[:, 1] * np.roll(p[:, 0], -1))
    return int(np.sign(area))


def _side_from_gradient(points: np.ndarray, learned: Sequence[_AnchorInfo],
                        spacing: np.ndarray) -> int:
    """Which side of the anchor chain the brighter side (the object) is on; 0 if unknown."""
    if len(points) < 2:
        return 0
    g = np.array([info.direction for info in learned])
    d = np.diff(np.asarray(points), axis=0) * spacing
    # Gradient at both ends of each segment against the segment's direction.
    votes = d[:, 0] * (g[:-1, 1] + g[1:, 1]) - d[:, 1] * (g[:-1, 0] + g[1:, 0])
    return int(np.sign(votes.sum()))


def _catmull_rom(p0, p1, p2, p3, samples: int = 200) -> np.ndarray:
    """Centripetal Catmull-Rom curve from ``p1`` to ``p2``: shape (samples, 2)."""
    p0, p1, p2, p3 = (np.asarray(p, float) for p in (p0, p1, p2, p3))
    t0 = 0.0
    t1 = t0 + max(np.linalg.norm(p1 - p0), 1e-6) ** 0.5
    t2 = t1 + max(np.linalg.norm(p2 - p1), 1e-6) ** 0.5
    t3 = t2 + max(np.linalg.norm(p3 - p2), 1e-6) ** 0.5
    t = np.linspace(t1, t2, samples)[:, None]
    a1 = ((t1 - t) * p0 + (t - t0) * p1) / (t1 - t0)
    a2 = ((t2 - t) * p1 + (t - t1) * p2) / (t2 - t1)
    a3 = ((t3 - t) * p2 + (t - t2) * p3) / (t3 - t2)
    b1 = ((t2 - t) * a1 + (t - t0) * a2) / (t2 - t0)
    b2 = ((t3 - t) * a2 + (t - t1) * a3) / (t3 - t1)
    return ((t2 - t) * b1 + (t - t1) * b2) / (t2 - t1)


# -- validation ------------------------------------------------------------------------------
def _check_spacing(spacing: Sequence[float]) -> np.ndarray:
    spacing = np.asarray(spacing, dtype=float)
    if spacing.shape != (2,) or not np.isfinite(spacing).all() or (spacing <= 0).any():
        raise ValueError(f"spacing must be two positive numbers (dy, dx), got {spacing!r}.")
    return spacing


def _check_point(point: Sequence[float], shape: tuple[int, int]) -> tuple[int, int]:
    return as_point(point, "point", (0, 0, *shape), f"the {shape[0]}x{shape[1]} image")


def _distinct_anchors(anchors, shape: tuple[int, int], closed: bool) -> np.ndarray:
    points = np.asarray(anchors, dtype=float)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"anchors must be a sequence of (y, x) pairs, got shape {points.shape}.")
    rounded = np.array([_check_point(p, shape) for p in points], dtype=np.intp).reshape(-1, 2)
    keep = np.ones(len(rounded), bool)
    keep[1:] = np.any(rounded[1:] != rounded[:-1], axis=1)  # drop repeated clicks
    rounded = rounded[keep]
    if closed and len(rounded) > 1 and (rounded[0] == rounded[-1]).all():
        rounded = rounded[:-1]
    need = 3 if closed else 2
    if len(rounded) < need:
        raise ValueError(f"a {'closed' if closed else 'open'} path needs at least {need} "
                         f"distinct anchors, got {len(rounded)}.")
    return rounded
