"""Which 2D views of an image the explorer shows, oriented by the image's affine.

A 2D image is one plane, shown as stored (rows down, columns across). A 3D
volume is shown in three planes, axial, coronal and sagittal, whose array axes,
flips and aspect ratios come from the voxel-to-world affine (RAS, as in NIfTI;
:func:`nibabel.orientations.io_orientation` finds the nearest axis of each
array axis), so a brain looks like a brain whatever order its axes are stored in:

- axial and coronal views: superior / anterior up; the subject's left on the
  left in the ``'neurological'`` convention (default), on the right in the
  ``'radiological'`` one;
- sagittal view: superior up, anterior on the left.

Without an affine a volume's array axes are taken as (R, A, S) (the identity affine).
"""

from __future__ import annotations

from collections.abc import Sequence

import dataclasses

from numpy.typing import ArrayLike
import numpy as np

from ..checks.affines import voxel_sizes
from ..checks.grids import check_affine

#: The three planes of a volume, in the explorer's row order.
PLANES = ("axial", "coronal", "sagittal")
CONVENTIONS = ("neurological", "radiological")
_WORLD_LETTERS = (("L", "R"), ("P", "A"), ("I", "S"))  # (negative, positive) end of each RAS axis
# plane: (world axis sliced, world axis across (columns), +1 if its positive end is on the right
# in the neurological convention, world axis down the rows (positive end up))
_PLANE_AXES = {"axial": (2, 0, +1, 1), "coronal": (1, 0, +1, 2), "sagittal": (0, 1, -1, 2)}


@dataclasses.dataclass(frozen=True)
class PlaneView:
    """How one plane is cut from an image and laid out on screen.

    Attributes
    ----------
    name : str
        ``'axial'``, ``'coronal'``, ``'sagittal'``, or ``'image'`` for a 2D image.
    axis : int or None
        Array axis the slice index runs along (None in 2D).
    flip_axis : bool
        Whether slice ``index`` is array index ``size - 1 - index``, so that the
        index always runs towards right, anterior or superior.
    row_axis, col_axis : int
        Array axes shown down the rows and across the columns.
    flip_rows, flip_cols : bool
        Whether those axes are reversed on screen.
    size : int
        Number of slices (1 in 2D).
    aspect : float
        Height / width of one displayed pixel (voxel sizes from the affine).
    letters : tuple of str or None
        World direction at the (left, right, top, bottom) edge, e.g. ``('L', 'R', 'A', 'P')``.

    Examples
    --------
    >>> import numpy as np
    >>> axial = plane_views((4, 5, 6))[0]
    >>> axial.name, axial.image(np.zeros((4, 5, 6)), 2).shape, axial.letters
    ('axial', (5, 4), ('L', 'R', 'A', 'P'))
    """

    name: str
    axis: int | None
    row_axis: int
    col_axis: int
    flip_axis: bool = False
    flip_rows: bool = False
    flip_cols: bool = False
    size: int = 1
    aspect: float = 1.0
    letters: tuple[str, ...] | None = None

    def image(self, volume: np.ndarray, index: int = 0) -> np.ndarray:
        """The slice ``index`` of ``volume`` (``spatial`` or ``(*spatial, C)``) as shown on screen."""
        volume = np.asarray(volume)
        if self.axis is not None:
            index = int(index)
            if not 0 <= index < self.size:
                raise IndexError(f"{self.name} slice {index} is out of range 0..{self.size - 1}")
            volume = np.take(volume, self.size - 1 - index if self.flip_axis else index, axis=self.axis)
        if self.row_axis > self.col_axis:  # the two remaining spatial axes keep their order
            volume = np.swapaxes(volume, 0, 1)
        return volume[::-1 if self.flip_rows else 1, ::-1 if self.flip_cols else 1]

    def vectors(self, flow: np.ndarray, index: int = 0) -> np.ndarray:
        """The in-plane components of a displacement field, in screen pixels (rows, columns).

        ``flow`` has shape ``(*spatial, ndims)``, component ``i`` along array axis ``i``.
        A reversed axis reverses its component.

        Examples
        --------
        >>> import numpy as np
        >>> flow = np.zeros((4, 5, 6, 3)); flow[..., 1] = 2.0   # +2 voxels along array axis 1 (A)
        >>> axial = plane_views((4, 5, 6))[0]                     # anterior is up: rows move by -2
        >>> axial.vectors(flow, 0)[0, 0].tolist()
        [-2.0, 0.0]
        """
        field = self.image(flow, index)
        rows = field[..., self.row_axis] * (-1.0 if self.flip_rows else 1.0)
        cols = field[..., self.col_axis] * (-1.0 if self.flip_cols else 1.0)
        return np.stack([rows, cols], -1)


def plane_views(shape: tuple[int, ...], affine: ArrayLike | None = None, *,
                convention: str = "neurological") -> list[PlaneView]:
    """The views of an image of spatial ``shape``: one for 2D, axial/coronal/sagittal for 3D.

    Parameters
    ----------
    shape : tuple of int
        Spatial shape, 2 or 3 sides.
    affine : array_like, optional
        ``(4, 4)`` voxel-to-world (RAS) matrix of a volume; default identity.
        Ignored for 2D images, which are shown as stored.
    convention : {'neurological', 'radiological'}
        Subject's left on the left of axial and coronal views, or on the right.

    Returns
    -------
    list of PlaneView

    Examples
    --------
    >>> flipped = [[-2, 0, 0, 0], [0, 2, 0, 0], [0, 0, 2, 0], [0, 0, 0, 1]]   # stored L <- R
    >>> [view.flip_cols for view in plane_views((8, 8, 8), flipped)]   # sagittal: anterior on the left
    [True, True, True]
    >>> [view.flip_cols for view in plane_views((8, 8, 8), flipped, convention="radiological")]
    [False, False, True]
    >>> [view.name for view in plane_views((32, 32))]
    ['image']
    """
    shape = tuple(int(side) for side in shape)
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}")
    if len(shape) == 2:
        return [PlaneView("image", None, 0, 1)]
    if len(shape) != 3:
        raise ValueError(f"images must be 2D or 3D, got spatial shape {shape}")
    from nibabel.orientations import io_orientation

    matrix = np.eye(4) if affine is None else check_affine(affine, "affine")
    orientation = io_orientation(matrix)  # row a: (world axis of array axis a, ±1)
    array_axis = {int(world): axis for axis, (world, _) in enumerate(orientation)}
    sign = {axis: float(direction) for axis, (_, direction) in enumerate(orientation)}
    voxel = voxel_sizes(matrix, 3)
    views = []
    for name in PLANES:
        sliced, across, right, down = _PLANE_AXES[name]
        if across == 0 and convention == "radiological":
            right = -right
        col_axis, row_axis = array_axis[across], array_axis[down]
        letters = (_WORLD_LETTERS[across][right < 0], _WORLD_LETTERS[across][right > 0],
                   _WORLD_LETTERS[down][1], _WORLD_LETTERS[down][0])
        views.append(PlaneView(
            name=name, axis=array_axis[sliced], row_axis=row_axis, col_axis=col_axis,
            flip_axis=sign[array_axis[sliced]] < 0, flip_rows=sign[row_axis] > 0, flip_cols=sign[col_axis] * right < 0,
            size=shape[array_axis[sliced]], aspect=float(voxel[row_axis] / voxel[col_axis]),
            letters=letters))
    return views


def convention_note(views: Sequence[PlaneView], convention: str) -> str:
    """One line for the figure: how the planes are oriented (empty for a 2D image)."""
    if views[0].axis is None:
        return ""
    side = "left" if convention == "neurological" else "right"
    return (f"{convention} convention: the subject's left on the {side} of axial and coronal "
            "views; sagittal: anterior on the left")
