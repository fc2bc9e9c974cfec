"""What a registration wrote: :class:`RegistrationFiles`, the result of both file writers.

:func:`hypermorph_nb.export_registration` and :func:`hypermorph_nb.register_scans` return the
same dataclass: one path per written file and the sidecar, under the same field names.

Examples
--------
>>> files = RegistrationFiles.in_folder("out", transform="flow.nii.gz", moved_labels=True)
>>> files.moved.name, files.transform.name, files.moved_labels.name, files.sidecar.name
('moved.nii.gz', 'flow.nii.gz', 'moved_labels.nii.gz', 'registration.json')
>>> files
RegistrationFiles(out_dir='out', moved='moved.nii.gz', transform='flow.nii.gz', moved_labels='moved_labels.nii.gz', jacobian=None, inverse_transform=None, moving_affine=None, fixed_affine=None, sidecar='registration.json')
"""
from __future__ import annotations

import dataclasses
import os
import pathlib
import warnings

from ..runtime.deprecation import deprecation_message

#: The sidecar both writers write last: λ, the model, the conventions, the files.
SIDECAR = "registration.json"
#: Keys of the dicts these writers returned before (one release, with a warning) -> field names.
_OLD_KEYS = {"moved": "moved", "moved_labels": "moved_labels", "jacobian": "jacobian", "sidecar": "sidecar",
             "flow": "transform", "transform": "transform"}


@dataclasses.dataclass(frozen=True)
class RegistrationFiles:
    """The files a registration wrote, one path each (None for a file not written).

    Attributes
    ----------
    out_dir : pathlib.Path
        The output folder.
    moved : pathlib.Path
        The moving image on the fixed grid (``moved.nii.gz``).
    transform : pathlib.Path
        The displacement field: ``flow.nii.gz`` (``export_registration``) or
        ``transform.nii.gz`` (``register_scans``); see each writer for its convention.
    moved_labels : pathlib.Path or None
        The moving label map warped by nearest neighbour, when one was given.
    jacobian : pathlib.Path or None
        The Jacobian determinant of the transform on the fixed grid (``jacobian.nii.gz``).
    inverse_transform : pathlib.Path or None
        ``inverse_transform.nii.gz``: the inverse field on the moving scan's grid
        (``register_scans(..., inverse=True)``).
    moving_affine, fixed_affine : pathlib.Path or None
        ``moving_affine.tfm``, ``fixed_affine.tfm``: each scan's affine part, ITK text files
        (``register_scans``).
    sidecar : pathlib.Path
        ``registration.json``.

    Examples
    --------
    >>> files = RegistrationFiles.in_folder("out", transform="transform.nii.gz")
    >>> files.moved_labels is None, str(files.sidecar) == os.path.join("out", "registration.json")
    (True, True)
    """

    out_dir: pathlib.Path
    moved: pathlib.Path
    transform: pathlib.Path
    moved_labels: pathlib.Path | None = None
    jacobian: pathlib.Path | None = None
    inverse_transform: pathlib.Path | None = None
    moving_affine: pathlib.Path | None = None
    fixed_affine: pathlib.Path | None = None
    sidecar: pathlib.Path = pathlib.Path(SIDECAR)

    @classmethod
    def in_folder(cls, out_dir: str | os.PathLike[str], *, transform: str, moved_labels: bool = False,
                  jacobian: bool = False, inverse_transform: bool = False,
                  affines: bool = False) -> RegistrationFiles:
        """The paths of the files a writer puts in ``out_dir`` (``transform``: the field's file name;
        ``affines``: the two ``.tfm`` files).

        Examples
        --------
        >>> RegistrationFiles.in_folder("out", transform="flow.nii.gz", jacobian=True).jacobian.name
        'jacobian.nii.gz'
        """
        folder = pathlib.Path(out_dir)
        return cls(out_dir=folder, moved=folder / "moved.nii.gz", transform=folder / transform,
                   moved_labels=folder / "moved_labels.nii.gz" if moved_labels else None,
                   jacobian=folder / "jacobian.nii.gz" if jacobian else None,
                   inverse_transform=folder / "inverse_transform.nii.gz" if inverse_transform else None,
                   moving_affine=folder / "moving_affine.tfm" if affines else None,
                   fixed_affine=folder / "fixed_affine.tfm" if affines else None, sidecar=folder / SIDECAR)

    def written(self) -> dict[str, pathlib.Path]:
        """Field name -> path of every file written (the sidecar last).

        Examples
        --------
        >>> list(RegistrationFiles.in_folder("out", transform="transform.nii.gz").written())
        ['moved', 'transform', 'sidecar']
        """
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(self)
                if field.name != "out_dir" and getattr(self, field.name) is not None}

    def __repr__(self) -> str:
        def shown(path: pathlib.Path | None) -> str:
            return "None" if path is None else repr(path.name)

        return (f"RegistrationFiles(out_dir={str(self.out_dir)!r}, moved={shown(self.moved)}, "
                f"transform={shown(self.transform)}, moved_labels={shown(self.moved_labels)}, "
                f"jacobian={shown(self.jacobian)}, inverse_transform={shown(self.inverse_transform)}, "
                f"moving_affine={shown(self.moving_affine)}, fixed_affine={shown(self.fixed_affine)}, "
                f"sidecar={shown(self.sidecar)})")

    def __getitem__(self, key: str) -> str:
        """``files["moved"]``, as the dicts of earlier releases (deprecated: use ``files.moved``).

        Examples
        --------
        >>> import warnings
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore")
        ...     RegistrationFiles.in_folder("out", transform="flow.nii.gz")["flow"].endswith("flow.nii.gz")
        True
        """
        if key not in _OLD_KEYS or getattr(self, _OLD_KEYS[key]) is None:
            raise KeyError(f"{key!r}: no such file in this registration; its files are the fields of "
                           f"{self!r}")
        field = _OLD_KEYS[key]
        warnings.warn(deprecation_message(f'files["{key}"]', f"files.{field} (a pathlib.Path)"),
                      DeprecationWarning, stacklevel=2)
        return str(getattr(self, field))
