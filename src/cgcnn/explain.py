"""Which atoms make a prediction: per-site contributions by element and crystallographic
role, drawn on the periodic table, on one crystal, and a map of the crystal embeddings.

:func:`explain` (``cgcnn explain CKPT DATA --out DIR``) reads a trained model
(:func:`cgcnn.load`) and structures, and writes into ``DIR``:

* ``contributions.csv``: one row per site (:meth:`~cgcnn.inference.TrainedModel.contributions`
  with a ``role`` column);
* ``element_contributions.csv``: mean, standard deviation and count of the contributions per
  crystallographic role and element;
* ``periodic_table_<role>.png``: the mean contribution of each element in that role on the
  periodic table;
* ``crystal_<id>.png``: one crystal's sites in 3-D, coloured by their contribution;
* ``embedding_map.png``: the crystal vectors projected on their first two principal
  components, coloured by the target (or the prediction), the test crystals marked.

Contributions exist for models whose prediction is the mean (``--readout site``) or the sum
(``--extensive``) of one value per site; for any other model only the embedding map is drawn,
and the summary says why in one line.

Roles (:func:`site_roles`) come from each structure, not from lists of elements: the anions
are its non-metallic elements; in a crystal of ABX3 stoichiometry, a cation whose six
nearest anions form an octahedron well separated from the next anion is a B site, and a
cation with at least eight anions within the A-site cage (√2 times the B-X distance, plus
25 %) is an A site.  A crystal whose cations do not all fall into these two classes, half and
half, is not perovskite-like: its sites get the role ``site``.
"""

from __future__ import annotations

import csv
import math
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from cgcnn.errors import InputError
from cgcnn.files import atomic_write, make_folder

#: the roles, in the order their figures are listed
ROLES = ("A", "B", "X", "site")
#: how figures and summaries name them
ROLE_NAMES = {
    "A": "A site",
    "B": "B site",
    "X": "anion (X site)",
    "site": "sites of non-perovskite crystals",
}

#: around a B cation the seventh-nearest anion lies at least this much farther than the sixth
#: (ideal cubic perovskite: √3 = 1.73)
OCTAHEDRON_GAP = 1.25
#: each of the six anions of an octahedron has one at ≥ 135° across their centre (ideal: 180°)
OPPOSITE_ANGLE = 135.0
#: the A-site cage: anions within this multiple of the mean B-X distance (ideal A-X: √2 = 1.41)
A_CAGE = 1.25 * math.sqrt(2.0)
#: the fewest anions an A site holds in its cage (ideal cubic: 12; tilted GdFeO3-type: 8)
A_MIN_ANIONS = 8

#: crystals read, featurized and run through the model at a time
BATCH = 256
#: crystal figures: the marker of each role, and up to how many sites each gets a full label
_ROLE_MARKERS = {"A": "o", "B": "s", "X": "^", "site": "o"}
_LABELLED_SITES = 12


# --------------------------------------------------------------------------- roles


def anion_elements(structure: Any) -> set[str]:
    """The anion elements of a pymatgen ``Structure``: its non-metallic elements (neither
    metal, metalloid nor noble gas in pymatgen's ``Element``); when it has none, or nothing
    else, its most electronegative element."""
    elements = structure.composition.elements
    nonmetals = {e.symbol for e in elements if not (e.is_metal or e.is_metalloid or e.is_noble_gas)}
    if nonmetals and len(nonmetals) < len(elements):
        return nonmetals
    return {max(elements, key=lambda e: e.X if math.isfinite(e.X) else -1.0).symbol}


def site_roles(structure: Any) -> list[str]:
    """The role of each site of a pymatgen ``Structure``: ``"A"``, ``"B"``, ``"X"`` for an
    ABX3 perovskite-like crystal, else ``"site"`` for every site (see the module docstring).

    The structure is perovskite-like when its anions (:func:`anion_elements`) are three
    fifths of its sites, half of its cations have an octahedral first shell of six anions
    (:data:`OCTAHEDRON_GAP`, :data:`OPPOSITE_ANGLE`) and the other half hold at least
    :data:`A_MIN_ANIONS` anions within :data:`A_CAGE` times the mean B-X distance.  Neighbours
    come from pymatgen's ``Structure.get_neighbor_list`` (periodic images included).
    """
    n = len(structure)
    symbols = [site.specie.symbol for site in structure]
    anions = anion_elements(structure)
    is_anion = np.array([s in anions for s in symbols])
    cations = np.flatnonzero(~is_anion)
    n_cations = len(cations)
    if n_cations < 2 or n_cations % 2 or 2 * int(is_anion.sum()) != 3 * n_cations:
        return ["site"] * n
    shells = _anion_shells(structure, is_anion, cations)
    b_sites = [i for i in cations if _octahedral(*shells[i])]
    if len(b_sites) != n_cations // 2:
        return ["site"] * n
    b_x = float(np.mean([shells[i][0][:6].mean() for i in b_sites]))
    a_sites = [
        i
        for i in cations
        if i not in b_sites and int((shells[i][0] <= A_CAGE * b_x).sum()) >= A_MIN_ANIONS
    ]
    if len(a_sites) != n_cations // 2:
        return ["site"] * n
    roles = ["X" if anion else "" for anion in is_anion]
    for i in b_sites:
        roles[i] = "B"
    for i in a_sites:
        roles[i] = "A"
    return roles


def _anion_shells(
    structure: Any, is_anion: np.ndarray, cations: np.ndarray
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Per cation: the distances (sorted) and Cartesian vectors to its anion neighbours,
    within a radius grown until every cation has seven anions and its whole A-site cage."""
    import warnings

    radius = 6.0
    while True:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            centres, points, images, distances = structure.get_neighbor_list(radius)
        lattice = structure.lattice.matrix
        frac = structure.frac_coords
        shells = {}
        for i in cations:
            keep = np.flatnonzero((centres == i) & is_anion[points])
            keep = keep[np.argsort(distances[keep], kind="stable")]
            vectors = (frac[points[keep]] + images[keep] - frac[i]) @ lattice
            shells[int(i)] = (distances[keep], vectors)
        enough = all(len(d) >= 7 for d, _ in shells.values())
        widest = max((d[5] for d, _ in shells.values() if len(d) >= 6), default=radius)
        if (enough and radius >= A_CAGE * widest) or radius >= 24.0:
            return shells
        radius *= 1.5


def _octahedral(distances: np.ndarray, vectors: np.ndarray) -> bool:
    """Whether the six nearest anions form an octahedron: three pairs of opposite corners
    about their centre, and the next anion clearly farther."""
    if len(distances) < 6:
        return False
    if len(distances) > 6 and distances[6] < OCTAHEDRON_GAP * distances[5]:
        return False
    corners = vectors[:6] - vectors[:6].mean(axis=0)
    lengths = np.linalg.norm(corners, axis=1)
    if not np.all(lengths > 1e-6):
        return False
    unit = corners / lengths[:, None]
    return bool(np.all((unit @ unit.T).min(axis=1) <= math.cos(math.radians(OPPOSITE_ANGLE))))


# --------------------------------------------------------------------------- tables


def element_table(sites: Any, target: str) -> Any:
    """Mean, standard deviation (n - 1; empty for one site) and count of ``target``'s
    contributions per ``role`` and ``element`` of a contributions table; roles in
    :data:`ROLES` order, elements by atomic number."""
    import pandas as pd

    from cgcnn.periodic_table import _atomic_number

    grouped = sites.groupby(["role", "element"], sort=False)[target]
    table = grouped.agg(["mean", "std", "count"]).reset_index()
    table["z"] = [_atomic_number(e) for e in table["element"]]
    table["order"] = [ROLES.index(r) if r in ROLES else len(ROLES) for r in table["role"]]
    table = table.sort_values(["order", "z"]).drop(columns=["order"]).reset_index(drop=True)
    return pd.DataFrame(
        {
            "role": table["role"],
            "element": table["element"],
            "z": table["z"],
            "mean": table["mean"],
            "std": table["std"],
            "count": table["count"].astype(int),
        }
    )


def read_test_ids(path: str | os.PathLike) -> set[str]:
    """The ``id`` column of a CSV (a run's ``test_results.csv``, or any list of ids)."""
    file = Path(path)
    if not file.is_file():
        raise InputError(str(file), "no such file (--test-ids takes a CSV with an 'id' column)")
    try:
        with file.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            fields = [f.strip() for f in reader.fieldnames or []]
            if "id" not in fields:
                raise InputError(str(file), f"has no 'id' column (columns: {fields})")
            column = reader.fieldnames[fields.index("id")]
            return {str(row[column]).strip() for row in reader if row.get(column)}
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InputError(str(file), f"is not a CSV file ({exc})") from None


def principal_components(vectors: np.ndarray, k: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """The first ``k`` principal-component coordinates of the rows of ``vectors`` and the
    fraction of the variance each explains (from the eigenvectors of the covariance, signs
    fixed so that each component's largest loading is positive)."""
    x = np.asarray(vectors, dtype=np.float64)
    centred = x - x.mean(axis=0)
    covariance = centred.T @ centred
    values, axes = np.linalg.eigh(covariance)
    order = np.argsort(values)[::-1][:k]
    values, axes = np.clip(values[order], 0.0, None), axes[:, order]
    signs = np.sign(axes[np.abs(axes).argmax(axis=0), range(axes.shape[1])])
    axes = axes * np.where(signs == 0, 1.0, signs)
    total = float(np.clip(np.linalg.eigvalsh(covariance), 0.0, None).sum())
    explained = values / total if total > 0 else np.zeros_like(values)
    coords = centred @ axes
    if coords.shape[1] < k:  # fewer features than components
        coords = np.pad(coords, ((0, 0), (0, k - coords.shape[1])))
        explained = np.pad(explained, (0, k - len(explained)))
    return coords, explained


# --------------------------------------------------------------------------- units


def model_unit(model: Any, target: str) -> str | None:
    """The unit of ``target`` that a :class:`~cgcnn.inference.TrainedModel` knows: the one its
    checkpoint records (``cgcnn train --unit``, or the registered dataset's), else, for a
    checkpoint written before units were recorded, the unit of the registered dataset its
    recorded data path names; ``None`` when neither is known."""
    recorded = (getattr(model, "units", None) or {}).get(target)
    if recorded:
        return str(recorded)
    data = model.checkpoint.info().get("meta", {}).get("data")
    if not data:
        return None
    from cgcnn.datasets import registry_units

    names = list(model.target_names)
    return registry_units(str(data), names)[names.index(target)] or None


# --------------------------------------------------------------------------- reading


def _target_records(
    data: Any, target: str, id_column: str | None, structure_column: str | None
) -> Iterator[Any]:
    """The structure records of ``data``, with the column ``target`` as their target when a
    CSV / JSON has it, else none (a CGCNN folder: its ``id_prop.csv``'s every column)."""
    from cgcnn.io import iter_structures

    options = {"id_column": id_column, "structure_column": structure_column}
    if isinstance(data, str | os.PathLike) and Path(data).is_dir():
        yield from iter_structures(data, **options)
        return
    records = iter_structures(data, target=target, **options)
    try:
        first = next(records, None)
    except InputError as exc:
        if "use --target" not in exc.reason:
            raise
        first = None
        records = iter_structures(data, **options)  # no such column: no targets
    else:
        if first is not None and first.error == f"has no target {target!r}":
            first = None
            records = iter_structures(data, **options)
    if first is not None:
        yield first
    yield from records


# --------------------------------------------------------------------------- explain


def explain(
    checkpoint: str | os.PathLike,
    data: Any,
    out: str | os.PathLike,
    *,
    atom_init: str | os.PathLike | None = None,
    target: str | None = None,
    test_ids: str | os.PathLike | None = None,
    device: str | None = None,
    id_column: str | None = None,
    structure_column: str | None = None,
    unit: str | None = None,
    crystal: str | None = None,
    batch_size: int = BATCH,
    progress: bool = True,
) -> dict[str, Any]:
    """Explain ``checkpoint``'s predictions on ``data`` and write the tables and figures
    listed in the module docstring into the folder ``out``.

    Args:
        checkpoint: a ``best.ckpt``, an ``ensemble.json`` (contributions averaged over the
            members, the embedding map from the first) or an original ``.pth.tar`` (with
            ``atom_init``; it has neither contributions nor embeddings here).
        data: anything :func:`cgcnn.io.iter_structures` reads.
        target: which of the model's targets to explain (default its first); ``data``'s
            column of that name (a CSV / JSON), or the matching column of a CGCNN folder's
            ``id_prop.csv``, colours the embedding map, else the prediction does.
        test_ids: a CSV with an ``id`` column (a run's ``test_results.csv``): those crystals
            are marked on the embedding map.
        device: where the model runs (default the CPU).
        unit: the target's unit for the labels (default: the checkpoint's, see
            :func:`model_unit`).
        crystal: the id of the crystal drawn in ``crystal_<id>.png`` (default the first).
        batch_size: crystals read and run through the model at a time.
        progress: show a progress bar (on a terminal).

    Returns:
        A summary: ``crystals``, ``sites``, ``roles`` (sites per role), ``perovskite_like``
        (crystals with A/B/X roles), ``target``, ``unit``, ``files`` (the paths written) and
        ``no_contributions`` (why there are no contribution figures, or ``None``).

    Raises:
        InputError: a missing or unreadable checkpoint, unknown ``target`` or ``crystal``, an
            unreadable ``test_ids`` file or bad structures, each naming the value.
    """
    import pandas as pd
    from tqdm.auto import tqdm

    from cgcnn.featurizer import count_records_hint
    from cgcnn.inference import load

    model = load(checkpoint, atom_init, device=device)
    names = model.target_names
    if target is None:
        target = names[0]
    elif target not in names:
        raise InputError("--target", f"{target!r} is not a target of the model ({names})")
    index = names.index(target)
    unit = unit or model_unit(model, target)
    tests = read_test_ids(test_ids) if test_ids is not None else set()
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise InputError(str(folder), "is a file, not a folder")

    ids: list[str] = []
    n_atoms: list[int] = []
    known: list[float] = []
    predicted: list[float] = []
    vectors: list[np.ndarray] = []
    site_tables: list[Any] = []
    shown: tuple[str, Any, list[str], np.ndarray | None, float] | None = None
    no_contributions: str | None = None
    regression = model.task == "regression"

    in_folder = isinstance(data, str | os.PathLike) and Path(data).is_dir()
    bar = tqdm(
        total=count_records_hint(data),
        unit="crystal",
        desc="explain",
        disable=None if progress else True,
    )
    try:
        chunk: list[Any] = []
        records = _target_records(data, target, id_column, structure_column)
        for record in _then_none(records):
            if record is not None:
                if record.error:
                    raise InputError(record.source, record.error)
                chunk.append(record)
                if len(chunk) < batch_size:
                    continue
            if not chunk:
                break
            crystals = [r.load() for r in chunk]
            chunk_ids = [r.id for r in chunk]
            frame = model.predict(crystals, batch_size=batch_size)
            column = target if regression else "prediction"
            predicted += [float(v) for v in frame[column]]
            vectors.append(model.embed(crystals, batch_size=batch_size))
            structures = [c.to_structure() for c in crystals]
            roles = [site_roles(s) for s in structures]
            chunk_known = [_known(r.target, index, len(names), in_folder) for r in chunk]
            known += chunk_known
            positions = None  # each site's crystal, as its place in the chunk
            if no_contributions is None:
                try:
                    sites = model.contributions(crystals, batch_size=batch_size)
                except InputError as exc:
                    no_contributions = exc.reason
                else:
                    positions = sites["id"].astype(int).to_numpy()
                    sites["id"] = [chunk_ids[k] for k in positions]
                    sites.insert(3, "role", [r for crystal in roles for r in crystal])
                    site_tables.append(sites)
            for k, rid in enumerate(chunk_ids):
                if shown is None and (crystal is None or rid == str(crystal)):
                    mine = None if positions is None else sites[target].to_numpy()[positions == k]
                    shown = (rid, crystals[k], roles[k], mine, chunk_known[k])
            ids += chunk_ids
            n_atoms += [c.num_atoms for c in crystals]
            bar.update(len(chunk))
            chunk = []
    finally:
        bar.close()

    if not ids:
        raise InputError(str(data), "holds no structures")
    if crystal is not None and shown is None:
        raise InputError("--crystal", f"no crystal with id {crystal!r} in {data}")
    folder = make_folder(folder)
    files: list[Path] = []
    embeddings = np.concatenate(vectors)
    by_target = bool(np.isfinite(known).all())
    coloured = np.asarray(known if by_target else predicted)
    label, map_unit = (target, unit) if regression else ("class", None)
    if regression and getattr(model.models[0].config, "extensive", False):
        # a sum over the atoms: per atom, the map shows chemistry rather than cell size
        embeddings = embeddings / np.asarray(n_atoms, dtype=np.float64)[:, None]
        coloured = coloured / np.asarray(n_atoms, dtype=np.float64)
        label = f"{target} per atom"
        map_unit = _per_atom(unit)
    files.append(
        embedding_map(
            embeddings,
            coloured,
            [rid in tests for rid in ids],
            folder / "embedding_map.png",
            label=label,
            unit=map_unit,
            from_target=by_target,
            test_ids_given=test_ids is not None,
            vectors_name="crystal embeddings per atom" if label != target else None,
        )
    )
    summary: dict[str, Any] = {
        "crystals": len(ids),
        "sites": None,
        "roles": {},
        "perovskite_like": None,
        "target": target,
        "unit": unit,
        "files": files,
        "no_contributions": no_contributions,
    }
    if no_contributions is not None:
        return summary

    sites = pd.concat(site_tables, ignore_index=True)
    sites.attrs["pooling"] = site_tables[0].attrs.get("pooling")
    path = folder / "contributions.csv"
    with atomic_write(path, newline="") as handle:
        sites.to_csv(handle, index=False)
    files.append(path)
    table = element_table(sites, target)
    path = folder / "element_contributions.csv"
    with atomic_write(path, newline="") as handle:
        table.to_csv(handle, index=False)
    files.append(path)

    from cgcnn.periodic_table import periodic_table_figure

    centre = float(sites[target].mean())
    label = f"mean contribution to {target}" + (f" ({unit})" if unit else "")
    n_crystals = sites.groupby("role")["id"].nunique()
    for role in [r for r in ROLES if r in set(table["role"])]:
        rows = table[table["role"] == role]
        title = (
            f"{ROLE_NAMES[role]}: mean contribution of each element to {target} "
            f"({int(rows['count'].sum())} sites in {int(n_crystals[role])} crystals)\n"
            f"colour centred on the mean over all sites, {centre:.3g}"
            + (f" {unit}" if unit else "")
        )
        files.append(
            periodic_table_figure(
                dict(zip(rows["element"], rows["mean"], strict=True)),
                dict(zip(rows["element"], rows["count"], strict=True)),
                folder / f"periodic_table_{role}.png",
                centre=centre,
                colorbar_label=label,
                title=title,
            )
        )
    assert shown is not None and shown[3] is not None
    rid, one, roles, values, true_value = shown
    files.append(
        crystal_figure(
            one,
            values,
            roles,
            folder / f"crystal_{_file_name(rid)}.png",
            crystal_id=rid,
            target=target,
            unit=unit,
            pooling=str(sites.attrs.get("pooling") or "mean"),
            known=true_value,
        )
    )
    counts = sites["role"].value_counts()
    summary.update(
        sites=len(sites),
        roles={r: int(counts[r]) for r in ROLES if r in counts},
        perovskite_like=int(sites.loc[sites["role"] == "B", "id"].nunique()),
    )
    return summary


def _known(values: Any, index: int, n_targets: int, in_folder: bool) -> float:
    """A record's value of the explained target: a CSV / JSON is read with that one column,
    a CGCNN folder with all of id_prop.csv's, one per model target; NaN when unknown."""
    if not values:
        return math.nan
    if not in_folder and len(values) == 1:
        return float(values[0])
    return float(values[index]) if len(values) == n_targets else math.nan


def _per_atom(unit: str | None) -> str | None:
    """``eV/atom`` for ``eV/cell``; ``UNIT per atom`` for any other unit."""
    if not unit:
        return None
    return unit.removesuffix("/cell") + "/atom" if unit.endswith("/cell") else f"{unit} per atom"


def _then_none(items: Iterator[Any]) -> Iterator[Any]:
    """``items``, then one ``None`` (the signal to flush the last chunk)."""
    yield from items
    yield None


def _file_name(rid: str) -> str:
    """A crystal id made safe as part of a file name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(rid)).strip("._") or "crystal"


def summary_lines(summary: dict[str, Any], out: str | os.PathLike) -> list[str]:
    """The lines ``cgcnn explain`` prints for :func:`explain`'s summary."""
    lines = []
    if summary["sites"] is None:
        lines.append(f"crystals: {summary['crystals']}")
        lines.append(f"no contribution figures: {summary['no_contributions']}")
    else:
        roles = ", ".join(f"{ROLE_NAMES[r]} {n}" for r, n in summary["roles"].items())
        lines.append(
            f"crystals: {summary['crystals']} ({summary['perovskite_like']} perovskite-like), "
            f"sites: {summary['sites']} ({roles})"
        )
    names = ", ".join(Path(p).name for p in summary["files"])
    lines.append(f"outputs in {out}/: {names}")
    return lines


# --------------------------------------------------------------------------- figures


def embedding_map(
    vectors: np.ndarray,
    values: np.ndarray,
    is_test: list[bool],
    out_png: str | Path,
    *,
    label: str,
    unit: str | None,
    from_target: bool,
    test_ids_given: bool = False,
    vectors_name: str | None = None,
) -> Path:
    """The crystal vectors on their first two principal components, coloured by ``values``
    (the target, or the prediction when ``from_target`` is false), test crystals marked;
    ``vectors_name`` names the vectors in the title (default ``crystal embeddings``)."""
    from cgcnn.plots import _new_figure, _note, _save

    coords, explained = principal_components(vectors, 2)
    test = np.asarray(is_test, dtype=bool)
    fig = _new_figure((9.0, 7.5))
    ax = fig.subplots()
    what = label if from_target else f"predicted {label}"
    colour_label = what + (f" ({unit})" if unit else "")
    finite = np.isfinite(values)
    low, high = (values[finite].min(), values[finite].max()) if finite.any() else (0.0, 1.0)
    n = len(values)
    size = 30.0 if n <= 500 else 14.0 if n <= 5000 else 5.0
    style = {"cmap": "viridis", "vmin": low, "vmax": high}
    image = ax.scatter(
        coords[~test, 0],
        coords[~test, 1],
        c=values[~test],
        s=size,
        marker="o",
        linewidths=0,
        alpha=0.8,
        label=f"training and validation ({int((~test).sum())})"
        if test_ids_given
        else f"crystals ({n})",
        **style,
    )
    if test.any():
        image = ax.scatter(
            coords[test, 0],
            coords[test, 1],
            c=values[test],
            s=size * 2.2,
            marker="^",
            edgecolors="black",
            linewidths=0.6,
            label=f"test ({int(test.sum())})",
            **style,
        )
    if test_ids_given:
        legend = ax.legend(loc="best", fontsize=12, markerscale=1.5)
        for handle in legend.legend_handles:  # the marker, not a colour of the map
            handle.set_array(None)
            handle.set_facecolor("0.55")
    if n < 2:
        _note(ax, "one crystal: no spread to project", keep_ticks=True)
    bar = fig.colorbar(image, ax=ax)
    bar.set_label(colour_label, fontsize=14)
    bar.ax.tick_params(labelsize=12)
    ax.set_xlabel(f"PC1 ({100 * explained[0]:.1f} % of variance)", fontsize=14)
    ax.set_ylabel(f"PC2 ({100 * explained[1]:.1f} % of variance)", fontsize=14)
    ax.tick_params(labelsize=12)
    ax.set_title(
        f"{vectors_name or 'crystal embeddings'} ({n} crystals, {vectors.shape[1]} "
        f"dimensions), coloured by {what}",
        fontsize=14,
    )
    ax.grid(alpha=0.3)
    return _save(fig, out_png)


def crystal_figure(
    crystal: Any,
    values: np.ndarray,
    roles: list[str],
    out_png: str | Path,
    *,
    crystal_id: str,
    target: str,
    unit: str | None,
    pooling: str = "mean",
    known: float = math.nan,
) -> Path:
    """One crystal's sites at their Cartesian positions in the cell (Å), coloured by their
    contribution to ``target``, each labelled with its element (and role)."""
    from matplotlib.colors import CenteredNorm

    from cgcnn.elements import element_symbol
    from cgcnn.plots import _new_figure, _save

    lattice = np.asarray(crystal.lattice, dtype=np.float64)
    xyz = np.asarray(crystal.frac_coords, dtype=np.float64) @ lattice
    symbols = [element_symbol(int(z)) for z in crystal.atomic_numbers]
    fig = _new_figure((10.0, 8.5))
    ax = fig.add_subplot(projection="3d")
    corners = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)], float)
    for a in range(8):
        for b in range(a + 1, 8):
            if np.abs(corners[a] - corners[b]).sum() == 1:  # a cell edge
                ends = corners[[a, b]] @ lattice
                ax.plot(*ends.T, color="0.6", linewidth=0.8)
    centre = float(np.mean(values))
    spread = float(np.max(np.abs(values - centre))) if len(values) else 0.0
    norm = CenteredNorm(vcenter=centre, halfrange=spread if spread > 0 else 1e-9)
    n = len(values)
    size = 420 if n <= 20 else 160 if n <= 100 else 50
    kinds = np.asarray(roles)
    points = None
    for role, marker in _ROLE_MARKERS.items():
        mine = kinds == role
        if not mine.any():
            continue
        points = ax.scatter(
            *xyz[mine].T,
            c=values[mine],
            cmap="RdBu_r",
            norm=norm,
            s=size,
            marker=marker,
            edgecolors="black",
            linewidths=0.6,
            depthshade=False,
            label=ROLE_NAMES[role],
        )
    if set(roles) != {"site"}:
        legend = ax.legend(loc="upper left", fontsize=11, markerscale=0.7)
        for handle in legend.legend_handles:  # the marker, not a colour of the map
            handle.set_array(None)
            handle.set_facecolor("0.6")
    few = n <= _LABELLED_SITES
    if n <= 60:  # beyond that, labels hide the sites
        for (x, y, z), symbol, role, value in zip(xyz, symbols, roles, values, strict=True):
            text = f"  {symbol}" + (f" ({role}) {value:.2f}" if few and role != "site" else "")
            if few and role == "site":
                text += f" {value:.2f}"
            ax.text(x, y, z, text, fontsize=13 if few else 10, fontweight="bold", zorder=10)
    unit_text = f" ({unit})" if unit else ""
    ax.set_xlabel("x (Å)", fontsize=13, labelpad=8)
    ax.set_ylabel("y (Å)", fontsize=13, labelpad=8)
    ax.set_zlabel("z (Å)", fontsize=13, labelpad=8)
    ax.tick_params(labelsize=11)
    extent = np.ptp(np.vstack([xyz, corners @ lattice]), axis=0)
    ax.set_box_aspect(np.where(extent > 0, extent, 1.0))
    assert points is not None
    bar = fig.colorbar(points, ax=ax, shrink=0.7, pad=0.08)
    bar.set_label(
        f"contribution to {target}{unit_text}\n(white: the mean of its sites)", fontsize=13
    )
    bar.ax.tick_params(labelsize=11)
    total = np.mean(values) if pooling == "mean" else np.sum(values)
    formula = _formula(symbols, roles)
    line = f"predicted {target} {total:.3g}" + (f" {unit}" if unit else "")
    if math.isfinite(known):
        line += f", true {known:.3g}" + (f" {unit}" if unit else "")
    how = "mean" if pooling == "mean" else "sum"
    ax.set_title(
        f"crystal {crystal_id} ({formula}): site contributions\n{line} (the {how} of the sites)",
        fontsize=14,
    )
    return _save(fig, out_png)


def _formula(symbols: list[str], roles: list[str]) -> str:
    """A formula with the A, B then X elements first, else in order of first appearance
    (``SrTiO3``)."""
    order = sorted(range(len(symbols)), key=lambda k: (ROLES.index(roles[k]), k))
    counts: dict[str, int] = {}
    for k in order:
        counts[symbols[k]] = counts.get(symbols[k], 0) + 1
    return "".join(f"{s}{n if n > 1 else ''}" for s, n in counts.items())
