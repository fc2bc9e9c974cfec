"""The shipped models: their names, files and checksums, and the folder a name resolves to."""
from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Mapping
from pathlib import Path

#: What a model path starts with to name a shipped model: ``"pretrained:ixi-t1-2mm"``.
PREFIX = "pretrained:"
#: The folder holding one sub-folder per shipped model.
ROOT = Path(__file__).resolve().parent


@dataclasses.dataclass(frozen=True)
class PretrainedModel:
    """A model shipped in the package.

    Attributes
    ----------
    name : str
        What follows ``pretrained:``.
    summary : str
        One line: what it registers.
    files : Mapping[str, str]
        Every file of its folder and its sha256.
    """

    name: str
    summary: str
    files: Mapping[str, str]

    @property
    def folder(self) -> Path:
        """Where its files are installed."""
        return ROOT / self.name


#: name -> model; the files are written by ``scripts/train_pretrained.py``.
MODELS: dict[str, PretrainedModel] = {model.name: model for model in (
    PretrainedModel(
        name="ixi-t1-2mm",
        summary=("FiLM HyperMorph (λ in [0, 1]) for skull-stripped T1 brains, 80×96×80 at 2 mm in the ixi3d "
                 "space; trained on 127 IXI subjects with NCC and label supervision"),
        files={
            "LICENSE-DATA.md": "3811a4d8dd15fd4e7de8ee02fa15f6a1d5bd3f3f4e9fa2819f126bc9df9deb69",
            "README.md": "7fbaa26254abf4730d503f8ca41982c5064d5059e404764b18bdee8f355213c7",
            "model.json": "5d2a0d8f141cfaf0f0da46e7cc39a9fa8a835859db50e217e7af6c91f7ee1a21",
            "reference.nii.gz": "b989c51f763c4909832afb4833d6609990a4cd18f2bf5de7195b531e70e050dc",
            "reference_mask.nii.gz": "80cd3518f271d1bd49b5876801066a4431e282a734c85a09c871f0b278f96f20",
            "weights.h5": "cf17b0783a0a9f8385c9e125ce97fa8fdcd0299e39bea2f1e72dc37c177ae899",
        },
    ),
)}


def names() -> list[str]:
    """The shipped models as :func:`hypermorph_nb.load_model` takes them (``"pretrained:NAME"``), sorted.

    Examples
    --------
    >>> names()
    ['pretrained:ixi-t1-2mm']
    """
    return sorted(PREFIX + name for name in MODELS)


def is_pretrained_name(path: str | os.PathLike[str]) -> bool:
    """Whether a model path names a shipped model (``"pretrained:NAME"``).

    Examples
    --------
    >>> is_pretrained_name("pretrained:ixi-t1-2mm"), is_pretrained_name("runs/model")
    (True, False)
    """
    return isinstance(path, str) and path.startswith(PREFIX)


def _lookup(name: str) -> PretrainedModel:
    bare = name[len(PREFIX):] if name.startswith(PREFIX) else name
    if bare not in MODELS:
        known = ", ".join(names())
        raise ValueError(f"no pretrained model is called {bare!r}; the shipped ones are: {known}")
    return MODELS[bare]


def card(name: str) -> str:
    """The model card of a shipped model (how it was trained, what it scores).

    Examples
    --------
    >>> card("pretrained:ixi-t1-2mm").splitlines()[0]
    '# pretrained:ixi-t1-2mm'
    """
    return (_lookup(name).folder / "README.md").read_text()


def pretrained_folder(name: str) -> Path:
    """The folder of a shipped model, after checking every file against its sha256.

    Parameters
    ----------
    name : str
        ``"pretrained:NAME"`` or ``"NAME"``.

    Returns
    -------
    pathlib.Path
        A folder :func:`hypermorph_nb.load_model` reads.

    Raises
    ------
    ValueError
        For an unknown name (the message lists the known ones), or a file that is
        missing or fails its checksum (the installed copy is damaged: reinstall).

    Examples
    --------
    >>> pretrained_folder("pretrained:ixi-t1-2mm").name
    'ixi-t1-2mm'
    """
    model = _lookup(name)
    for file_name, expected in model.files.items():
        path = model.folder / file_name
        if not path.is_file():
            raise ValueError(f"{path} of pretrained model {PREFIX}{model.name} is missing: the installed "
                             "package is incomplete; reinstall it (pip install --force-reinstall hypermorph-nb)")
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != expected:
            raise ValueError(f"{path} of pretrained model {PREFIX}{model.name} fails its checksum (sha256 "
                             f"{digest[:12]}…, expected {expected[:12]}…): the file is damaged or was changed; "
                             "reinstall the package (pip install --force-reinstall hypermorph-nb)")
    return model.folder
