"""The fields of a crystal graph, each defined once with its shape, type and unit.

Items of :class:`cgcnn.CrystalGraphDataset` are PyTorch Geometric ``Data`` objects with
these attributes.  N is the number of atoms of the crystal, E its number of edges.  When
PyG batches several crystals, node and edge fields are concatenated, ``edge_index`` is
shifted by the atom offsets, and ``batch`` (N_total,) says which crystal each atom is in.

Edge direction follows PyG's source -> target convention: an edge (j -> i) carries the
message from neighbour j to centre i, so ``edge_index[0]`` holds j and ``edge_index[1]``
holds i.  Edges are grouped by centre and ordered nearest first.
"""

from __future__ import annotations

#: name -> (shape, dtype, meaning)
FIELDS: dict[str, tuple[str, str, str]] = {
    "id": (
        "str",
        "str",
        "the crystal's id: id_prop.csv's first column, the CSV id column, or the file name",
    ),
    "atomic_numbers": ("(N,)", "int64", "Z of each atom"),
    "edge_index": ("(2, E)", "int64", "row 0: neighbour j (source), row 1: centre i (target)"),
    "distances": (
        "(E,)",
        "float32",
        "|r_j + offset @ cell - r_i|, the bond length of each edge, Å",
    ),
    "offsets": ("(E, 3)", "int64", "periodic image of j, in lattice vectors (integers)"),
    "pos": ("(N, 3)", "float32", "Cartesian positions of the atoms in the cell, Å"),
    "cell": ("(1, 3, 3)", "float32", "lattice vectors as rows, Å"),
    "y": ("(1, T)", "float32", "the T targets of the crystal (absent when unknown)"),
}


def describe() -> str:
    """The table above as aligned text."""
    width = max(map(len, FIELDS))
    lines = [
        f"{name:<{width}}  {shape:<9} {dtype:<8} {meaning}"
        for name, (shape, dtype, meaning) in FIELDS.items()
    ]
    return "\n".join(lines)
