"""A registry of public crystal datasets with safe, verified downloads.

Every registered dataset (:data:`REGISTRY`) names where its files live (URLs pinned to a
commit where the host allows it), their SHA-256 checksums, what the target is and in which
unit, how to cite it and under which licence it is distributed.  :func:`fetch` downloads the
files (standard library ``urllib``, a socket timeout, a progress bar on a terminal), verifies
their checksums, extracts archives safely and converts the data to a layout that
:func:`cgcnn.io.iter_structures` reads:

* ``perovskite-energy``, ``perovskite-bandgap``, ``cgcnn-samples``: folders in the original
  CGCNN layout (``id_prop.csv`` + ``ID.cif``);
* ``perov5``, ``carbon24``, ``mp20``: CDVAE's CSV files (a CIF string per row in column ``cif``,
  ids in ``material_id``), combined into one CSV plus ``split.csv`` (``id,split``);
* ``matbench_*``: Matbench v0.1's gzipped JSON, kept as it is.

Files go under :func:`default_root` (``$CGCNN_DATASETS_ROOT``, else a per-user cache folder):
``ROOT/NAME/`` holds a dataset once it is complete (marked by ``ROOT/NAME/.complete``); it is
built in a temporary folder and renamed in place, so nothing half-written is ever visible.
Where a checksum is not known in advance, the first download's checksum is recorded in
``ROOT/.checksums.json`` and later downloads are verified against it.

``CGCNN_DATASETS_MIRROR=DIR`` reads ``DIR/<file name>`` instead of downloading (the checksum is
still verified); this is how offline machines and CI use the registry.
"""

from __future__ import annotations

import csv
import hashlib
import http.client
import json
import os
import posixpath
import random
import re
import shutil
import socket
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from cgcnn.errors import InputError

__all__ = [
    "REGISTRY",
    "DatasetInfo",
    "RemoteFile",
    "copy_converter",
    "csv_splits_converter",
    "dataset_path",
    "default_root",
    "download",
    "extract_zip",
    "fetch",
    "fetch_info",
    "format_table",
    "get_info",
    "is_present",
    "list_datasets",
    "original_cgcnn_split",
    "resolve_data",
    "sha256_file",
    "zip_folder_converter",
]

#: Seconds a connection or a read may stall before the download fails.
TIMEOUT = 10.0
ENV_ROOT = "CGCNN_DATASETS_ROOT"
ENV_MIRROR = "CGCNN_DATASETS_MIRROR"
CHECKSUMS_FILE = ".checksums.json"
COMPLETE_MARKER = ".complete"
DOWNLOADS_DIR = ".downloads"
_CHUNK = 1 << 16
_SKIPPED_ZIP_NAMES = (".DS_Store", "Thumbs.db")

csv.field_size_limit(2**31 - 1)  # CIF strings in a CSV cell can be long


# --------------------------------------------------------------------------- registry types


@dataclass(frozen=True)
class RemoteFile:
    """One file of a dataset.

    Attributes:
        url: where to download it from.
        sha256: its expected SHA-256 (hex), or ``None`` when unknown: then the first download's
            checksum is recorded in ``ROOT/.checksums.json`` and used from then on.
        name: its local name (may contain ``/``), also looked up first in a mirror folder;
            defaults to the last component of the URL.
        size: its size in bytes when known (informational).
        shared: keep the download in ``ROOT/.downloads`` after the dataset is built (a file
            that several datasets are extracted from).
    """

    url: str
    sha256: str | None = None
    name: str = ""
    size: int | None = None
    shared: bool = False

    @property
    def local_name(self) -> str:
        """The file's local name (``name``, else the URL's last component)."""
        return self.name or url_basename(self.url)


Converter = Callable[[Mapping[str, Path], Path], None]
"""Builds a dataset folder (2nd argument) from its downloaded files (local name -> path)."""


@dataclass(frozen=True)
class DatasetInfo:
    """A registered dataset.

    Attributes:
        name: the registry name (also the folder under the root).
        description: what the crystals are.
        target: the target(s) and unit(s), e.g. ``"heat_ref (eV/cell)"``.
        size: number of crystals (rows).
        files: the files to download.
        citation: how to cite the data.
        licence: the licence the data is distributed under, as far as it is known.
        convert: builds the dataset folder from the downloaded files.
        data: the path, relative to the dataset folder, that the readers take (``""``: the
            folder itself).
        layout: a short description of the converted layout.
        homepage: a page describing the data.
    """

    name: str
    description: str
    target: str
    size: int
    files: tuple[RemoteFile, ...]
    citation: str
    licence: str
    convert: Converter
    data: str = ""
    layout: str = ""
    homepage: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def source(self) -> str:
        """The homepage, else the first URL."""
        return self.homepage or (self.files[0].url if self.files else "")

    @property
    def checksums_known(self) -> bool:
        """Whether every file's checksum is pinned in the registry."""
        return all(f.sha256 for f in self.files)


def url_basename(url: str) -> str:
    """The last path component of a URL (without query or fragment)."""
    path = urllib.parse.urlsplit(url).path
    return posixpath.basename(path.rstrip("/")) or "download"


# --------------------------------------------------------------------------- converters


def _check_member_name(name: str, archive: str) -> PurePosixPath:
    """A zip member's name as a safe relative path; :class:`InputError` if it could escape."""
    if "\x00" in name:
        raise InputError(archive, f"refusing archive entry {name!r}: NUL in its name")
    norm = name.replace("\\", "/")
    if norm.startswith("/") or (len(norm) > 1 and norm[1] == ":"):
        raise InputError(archive, f"refusing archive entry {name!r}: absolute path")
    parts: list[str] = []
    for part in norm.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise InputError(archive, f"refusing archive entry {name!r}: it leaves the folder")
            parts.pop()
        else:
            parts.append(part)
    return PurePosixPath(*parts) if parts else PurePosixPath(".")


def _skipped_member(path: PurePosixPath) -> bool:
    """macOS resource forks and desktop junk that archives carry."""
    return (
        "__MACOSX" in path.parts
        or path.name in _SKIPPED_ZIP_NAMES
        or (path.name.startswith("._") and len(path.name) > 2)
    )


def extract_zip(archive: str | os.PathLike, target: str | os.PathLike, prefix: str = "") -> int:
    """Extract ``archive``'s entries under ``prefix`` into ``target`` safely.

    Every entry is checked before anything is written: one whose path is absolute or leaves
    the archive (``../x``), or whose resolved destination is outside ``target``, makes the whole
    archive refused.  ``__MACOSX/``, ``.DS_Store`` and ``._*`` entries are skipped; ``prefix``
    (e.g. ``"hw_data/perovskite_energy"``) is stripped from the names that are kept.

    Returns:
        the number of files written.

    Raises:
        InputError: for an unsafe entry, a corrupt archive or a prefix with no files.
    """
    archive_s = str(archive)
    target_p = Path(target)
    target_p.mkdir(parents=True, exist_ok=True)
    root = target_p.resolve()
    want = PurePosixPath(prefix.strip("/")) if prefix.strip("/") else None
    plan: list[tuple[zipfile.ZipInfo, Path]] = []
    try:
        with zipfile.ZipFile(archive_s) as zf:
            for info in zf.infolist():
                rel = _check_member_name(info.filename, archive_s)
                if _skipped_member(rel) or info.is_dir():
                    continue
                if want is not None:
                    if rel.parts[: len(want.parts)] != want.parts:
                        continue
                    rel = PurePosixPath(*rel.parts[len(want.parts) :])
                    if not rel.parts:
                        continue
                dest = (root / Path(*rel.parts)).resolve()
                if dest != root and root not in dest.parents:
                    raise InputError(
                        archive_s, f"refusing archive entry {info.filename!r}: it leaves the folder"
                    )
                plan.append((info, dest))
            if not plan:
                raise InputError(archive_s, f"no files under {prefix or '/'!r} in the archive")
            for info, dest in plan:
                dest.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(dest, "wb") as out:
                    shutil.copyfileobj(src, out, _CHUNK)
    except zipfile.BadZipFile as exc:
        raise InputError(archive_s, f"not a valid zip archive ({exc})") from None
    return len(plan)


def original_cgcnn_split(
    id_prop: str | os.PathLike, seed: int = 123, train: float = 0.8, val: float = 0.1,
    test: float = 0.1,
) -> list[tuple[str, str]]:  # fmt: skip
    """The train/val/test split the original CGCNN code draws for an ``id_prop.csv``.

    ``random.seed(seed)``, the rows of ``id_prop.csv`` (``csv.reader``) shuffled with
    ``random.shuffle``; the first ``int(train * n)`` rows train, the last ``int(test * n)``
    test, the ``int(val * n)`` before those validation (rows in between are unused).

    Returns:
        ``(id, split)`` pairs in the shuffled order, split being ``train``, ``val`` or ``test``.
    """
    with open(id_prop, newline="", encoding="utf-8-sig") as fh:
        rows = [row for row in csv.reader(fh)]
    state = random.getstate()
    try:
        random.seed(seed)
        random.shuffle(rows)
    finally:
        random.setstate(state)
    n = len(rows)
    n_train, n_val, n_test = int(train * n), int(val * n), int(test * n)
    out: list[tuple[str, str]] = []
    for i, row in enumerate(rows):
        if i < n_train:
            split = "train"
        elif i >= n - n_test:
            split = "test"
        elif i >= n - n_test - n_val:
            split = "val"
        else:
            split = "unused"
        if split != "unused":
            out.append((row[0].strip(), split))
    return out


def write_split(path: str | os.PathLike, pairs: Sequence[tuple[str, str]]) -> None:
    """Write ``id,split`` rows with a header (``csv`` module's default CRLF line ends)."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "split"])
        writer.writerows(pairs)


def zip_folder_converter(archive: str, prefix: str, *, split: bool = False) -> Converter:
    """A converter extracting folder ``prefix`` of the downloaded zip ``archive``.

    With ``split``, also write ``split.csv`` reproducing the original CGCNN split.
    """

    def convert(files: Mapping[str, Path], dest: Path) -> None:
        extract_zip(files[archive], dest, prefix)
        if not (dest / "id_prop.csv").is_file():
            raise InputError(str(files[archive]), f"no id_prop.csv under {prefix!r}")
        if split:
            write_split(dest / "split.csv", original_cgcnn_split(dest / "id_prop.csv"))

    return convert


def perovskite_band_converter(archive: str) -> Converter:
    """The converter of ``perovskite-bandgap``, which repairs the upstream folder.

    Upstream's ``hw_data/perovskite_band/id_prop.csv`` lists 332 ids whose CIFs are not in that
    folder but in ``hw_data/perovskite_energy`` (same id scheme), while the 338 CIFs the folder
    does hold belong to the energy set's ids.  The result holds ``id_prop.csv`` as published,
    each listed id's CIF (from the band folder, else from the energy folder) and no others.
    """

    def convert(files: Mapping[str, Path], dest: Path) -> None:
        extract_zip(files[archive], dest, "hw_data/perovskite_band")
        id_prop = dest / "id_prop.csv"
        if not id_prop.is_file():
            raise InputError(str(files[archive]), "no id_prop.csv in hw_data/perovskite_band")
        with open(id_prop, newline="", encoding="utf-8-sig") as fh:
            ids = [row[0].strip() for row in csv.reader(fh) if row and row[0].strip()]
        missing = [i for i in ids if not (dest / f"{i}.cif").is_file()]
        if missing:
            energy = dest / ".energy"  # inside the staging folder: removed on any failure
            extract_zip(files[archive], energy, "hw_data/perovskite_energy")
            try:
                for rid in missing:
                    src = energy / f"{rid}.cif"
                    if not src.is_file():
                        raise InputError(str(files[archive]), f"no CIF for id {rid!r}")
                    shutil.copyfile(src, dest / f"{rid}.cif")
            finally:
                shutil.rmtree(energy, ignore_errors=True)
        listed = set(ids)
        for path in dest.glob("*.cif"):
            if path.stem not in listed:
                path.unlink()

    return convert


def csv_splits_converter(
    stem: str, splits: Sequence[str] = ("train", "val", "test"), id_column: str = "material_id"
) -> Converter:
    """A converter for CDVAE-style ``train.csv``/``val.csv``/``test.csv`` files.

    Keeps the files (named by split), writes them combined into ``STEM.csv`` (one header) and
    ``split.csv`` (``id,split``: which file a row came from).
    """

    def convert(files: Mapping[str, Path], dest: Path) -> None:
        header: list[str] | None = None
        pairs: list[tuple[str, str]] = []
        with open(dest / f"{stem}.csv", "w", newline="", encoding="utf-8") as out_fh:
            writer = csv.writer(out_fh, lineterminator="\n")
            for split in splits:
                src = next(p for name, p in files.items() if url_basename(name) == f"{split}.csv")
                shutil.copyfile(src, dest / f"{split}.csv")
                with open(src, newline="", encoding="utf-8-sig") as fh:
                    reader = csv.reader(fh)
                    head = next(reader, None)
                    if head is None:
                        raise InputError(str(src), "empty CSV file")
                    if header is None:
                        header = head
                        if id_column not in header:
                            raise InputError(str(src), f"no {id_column!r} column")
                        writer.writerow(header)
                    elif head != header:
                        raise InputError(str(src), f"header differs from {splits[0]}.csv's")
                    col = header.index(id_column)
                    for row in reader:
                        if not row:
                            continue
                        writer.writerow(row)
                        pairs.append((row[col], split))
        write_split(dest / "split.csv", pairs)

    return convert


def copy_converter(files: Mapping[str, Path], dest: Path) -> None:
    """Copy the downloaded files as they are (keeping their local names' folders)."""
    for name, src in files.items():
        out = dest / Path(*PurePosixPath(name).parts)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, out)


# --------------------------------------------------------------------------- the registry

_HW_ZIP = RemoteFile(
    url="https://github.com/X-Chen97/cs182project/raw/"
    "b8feb305faec7d9099ab78628b90326947a9ae16/hw_data.zip",
    sha256="2236b147a1059bf3b481ea33b6405c4aa5badca23147fe82df4692e23f0b7143",
    size=1_534_799,
    shared=True,
)
_HW_CITATION = (
    "X-Chen97/cs182project (UC Berkeley CS182 homework data, hw_data.zip); structures and "
    "energies from the Materials Project: Jain et al., APL Mater. 1, 011002 (2013)"
)
_HW_LICENCE = "not stated by the repository; Materials Project data is CC BY 4.0"

_CDVAE_COMMIT = "f857f598d6f6cca5dc1ea0582d228f12dcc2c2ea"
_CDVAE_RAW = f"https://raw.githubusercontent.com/txie-93/cdvae/{_CDVAE_COMMIT}/data"
_CDVAE_CITATION = (
    "Xie, Fu, Ganea, Barzilay, Jaakkola, Crystal Diffusion Variational Autoencoder for Periodic "
    "Material Generation, ICLR 2022"
)


def _cdvae_files(folder: str, sha: Mapping[str, str | None]) -> tuple[RemoteFile, ...]:
    return tuple(
        RemoteFile(
            url=f"{_CDVAE_RAW}/{folder}/{s}.csv", sha256=sha.get(s), name=f"{folder}/{s}.csv"
        )
        for s in ("train", "val", "test")
    )


_CGCNN_COMMIT = "f42ab233c4ee0c416879d6bc2d22a264418413ad"
_CGCNN_RAW = f"https://raw.githubusercontent.com/txie-93/cgcnn/{_CGCNN_COMMIT}/data"
_CGCNN_SAMPLE_IDS = (
    "1000041",
    "1000050",
    "1101051",
    "1507756",
    "7206075",
    "9000046",
    "9009743",
    "9011050",
    "9011998",
    "9012304",
)


def _cgcnn_sample_files() -> tuple[RemoteFile, ...]:
    out = []
    for folder in ("sample-regression", "sample-classification"):
        names = ["id_prop.csv", "atom_init.json", *(f"{i}.cif" for i in _CGCNN_SAMPLE_IDS)]
        out += [RemoteFile(url=f"{_CGCNN_RAW}/{folder}/{n}", name=f"{folder}/{n}") for n in names]
    return tuple(out)


_MATBENCH_URL = "https://ml.materialsproject.org/projects/{task}.json.gz"
_MATBENCH_CITATION = (
    "Dunn, Wang, Ganose, Dopp, Jain, Benchmarking materials property prediction methods: the "
    "Matbench test set and Automatminer reference algorithm, npj Comput. Mater. 6, 138 (2020)"
)
_MATBENCH_LICENCE = "MIT (Matbench); the underlying data keeps its original licences"
_MATBENCH_TASKS: tuple[tuple[str, str, str, int], ...] = (
    (
        "matbench_perovskites",
        "Castelli et al. cubic perovskites (5-atom cells)",
        "e_form: heat of formation (eV/cell)",
        18_928,
    ),
    (
        "matbench_mp_e_form",
        "Materials Project crystals",
        "e_form: formation energy (eV/atom)",
        132_752,
    ),
    ("matbench_mp_gap", "Materials Project crystals", "gap pbe: PBE band gap (eV)", 106_113),
    (
        "matbench_mp_is_metal",
        "Materials Project crystals",
        "is_metal: metal or not (classification)",
        106_113,
    ),
    (
        "matbench_log_gvrh",
        "Materials Project elastic tensors",
        "log10(G_VRH): shear modulus, log10(G_VRH/GPa)",
        10_987,
    ),
    (
        "matbench_log_kvrh",
        "Materials Project elastic tensors",
        "log10(K_VRH): bulk modulus, log10(K_VRH/GPa)",
        10_987,
    ),
    (
        "matbench_phonons",
        "Materials Project DFPT phonons",
        "last phdos peak: highest phonon DOS peak (cm^-1)",
        1_265,
    ),
    (
        "matbench_dielectric",
        "Materials Project DFPT dielectrics",
        "n: refractive index (dimensionless)",
        4_764,
    ),
    (
        "matbench_jdft2d",
        "JARVIS-DFT 2D materials",
        "exfoliation_en: exfoliation energy (meV/atom)",
        636,
    ),
)


def _build_registry() -> dict[str, DatasetInfo]:
    entries = [
        DatasetInfo(
            name="perovskite-energy",
            description="Materials Project perovskites, 5 to 112 atoms per cell (CS182 homework)",
            target="total energy (eV/cell, extensive)",
            size=670,
            files=(_HW_ZIP,),
            citation=_HW_CITATION,
            licence=_HW_LICENCE,
            convert=zip_folder_converter(
                _HW_ZIP.local_name, "hw_data/perovskite_energy", split=True
            ),
            layout="CGCNN folder (id_prop.csv, atom_init.json, ID.cif) + split.csv "
            "(the original code's seed-123 80/10/10 split)",
            homepage="https://github.com/X-Chen97/cs182project",
        ),
        DatasetInfo(
            name="perovskite-bandgap",
            description="the perovskites of perovskite-energy that have a band gap",
            target="band gap (eV)",
            size=332,
            files=(_HW_ZIP,),
            citation=_HW_CITATION,
            licence=_HW_LICENCE,
            convert=perovskite_band_converter(_HW_ZIP.local_name),
            layout="CGCNN folder (id_prop.csv, atom_init.json, ID.cif); upstream's folder holds "
            "the wrong CIFs, so each listed id's CIF is taken from the energy folder",
            homepage="https://github.com/X-Chen97/cs182project",
        ),
        DatasetInfo(
            name="perov5",
            description="Castelli et al. cubic perovskites, 5 atoms per cell (CDVAE perov_5)",
            target="heat_ref (eV/cell); dir_gap, ind_gap (eV)",
            size=18_928,
            files=_cdvae_files(
                "perov_5",
                {
                    "val": "326f401219901270374b71e2faff63df3a29a99fd26f469993b9f476b693daf2",
                    "test": "a85878c685037f0a578257f6d4fcdde00e968dbab73c5f1e90ecef65218513f6",
                },
            ),
            citation="Castelli et al., Energy Environ. Sci. 5, 9034 (2012); " + _CDVAE_CITATION,
            licence="MIT (CDVAE repository)",
            convert=csv_splits_converter("perov5"),
            data="perov5.csv",
            layout="CSV (cif, material_id): train/val/test.csv, combined perov5.csv, split.csv",
            homepage="https://github.com/txie-93/cdvae",
        ),
        DatasetInfo(
            name="carbon24",
            description="carbon allotropes, 6 to 24 atoms per cell (CDVAE carbon_24)",
            target="energy_per_atom (eV/atom)",
            size=10_153,
            files=_cdvae_files(
                "carbon_24",
                {
                    "val": "36c00689cd63073c954a58bc6ed6e2adb7aeed5a630c994970959a1babffd50e",
                    "test": "386b17c08816f434818d51e46687bf72ff3f92348f3ba24823e4758f1fe8a969",
                },
            ),
            citation="Pickard, AIRSS data for carbon at 10GPa, Materials Cloud (2020); "
            + _CDVAE_CITATION,
            licence="MIT (CDVAE repository)",
            convert=csv_splits_converter("carbon24"),
            data="carbon24.csv",
            layout="CSV (cif, material_id): train/val/test.csv, combined carbon24.csv, split.csv",
            homepage="https://github.com/txie-93/cdvae",
        ),
        DatasetInfo(
            name="mp20",
            description="Materials Project crystals with at most 20 atoms per cell (CDVAE mp_20)",
            target="formation_energy_per_atom (eV/atom); band_gap (eV); e_above_hull (eV/atom)",
            size=45_231,
            files=_cdvae_files("mp_20", {}),
            citation="Jain et al., APL Mater. 1, 011002 (2013); " + _CDVAE_CITATION,
            licence="MIT (CDVAE repository); Materials Project data is CC BY 4.0",
            convert=csv_splits_converter("mp20"),
            data="mp20.csv",
            layout="CSV (cif, material_id): train/val/test.csv, combined mp20.csv, split.csv",
            homepage="https://github.com/txie-93/cdvae",
        ),
    ]
    for task, description, target, size in _MATBENCH_TASKS:
        entries.append(
            DatasetInfo(
                name=task,
                description=f"Matbench v0.1 {task}: {description}",
                target=target,
                size=size,
                files=(RemoteFile(url=_MATBENCH_URL.format(task=task)),),
                citation=_MATBENCH_CITATION,
                licence=_MATBENCH_LICENCE,
                convert=copy_converter,
                data=f"{task}.json.gz",
                layout="Matbench gzipped JSON ({index, columns, data}), kept as it is",
                homepage="https://matbench.materialsproject.org",
            )
        )
    entries.append(
        DatasetInfo(
            name="cgcnn-samples",
            description="the original CGCNN examples: sample-regression, sample-classification",
            target="arbitrary numbers / 0-1 labels (examples only)",
            size=10,
            files=_cgcnn_sample_files(),
            citation="Xie and Grossman, Phys. Rev. Lett. 120, 145301 (2018)",
            licence="MIT (txie-93/cgcnn)",
            convert=copy_converter,
            data="sample-regression",
            layout="two CGCNN folders: sample-regression/ (the data path), sample-classification/",
            homepage="https://github.com/txie-93/cgcnn",
        )
    )
    return {e.name: e for e in entries}


#: The registered datasets by name.
REGISTRY: dict[str, DatasetInfo] = _build_registry()


# --------------------------------------------------------------------------- paths and listing


def default_root() -> Path:
    """Where datasets live: ``$CGCNN_DATASETS_ROOT``, else ``$XDG_CACHE_HOME/cgcnn/datasets``,
    else ``~/.cache/cgcnn/datasets``."""
    env = os.environ.get(ENV_ROOT)
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME")
    base = Path(cache).expanduser() if cache else Path.home() / ".cache"
    return base / "cgcnn" / "datasets"


def _root(root: str | os.PathLike | None) -> Path:
    return Path(root).expanduser() if root is not None else default_root()


def get_info(name: str) -> DatasetInfo:
    """The registry entry called ``name``; :class:`InputError` listing the names otherwise."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise InputError(
            name, f"no such dataset; known datasets: {', '.join(sorted(REGISTRY))}"
        ) from None


def is_present(info: DatasetInfo | str, root: str | os.PathLike | None = None) -> bool:
    """Whether the dataset has been fetched completely under ``root``."""
    info = get_info(info) if isinstance(info, str) else info
    return (_root(root) / info.name / COMPLETE_MARKER).is_file()


def dataset_path(info: DatasetInfo | str, root: str | os.PathLike | None = None) -> Path:
    """The path the readers take for a dataset (whether or not it is present)."""
    info = get_info(info) if isinstance(info, str) else info
    folder = _root(root) / info.name
    return folder / info.data if info.data else folder


def list_datasets(root: str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """One row per registered dataset.

    Each row holds ``name``, ``target`` (with its unit), ``size`` (rows), ``source``,
    ``citation``, ``licence``, ``sha256`` (``"pinned"`` or ``"recorded on first download"``),
    ``present`` (bool) and ``path``.
    """
    rows = []
    for info in REGISTRY.values():
        rows.append(
            {
                "name": info.name,
                "target": info.target,
                "size": info.size,
                "source": info.source,
                "citation": info.citation,
                "licence": info.licence,
                "sha256": "pinned" if info.checksums_known else "recorded on first download",
                "present": is_present(info, root),
                "path": str(dataset_path(info, root)),
            }
        )
    return rows


#: the widest a wrapped column of ``cgcnn datasets list`` gets, in characters
_WRAP = {"target": 34, "licence": 24}


def format_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """A plain-text table of :func:`list_datasets` rows (name, rows, local, target, licence),
    its long cells wrapped so that it fits a 100-column terminal."""
    import textwrap

    columns = [("name", "name"), ("size", "rows"), ("present", "local"), ("target", "target")]
    columns.append(("licence", "licence"))

    def cell(row: Mapping[str, Any], key: str) -> list[str]:
        value = row.get(key, "")
        if key == "present":
            return ["yes" if value else "no"]
        if key == "size" and isinstance(value, int):
            return [f"{value:,}"]
        return textwrap.wrap(str(value), _WRAP[key]) or [""] if key in _WRAP else [str(value)]

    table = [[[title] for _, title in columns]] + [[cell(r, k) for k, _ in columns] for r in rows]
    widths = [max(len(text) for line in table for text in line[i]) for i in range(len(columns))]
    right = {1}  # numbers right-aligned
    lines = []
    for j, line in enumerate(table):
        for depth in range(max(len(c) for c in line)):
            texts = [c[depth] if depth < len(c) else "" for c in line]
            parts = [(t.rjust if i in right else t.ljust)(widths[i]) for i, t in enumerate(texts)]
            lines.append("  ".join(parts).rstrip())
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


# --------------------------------------------------------------------------- checksums


def sha256_file(path: str | os.PathLike) -> str:
    """The SHA-256 of a file, hex."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _load_checksums(root: Path) -> dict[str, str]:
    path = root / CHECKSUMS_FILE
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(str(path), f"cannot read recorded checksums ({exc})") from None
    if not isinstance(data, dict):
        raise InputError(str(path), "recorded checksums are not a JSON object")
    return {str(k): str(v) for k, v in data.items()}


def _record_checksum(root: Path, url: str, digest: str) -> None:
    data = _load_checksums(root)
    data[url] = digest
    fd, tmp = tempfile.mkstemp(dir=root, prefix=".checksums-", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1, sort_keys=True)
        fh.write("\n")
    os.replace(tmp, root / CHECKSUMS_FILE)


def _expected(root: Path, remote: RemoteFile) -> tuple[str | None, str]:
    """The expected checksum and where it comes from (``registry`` / ``recorded``)."""
    if remote.sha256:
        return remote.sha256.lower(), "registry"
    return _load_checksums(root).get(remote.url), f"recorded in {root / CHECKSUMS_FILE}"


# --------------------------------------------------------------------------- downloading


def _progress_bar(total: int | None, desc: str, progress: bool) -> Any:
    from tqdm import tqdm

    enabled = progress and sys.stderr.isatty()
    return tqdm(
        total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024, disable=not enabled
    )


def _offline_hint(remote: RemoteFile) -> str:
    return (
        f"check the network, or set {ENV_MIRROR}=DIR to a folder holding {remote.local_name}"
        if "/" not in remote.local_name
        else f"check the network, or set {ENV_MIRROR}=DIR to a folder holding "
        f"{remote.local_name} (or {url_basename(remote.url)})"
    )


def download(
    remote: RemoteFile,
    dest: str | os.PathLike,
    *,
    progress: bool = True,
    timeout: float | None = None,
) -> str:
    """Download ``remote.url`` to ``dest`` through a temporary file; return its SHA-256.

    The file appears at ``dest`` only when the transfer is complete.  Any failure (no network,
    a timeout, an HTTP error, a transfer shorter than its ``Content-Length``) raises a
    one-line :class:`InputError` and leaves nothing behind.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    timeout = TIMEOUT if timeout is None else timeout
    url = remote.url
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = Path(tmp_name)
    digest = hashlib.sha256()
    received = 0
    try:
        with os.fdopen(fd, "wb") as out:
            request = urllib.request.Request(url, headers={"User-Agent": "cgcnn-datasets"})
            with urllib.request.urlopen(request, timeout=timeout) as resp:
                length = resp.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
                with _progress_bar(total, remote.local_name, progress) as bar:
                    while True:
                        chunk = resp.read(_CHUNK)
                        if not chunk:
                            break
                        out.write(chunk)
                        digest.update(chunk)
                        received += len(chunk)
                        bar.update(len(chunk))
        if total is not None and received < total:
            raise InputError(
                url, f"download truncated: received {received} of {total} bytes; try again"
            )
        os.replace(tmp, dest)
    except InputError:
        tmp.unlink(missing_ok=True)
        raise
    except urllib.error.HTTPError as exc:
        tmp.unlink(missing_ok=True)
        raise InputError(url, f"download failed: HTTP {exc.code} {exc.reason}") from None
    except http.client.IncompleteRead as exc:
        tmp.unlink(missing_ok=True)
        got = received + len(exc.partial or b"")
        expected = f" of {got + exc.expected}" if exc.expected is not None else ""
        raise InputError(
            url, f"download truncated: received {got}{expected} bytes; try again"
        ) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
        tmp.unlink(missing_ok=True)
        reason = getattr(exc, "reason", None) or exc
        if isinstance(reason, socket.timeout | TimeoutError):
            reason = f"no answer within {timeout:g} s"
        raise InputError(
            None, f"cannot download {url} ({reason}); {_offline_hint(remote)}"
        ) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return digest.hexdigest()


def _mirror_file(mirror: Path, remote: RemoteFile) -> Path:
    for candidate in (remote.local_name, url_basename(remote.url)):
        path = mirror / Path(*PurePosixPath(candidate).parts)
        if path.is_file():
            return path
    raise InputError(
        str(mirror / remote.local_name),
        f"not found in the mirror folder {ENV_MIRROR}={mirror}; put {url_basename(remote.url)} "
        f"(from {remote.url}) there, or unset {ENV_MIRROR} to download it",
    )


def _verify(root: Path, remote: RemoteFile, path: Path, digest: str, *, delete: bool) -> None:
    expected, origin = _expected(root, remote)
    if expected is None:
        _record_checksum(root, remote.url, digest)
        return
    if digest != expected:
        if delete:
            path.unlink(missing_ok=True)
        raise InputError(
            str(path),
            f"checksum mismatch: expected sha256 {expected} ({origin}), got {digest}"
            + ("; the file was deleted" if delete else ""),
        )


def _obtain(root: Path, remote: RemoteFile, progress: bool) -> Path:
    """The verified local copy of one file: from the mirror, the download cache or the net."""
    mirror = os.environ.get(ENV_MIRROR)
    if mirror:
        path = _mirror_file(Path(mirror).expanduser(), remote)
        _verify(root, remote, path, sha256_file(path), delete=False)
        return path
    dest = root / DOWNLOADS_DIR / Path(*PurePosixPath(remote.local_name).parts)
    if dest.is_file():
        expected, _ = _expected(root, remote)
        if expected is not None and sha256_file(dest) == expected:
            return dest
        dest.unlink()
    digest = download(remote, dest, progress=progress)
    _verify(root, remote, dest, digest, delete=True)
    return dest


def fetch_info(
    info: DatasetInfo, root: str | os.PathLike | None = None, *, progress: bool = True
) -> Path:
    """Fetch the dataset described by ``info`` (see :func:`fetch`)."""
    root_p = _root(root)
    folder = root_p / info.name
    if (folder / COMPLETE_MARKER).is_file():
        return dataset_path(info, root_p)
    if folder.exists():
        raise InputError(
            str(folder), "exists but is not a complete download; remove it and fetch again"
        )
    try:
        root_p.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(str(root_p), f"cannot create the datasets folder ({exc})") from None
    files = {remote.local_name: _obtain(root_p, remote, progress) for remote in info.files}
    staging = Path(tempfile.mkdtemp(dir=root_p, prefix=f".{info.name}.", suffix=".partial"))
    downloads = root_p / DOWNLOADS_DIR
    try:
        try:
            info.convert(files, staging)
        except InputError:  # a verified file that cannot be used: do not keep it around
            for path in files.values():
                if downloads in path.parents:
                    path.unlink(missing_ok=True)
            raise
        marker = {
            "name": info.name,
            "fetched": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "files": {r.url: sha256_file(files[r.local_name]) for r in info.files},
        }
        (staging / COMPLETE_MARKER).write_text(json.dumps(marker, indent=1) + "\n")
        try:
            staging.rename(folder)
        except OSError:
            if not (folder / COMPLETE_MARKER).is_file():  # not a concurrent fetch that won
                raise
    except OSError as exc:
        raise InputError(str(folder), f"cannot write the dataset ({exc})") from None
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    for remote in info.files:
        path = files[remote.local_name]
        if not remote.shared and downloads in path.parents:
            path.unlink(missing_ok=True)
    return dataset_path(info, root_p)


def fetch(name: str, root: str | os.PathLike | None = None, *, progress: bool = True) -> Path:
    """Download, verify and convert the registered dataset ``name``; return its data path.

    Idempotent: a dataset already present is not touched.  Files are read from
    ``$CGCNN_DATASETS_MIRROR`` instead when it is set.  A shared archive (``hw_data.zip``) is
    kept in ``ROOT/.downloads`` so that its second dataset needs no download.

    Raises:
        InputError: an unknown name, no network, an HTTP error, a truncated transfer, a
            checksum mismatch, an unsafe archive or a missing mirror file (one line each).
    """
    return fetch_info(get_info(name), root, progress=progress)


def registry_units(data: Any, target_names: Sequence[str]) -> list[str]:
    """The units of ``target_names`` when ``data`` is a registered data set (its name, or the
    path it is fetched to under any root), from its entry's ``target`` (``"heat_ref
    (eV/cell); dir_gap, ind_gap (eV)"``); ``""`` where unknown.  A lone target takes the unit
    of a lone entry whatever its column is called (a CGCNN folder names it ``target``)."""
    unknown = ["" for _ in target_names]
    if not isinstance(data, str | os.PathLike):
        return unknown
    path = Path(data)
    info = REGISTRY.get(str(data))
    if info is None:
        for candidate in REGISTRY.values():
            data_dir = PurePosixPath(candidate.name, candidate.data or ".")
            if path.parts[-len(data_dir.parts) :] == data_dir.parts:
                info = candidate
                break
    if info is None:
        return unknown
    groups = []  # (names, unit) of each "names (unit)" group
    for group in info.target.split(";"):
        match = re.fullmatch(r"\s*(.*?)\s*\(([^()]*)\)\s*", group)
        if not match:
            continue
        unit = match.group(2).split(",")[0].strip()
        if unit and " " not in unit:  # "(examples only)" is no unit
            groups.append(([n.strip() for n in match.group(1).split(",")], unit))
    if len(groups) == 1 and len(target_names) == 1:
        return [groups[0][1]]
    by_name = {name: unit for names, unit in groups for name in names}
    return [by_name.get(name, "") for name in target_names]


def resolve_data(arg: Any, root: str | os.PathLike | None = None) -> Any:
    """Turn a ``DATA`` argument into what the readers take.

    An existing path is returned as it is; a registered dataset name is fetched if needed and
    its data path returned (e.g. ``ROOT/perovskite-energy``); anything else is returned
    unchanged (the readers report it).
    """
    if isinstance(arg, str | os.PathLike):
        if Path(arg).exists():
            return arg
        if isinstance(arg, str) and arg in REGISTRY:
            return fetch(arg, root)
    return arg
