"""The dataset registry: real downloads against a local HTTP server, checksums, safe zips.

No test touches the internet: every URL is pointed at a server on 127.0.0.1 (port 0) that
serves bytes the test made, or files are read from the shared mirror folder.
"""

from __future__ import annotations

import csv
import hashlib
import http.server
import io
import json
import os
import re
import socket
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from cgcnn import datasets
from cgcnn.datasets import DatasetInfo, RemoteFile
from cgcnn.errors import InputError
from conftest import GOOD_CIF, make_cif

SHARED = Path(__file__).resolve().parents[2] / "shared"
MIRROR = SHARED / "mirror"
SPLIT_REFERENCE = SHARED / "data" / "perovskite-energy-split.csv"


# --------------------------------------------------------------------------- local server


class _Server:
    """A threaded HTTP server serving ``files`` (path -> bytes) and a few failure modes.

    ``/truncated/...`` announces more bytes than it sends and closes; ``/error500/...``
    answers 500; ``/stall/...`` accepts and never answers; anything unknown is 404.
    """

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.hits: dict[str, int] = {}
        self.stop = threading.Event()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep pytest output clean
                pass

            def do_GET(self) -> None:
                server.hits[self.path] = server.hits.get(self.path, 0) + 1
                if self.path.startswith("/stall/"):
                    server.stop.wait(10)
                    return
                if self.path.startswith("/error500/"):
                    self.send_error(500, "Internal Server Error")
                    return
                if self.path.startswith("/truncated/"):
                    self.send_response(200)
                    self.send_header("Content-Length", "100000")
                    self.end_headers()
                    self.wfile.write(b"x" * 1000)
                    self.wfile.flush()
                    self.close_connection = True
                    return
                data = server.files.get(self.path)
                if data is None:
                    self.send_error(404, "Not Found")
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def add(self, path: str, data: bytes) -> RemoteFile:
        """Serve ``data`` at ``path``; a RemoteFile with its correct checksum."""
        self.files[path] = data
        return RemoteFile(url=self.base + path, sha256=hashlib.sha256(data).hexdigest())

    def close(self) -> None:
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Server]:
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.delenv(datasets.ENV_MIRROR, raising=False)
    srv = _Server()
    yield srv
    srv.close()


def _zip(entries: dict[str, bytes | str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in entries.items():
            zf.writestr(zipfile.ZipInfo(name), data)
    return buf.getvalue()


def _cgcnn_zip(prefix: str = "data/set") -> bytes:
    """A zip holding a CGCNN folder under ``prefix`` plus macOS junk."""
    return _zip(
        {
            f"{prefix}/id_prop.csv": "a,1.0\nb,2.0\nc,3.0\n",
            f"{prefix}/a.cif": GOOD_CIF,
            f"{prefix}/b.cif": make_cif(a=3.95),
            f"{prefix}/c.cif": make_cif(a=4.0),
            f"{prefix}/.DS_Store": b"\0\0junk",
            f"__MACOSX/{prefix}/._a.cif": b"resource fork",
            "__MACOSX/._data": b"resource fork",
            "data/other.txt": "not extracted",
        }
    )


def _info(remote: RemoteFile | tuple[RemoteFile, ...], convert=None, **kw) -> DatasetInfo:
    files = remote if isinstance(remote, tuple) else (remote,)
    if convert is None:
        convert = datasets.zip_folder_converter(files[0].local_name, "data/set")
    return DatasetInfo(
        name=kw.pop("name", "toy"),
        description="a toy set",
        target="y (eV)",
        size=3,
        files=files,
        citation="nobody",
        licence="CC0",
        convert=convert,
        **kw,
    )


def _leftovers(root: Path) -> list[str]:
    """Files (not folders) under root apart from recorded checksums."""
    if not root.exists():
        return []
    return sorted(
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and p.name != datasets.CHECKSUMS_FILE
    )


# --------------------------------------------------------------------------- downloads


def test_fetch_good_checksum_extracts_skips_junk_and_is_idempotent(
    server: _Server, tmp_path: Path
) -> None:
    remote = server.add("/v1/set.zip", _cgcnn_zip())
    info = _info(remote)
    root = tmp_path / "root"
    path = datasets.fetch_info(info, root, progress=False)
    assert path == root / "toy"
    assert sorted(p.name for p in path.iterdir()) == [
        ".complete",
        "a.cif",
        "b.cif",
        "c.cif",
        "id_prop.csv",
    ]
    assert not (root / "__MACOSX").exists() and not (path / "__MACOSX").exists()
    assert datasets.is_present(info, root)
    # a non-shared download is not kept once the dataset is built
    assert _leftovers(root / datasets.DOWNLOADS_DIR) == []
    # the readers take the result
    from cgcnn.io import iter_structures

    records = list(iter_structures(path))
    assert [r.id for r in records] == ["a", "b", "c"]
    assert all(r.error is None for r in records)

    # second fetch: nothing downloaded, nothing changed
    marker = (path / ".complete").read_bytes()
    assert datasets.fetch_info(info, root, progress=False) == path
    assert server.hits["/v1/set.zip"] == 1
    assert (path / ".complete").read_bytes() == marker


def test_shared_archive_is_kept_and_reused(server: _Server, tmp_path: Path) -> None:
    remote = replace(server.add("/shared/set.zip", _cgcnn_zip()), shared=True)
    one = _info(remote, name="one")
    two = _info(remote, name="two")
    datasets.fetch_info(one, tmp_path, progress=False)
    datasets.fetch_info(two, tmp_path, progress=False)
    assert server.hits["/shared/set.zip"] == 1
    assert (tmp_path / datasets.DOWNLOADS_DIR / "set.zip").is_file()
    assert (tmp_path / "two" / "a.cif").is_file()


def test_bad_checksum_is_refused_and_deleted(server: _Server, tmp_path: Path) -> None:
    remote = replace(server.add("/bad/set.zip", _cgcnn_zip()), sha256="0" * 64)
    got = hashlib.sha256(server.files["/bad/set.zip"]).hexdigest()
    with pytest.raises(InputError) as err:
        datasets.fetch_info(_info(remote), tmp_path, progress=False)
    message = str(err.value)
    assert "checksum mismatch" in message and "0" * 64 in message and got in message
    assert "\n" not in message
    assert _leftovers(tmp_path) == []
    assert not (tmp_path / "toy").exists()


def test_unknown_checksum_is_recorded_then_enforced(server: _Server, tmp_path: Path) -> None:
    remote = replace(server.add("/unknown/set.zip", _cgcnn_zip()), sha256=None)
    info = _info(remote)
    datasets.fetch_info(info, tmp_path, progress=False)
    recorded = json.loads((tmp_path / ".checksums.json").read_text())
    assert recorded == {remote.url: hashlib.sha256(server.files["/unknown/set.zip"]).hexdigest()}

    # upstream changes: a new fetch is verified against the recorded checksum
    import shutil

    shutil.rmtree(tmp_path / "toy")
    server.files["/unknown/set.zip"] = _cgcnn_zip() + b"changed"
    with pytest.raises(InputError, match="checksum mismatch.*recorded"):
        datasets.fetch_info(info, tmp_path, progress=False)
    assert not (tmp_path / "toy").exists()


def test_truncated_transfer_is_an_error_and_leaves_nothing(server: _Server, tmp_path: Path) -> None:
    remote = RemoteFile(url=server.base + "/truncated/set.zip", sha256=None)
    with pytest.raises(InputError, match="truncated") as err:
        datasets.fetch_info(_info(remote), tmp_path, progress=False)
    assert "\n" not in str(err.value)
    assert _leftovers(tmp_path) == []
    assert not (tmp_path / ".checksums.json").exists()  # nothing recorded for a bad transfer


@pytest.mark.parametrize(("path", "code"), [("/error500/set.zip", 500), ("/missing.zip", 404)])
def test_http_errors_are_clear(server: _Server, tmp_path: Path, path: str, code: int) -> None:
    remote = RemoteFile(url=server.base + path, sha256="0" * 64)
    with pytest.raises(InputError, match=f"HTTP {code}") as err:
        datasets.fetch_info(_info(remote), tmp_path, progress=False)
    assert remote.url in str(err.value) and "\n" not in str(err.value)
    assert _leftovers(tmp_path) == []


def test_offline_fails_fast_with_one_line(server: _Server, tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nobody listens on it
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    remote = RemoteFile(url=f"http://127.0.0.1:{port}/hw_data.zip", sha256="0" * 64)
    start = time.monotonic()
    with pytest.raises(InputError) as err:
        datasets.fetch_info(_info(remote), tmp_path, progress=False)
    assert time.monotonic() - start < 5
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"cannot download {remote.url} (")
    assert "CGCNN_DATASETS_MIRROR=DIR" in message and "hw_data.zip" in message
    assert _leftovers(tmp_path) == []


def test_stalled_server_times_out(
    server: _Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(datasets, "TIMEOUT", 0.5)
    remote = RemoteFile(url=server.base + "/stall/set.zip", sha256="0" * 64)
    start = time.monotonic()
    with pytest.raises(InputError, match=r"no answer within 0\.5 s.*CGCNN_DATASETS_MIRROR"):
        datasets.fetch_info(_info(remote), tmp_path, progress=False)
    assert time.monotonic() - start < 5
    assert _leftovers(tmp_path) == []


# --------------------------------------------------------------------------- safe zips


@pytest.mark.parametrize(
    "evil",
    ["../evil.txt", "data/set/../../../evil.txt", "/tmp/evil-abs.txt", "C:/evil.txt"],
)
def test_zip_escaping_the_folder_is_refused(server: _Server, tmp_path: Path, evil: str) -> None:
    data = _zip({"data/set/id_prop.csv": "a,1\n", "data/set/a.cif": GOOD_CIF, evil: "pwned"})
    remote = server.add("/evil/set.zip", data)
    root = tmp_path / "deep" / "root"
    with pytest.raises(InputError, match="refusing archive entry") as err:
        datasets.fetch_info(_info(remote), root, progress=False)
    assert "\n" not in str(err.value)
    assert not (root / "toy").exists()
    assert [p for p in tmp_path.rglob("evil*")] == []
    assert not Path("/tmp/evil-abs.txt").exists()
    assert _leftovers(root) == []


def test_extract_zip_directly(tmp_path: Path) -> None:
    archive = tmp_path / "a.zip"
    archive.write_bytes(_cgcnn_zip("top/inner"))
    assert datasets.extract_zip(archive, tmp_path / "out", "top/inner") == 4
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "a.cif",
        "b.cif",
        "c.cif",
        "id_prop.csv",
    ]
    # without a prefix the whole tree is kept, still without the macOS junk
    assert datasets.extract_zip(archive, tmp_path / "all") == 5
    assert (tmp_path / "all" / "data" / "other.txt").is_file()
    assert not (tmp_path / "all" / "__MACOSX").exists()
    with pytest.raises(InputError, match="no files under"):
        datasets.extract_zip(archive, tmp_path / "none", "absent")
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"not a zip")
    with pytest.raises(InputError, match="not a valid zip"):
        datasets.extract_zip(bad, tmp_path / "x")


# --------------------------------------------------------------------------- CSV splits


def _cdvae_csv(ids: list[str]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["", "material_id", "cif", "heat_ref"])
    for k, rid in enumerate(ids):
        writer.writerow([k, rid, make_cif(a=3.9 + 0.01 * k, name=rid), 0.1 * k])
    return buf.getvalue().encode()


def test_csv_splits_are_combined(server: _Server, tmp_path: Path) -> None:
    parts = {"train": ["t1", "t2", "t3"], "val": ["v1"], "test": ["s1", "s2"]}
    files = []
    for split, ids in parts.items():
        remote = server.add(f"/cdvae/perov_5/{split}.csv", _cdvae_csv(ids))
        files.append(replace(remote, name=f"perov_5/{split}.csv", sha256=None))
    info = _info(tuple(files), datasets.csv_splits_converter("toy"), data="toy.csv")
    path = datasets.fetch_info(info, tmp_path, progress=False)
    assert path == tmp_path / "toy" / "toy.csv"
    for split in parts:
        assert (tmp_path / "toy" / f"{split}.csv").is_file()
    with open(tmp_path / "toy" / "split.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["id", "split"]
    assert rows[1:] == [[i, s] for s, ids in parts.items() for i in ids]
    from cgcnn.io import iter_structures

    records = list(iter_structures(path, target="heat_ref"))
    assert [r.id for r in records] == ["t1", "t2", "t3", "v1", "s1", "s2"]
    assert all(r.error is None for r in records)
    assert len(json.loads((tmp_path / ".checksums.json").read_text())) == 3


# --------------------------------------------------------------------------- mirror


def test_mirror_missing_file_is_clear(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(datasets.ENV_MIRROR, str(tmp_path / "mirror"))
    with pytest.raises(InputError, match="not found in the mirror folder") as err:
        datasets.fetch("perovskite-energy", tmp_path / "root", progress=False)
    assert "hw_data.zip" in str(err.value) and "\n" not in str(err.value)


def test_mirror_checksum_is_verified(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "hw_data.zip").write_bytes(_cgcnn_zip())
    monkeypatch.setenv(datasets.ENV_MIRROR, str(mirror))
    with pytest.raises(InputError, match="checksum mismatch"):
        datasets.fetch("perovskite-energy", tmp_path / "root", progress=False)
    assert (mirror / "hw_data.zip").is_file()  # a mirror file is never deleted
    assert not (tmp_path / "root" / "perovskite-energy").exists()


@pytest.mark.skipif(not (MIRROR / "hw_data.zip").is_file(), reason=f"no {MIRROR}/hw_data.zip")
def test_perovskite_energy_from_mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(datasets.ENV_MIRROR, str(MIRROR))
    root = tmp_path / "root"
    path = datasets.fetch("perovskite-energy", root, progress=False)
    assert path == root / "perovskite-energy"
    with open(path / "id_prop.csv", newline="") as fh:
        ids = [row[0] for row in csv.reader(fh) if row]
    assert len(ids) == 670
    assert all((path / f"{i}.cif").is_file() for i in ids)
    assert not any(p.name.startswith("._") or p.name == ".DS_Store" for p in path.iterdir())
    if SPLIT_REFERENCE.is_file():
        assert (path / "split.csv").read_bytes() == SPLIT_REFERENCE.read_bytes()
    with open(path / "split.csv", newline="") as fh:
        counts = {}
        for row in list(csv.reader(fh))[1:]:
            counts[row[1]] = counts.get(row[1], 0) + 1
    assert counts == {"train": 536, "val": 67, "test": 67}

    # second fetch: a no-op that needs neither the mirror nor the network
    monkeypatch.delenv(datasets.ENV_MIRROR)
    monkeypatch.setattr(datasets, "download", _no_download)
    before = {p: p.stat().st_mtime_ns for p in path.iterdir()}
    assert datasets.fetch("perovskite-energy", root, progress=False) == path
    assert {p: p.stat().st_mtime_ns for p in path.iterdir()} == before
    assert datasets.resolve_data("perovskite-energy", root) == path
    rows = {r["name"]: r for r in datasets.list_datasets(root)}
    assert rows["perovskite-energy"]["present"] and not rows["perovskite-bandgap"]["present"]

    # the band-gap set comes out of the same archive
    monkeypatch.setenv(datasets.ENV_MIRROR, str(MIRROR))
    band = datasets.fetch("perovskite-bandgap", root, progress=False)
    with open(band / "id_prop.csv", newline="") as fh:
        band_ids = [row[0] for row in csv.reader(fh) if row]
    # upstream lists 332 ids but ships other CIFs: each listed id gets its CIF, nothing else
    assert len(band_ids) == 332
    assert sorted(p.stem for p in band.glob("*.cif")) == sorted(band_ids)
    from cgcnn.io import iter_structures

    assert all(r.error is None for r in iter_structures(band))


@pytest.mark.skipif(not SPLIT_REFERENCE.is_file(), reason=f"no {SPLIT_REFERENCE}")
def test_original_split_matches_reference() -> None:
    id_prop = SHARED / "data" / "perovskite-energy" / "id_prop.csv"
    if not id_prop.is_file():
        pytest.skip(f"no {id_prop}")
    with open(SPLIT_REFERENCE, newline="") as fh:
        reference = [tuple(row) for row in list(csv.reader(fh))[1:]]
    assert datasets.original_cgcnn_split(id_prop) == reference


def _no_download(*args: object, **kwargs: object) -> str:
    raise AssertionError("no download expected")


# --------------------------------------------------------------------------- registry, API


def test_registry_entries_are_complete() -> None:
    expected = {
        "perovskite-energy",
        "perovskite-bandgap",
        "perov5",
        "carbon24",
        "mp20",
        "cgcnn-samples",
        *(
            f"matbench_{t}"
            for t in (
                "perovskites",
                "mp_e_form",
                "mp_gap",
                "mp_is_metal",
                "log_gvrh",
                "log_kvrh",
                "phonons",
                "dielectric",
                "jdft2d",
            )
        ),
    }
    assert set(datasets.REGISTRY) == expected
    for name, info in datasets.REGISTRY.items():
        assert info.name == name and info.size > 0 and info.files
        assert info.target and info.citation and info.licence and info.description
        names = [f.local_name for f in info.files]
        assert len(set(names)) == len(names), name
        for remote in info.files:
            assert remote.url.startswith("https://"), remote.url
            assert remote.sha256 is None or re.fullmatch(r"[0-9a-f]{64}", remote.sha256)
            if "github" in remote.url:  # pinned to a commit
                assert re.search(r"/[0-9a-f]{40}/", remote.url), remote.url
    assert datasets.REGISTRY["perovskite-energy"].files[0].sha256 == (
        "2236b147a1059bf3b481ea33b6405c4aa5badca23147fe82df4692e23f0b7143"
    )
    samples = [f.local_name for f in datasets.REGISTRY["cgcnn-samples"].files]
    assert len(samples) == 24 and "sample-classification/9012304.cif" in samples
    local = SHARED / "data" / "sample-regression"
    if local.is_dir():
        assert {f"sample-regression/{p.name}" for p in local.iterdir()} <= set(samples)


def test_list_and_table(tmp_path: Path) -> None:
    rows = datasets.list_datasets(tmp_path)
    assert len(rows) == len(datasets.REGISTRY)
    keys = {"name", "target", "size", "source", "citation", "licence", "present", "sha256"}
    assert all(keys <= set(r) for r in rows)
    assert not any(r["present"] for r in rows)
    perov5 = next(r for r in rows if r["name"] == "perov5")
    assert perov5["sha256"] == "recorded on first download" and "eV/cell" in perov5["target"]
    table = datasets.format_table(rows)
    lines = table.splitlines()
    assert lines[0].split()[:3] == ["name", "rows", "local"]
    starts = [line.split()[0] for line in lines[2:] if line and not line.startswith(" ")]
    assert starts == [r["name"] for r in rows]  # one row each, long cells wrapped below it
    assert any(line.startswith("matbench_mp_gap") and "106,113" in line for line in lines)
    assert max(len(line) for line in lines) <= 100  # fits a terminal
    assert " ".join(" ".join(lines).split()).count("Materials Project data is CC BY 4.0") >= 1


def test_default_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CGCNN_DATASETS_ROOT", str(tmp_path / "r"))
    assert datasets.default_root() == tmp_path / "r"
    monkeypatch.delenv("CGCNN_DATASETS_ROOT")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert datasets.default_root() == tmp_path / "xdg" / "cgcnn" / "datasets"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert datasets.default_root() == Path.home() / ".cache" / "cgcnn" / "datasets"


def test_unknown_name_and_incomplete_folder(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such dataset; known datasets: .*perov5"):
        datasets.fetch("nope", tmp_path)
    (tmp_path / "perov5").mkdir()
    with pytest.raises(InputError, match="not a complete download"):
        datasets.fetch("perov5", tmp_path)


def test_resolve_data(server: _Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    existing = tmp_path / "here.csv"
    existing.write_text("x")
    assert datasets.resolve_data(str(existing), tmp_path) == str(existing)
    assert datasets.resolve_data(existing, tmp_path) == existing
    assert datasets.resolve_data("not-a-dataset-or-path", tmp_path) == "not-a-dataset-or-path"
    obj = object()
    assert datasets.resolve_data(obj, tmp_path) is obj

    info = _info(server.add("/resolve/set.zip", _cgcnn_zip()), name="toy-set")
    monkeypatch.setitem(datasets.REGISTRY, "toy-set", info)
    root = tmp_path / "root"
    monkeypatch.chdir(tmp_path)
    assert datasets.resolve_data("toy-set", root) == root / "toy-set"
    assert (root / "toy-set" / "id_prop.csv").is_file()


def test_module_does_not_import_torch() -> None:
    import subprocess
    import sys

    code = "import sys, cgcnn.datasets; print('torch' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ
    )
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize(
    ("data", "names", "units"),
    [
        ("perovskite-energy", ["target"], ["eV/cell"]),  # one target, whatever its name
        ("perov5", ["heat_ref", "ind_gap", "other"], ["eV/cell", "eV", ""]),
        ("/somewhere/datasets/perovskite-energy", ["target"], ["eV/cell"]),
        ("/root/perov5/perov5.csv", ["heat_ref"], ["eV/cell"]),  # the path it is fetched to
        ("cgcnn-samples", ["target"], [""]),  # "(examples only)" is no unit
        ("/my/own/data.csv", ["energy"], [""]),
    ],
)
def test_units_come_from_the_registry(data, names, units):
    from cgcnn.datasets import REGISTRY, registry_units

    for name in ("perovskite-energy", "perov5", "cgcnn-samples"):
        assert name in REGISTRY, f"{name} is no longer registered: update this test"
    assert registry_units(data, names) == units
