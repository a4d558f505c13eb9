"""The periodic table as a grid, and a figure of one value per element drawn on it.

:func:`grid_cell` places an element on the standard 18-column table: periods 1-7 in rows
1-7, groups 1-18 in columns 1-18, and the f-block below (lanthanides La-Lu in row 9,
actinides Ac-Lr in row 10, under columns 3-17, row 8 left empty as the usual gap).
:func:`periodic_table_figure` colours each cell by a value (a mean contribution), writes the
symbol and the count in it and greys out the elements without a value.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

#: the last atomic number of each period
_PERIOD_ENDS = (2, 10, 18, 36, 54, 86, 118)
#: the grid rows of the f-block: lanthanides, then actinides (row 8 is the gap above them)
LANTHANIDE_ROW = 9
ACTINIDE_ROW = 10
_F_BLOCK = {6: (57, 71, LANTHANIDE_ROW), 7: (89, 103, ACTINIDE_ROW)}


class GridCell(NamedTuple):
    """Where an element sits in the periodic table.

    Attributes:
        period: its period, 1-7.
        group: its group, 1-18; ``None`` for the lanthanides La-Lu and actinides Ac-Lr.
        row: the grid row, 1-7 for the periods, 9 and 10 for the lanthanide and actinide rows.
        column: the grid column, 1-18 (the f-block rows run from column 3 to 17).
    """

    period: int
    group: int | None
    row: int
    column: int


def grid_cell(element: str | int) -> GridCell:
    """The :class:`GridCell` of an element, by symbol (``"Fe"``) or atomic number (26).

    Raises:
        ValueError: for an unknown symbol or an atomic number outside 1-118.
    """
    z = _atomic_number(element)
    period = next(k + 1 for k, end in enumerate(_PERIOD_ENDS) if z <= end)
    start = 1 if period == 1 else _PERIOD_ENDS[period - 2] + 1
    offset = z - start  # 0-based place in the period
    if period == 1:
        group = 1 if z == 1 else 18
    elif period <= 3:  # s-block then p-block, no d-block
        group = offset + 1 if offset < 2 else offset + 11
    elif period <= 5:
        group = offset + 1
    else:
        first, last, row = _F_BLOCK[period]
        if first <= z <= last:
            return GridCell(period, None, row, 3 + z - first)
        group = offset + 1 if z < first else offset - 13
    return GridCell(period, group, period, group)


def _atomic_number(element: str | int) -> int:
    if isinstance(element, int | np.integer):
        z = int(element)
        if not 1 <= z <= 118:
            raise ValueError(f"no element has atomic number {z}")
        return z
    from pymatgen.core.periodic_table import Element

    try:
        return int(Element(str(element)).Z)
    except ValueError:
        raise ValueError(f"unknown element {element!r}") from None


def periodic_table_figure(
    values: dict[str, float],
    counts: dict[str, int],
    out_png: str | Path,
    *,
    centre: float,
    colorbar_label: str,
    title: str,
    cmap: str = "RdBu_r",
) -> Path:
    """Draw ``values`` (one number per element symbol) on the periodic table and save it.

    Args:
        values: element symbol -> the value that colours its cell.
        counts: element symbol -> how many samples the value comes from (written in the cell,
            under the value).
        out_png: the PNG to write.
        centre: the value at the middle of the diverging colour map; the colour range is
            symmetric about it and reaches the value farthest from it.
        colorbar_label: the colour bar's label (quantity and unit).
        title: the figure's title.
        cmap: a diverging matplotlib colour map.

    Returns:
        The path written.  Elements not in ``values`` are drawn grey.
    """
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import CenteredNorm
    from matplotlib.patches import Rectangle

    from cgcnn.elements import element_symbol
    from cgcnn.plots import _new_figure, _save

    finite = {k: float(v) for k, v in values.items() if np.isfinite(v)}
    spread = max((abs(v - centre) for v in finite.values()), default=0.0)
    norm = CenteredNorm(vcenter=centre, halfrange=spread if spread > 0 else 1e-9)
    colours = colormaps[cmap]

    fig = _new_figure((17.0, 10.0))
    ax = fig.subplots()
    for z in range(1, 119):
        symbol = element_symbol(z)
        cell = grid_cell(z)
        x, y = cell.column - 0.5, cell.row - 0.5
        present = symbol in finite
        face = colours(norm(finite[symbol])) if present else (0.93, 0.93, 0.93)
        ax.add_patch(
            Rectangle((x + 0.03, y + 0.03), 0.94, 0.94, facecolor=face, edgecolor="0.55", lw=0.6)
        )
        ink = "0.65"
        if present:
            r, g, b, _ = face
            ink = "white" if 0.299 * r + 0.587 * g + 0.114 * b < 0.5 else "black"
        ax.text(
            x + 0.5,
            y + 0.3 if present else y + 0.5,
            symbol,
            ha="center",
            va="center",
            fontsize=15 if present else 11,
            fontweight="bold" if present else "normal",
            color=ink,
        )
        if present:
            for height, text, size in (
                (0.6, f"{finite[symbol]:.2f}", 10.5),
                (0.83, f"n={counts.get(symbol, 0)}", 8.5),
            ):
                ax.text(
                    x + 0.5, y + height, text, ha="center", va="center", fontsize=size, color=ink
                )
    for row, label in ((LANTHANIDE_ROW, "La–Lu"), (ACTINIDE_ROW, "Ac–Lr")):
        ax.text(1.6, row, label, ha="center", va="center", fontsize=11, color="0.35")
    ax.set_xlim(0.5, 18.5)
    ax.set_ylim(ACTINIDE_ROW + 0.5, 0.5)
    ax.set_aspect("equal")
    ax.set_xticks(range(1, 19))
    ax.xaxis.tick_top()
    ax.xaxis.set_label_position("top")
    ax.set_yticks([*range(1, 8), LANTHANIDE_ROW, ACTINIDE_ROW], [*map(str, range(1, 8)), "6", "7"])
    ax.tick_params(labelsize=12, length=0)
    ax.set_xlabel("group", fontsize=13)
    ax.set_ylabel("period", fontsize=13)
    for side in ax.spines.values():
        side.set_visible(False)
    ax.set_title(title, fontsize=15, pad=14)
    mappable = ScalarMappable(norm=norm, cmap=colours)
    bar = fig.colorbar(mappable, ax=ax, orientation="horizontal", fraction=0.05, pad=0.03)
    bar.set_label(colorbar_label, fontsize=13)
    bar.ax.tick_params(labelsize=11)
    return _save(fig, out_png)
