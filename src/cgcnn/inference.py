"""A trained model in your hands: predictions, crystal vectors and per-site contributions
in memory, in physical units, without writing a file.

>>> model = cgcnn.load("run/best.ckpt")                        # doctest: +SKIP
>>> model.predict([structure, "POSCAR", atoms])                # doctest: +SKIP
        id  target
0        0  -3.21
...

:func:`load` opens any checkpoint once (:func:`cgcnn.trained.open_checkpoint`: one of ours,
an ensemble's ``ensemble.json``, an original ``.pth.tar`` with its ``atom_init.json``) and
returns a :class:`TrainedModel`.  Its methods take pymatgen ``Structure``\\ s, ASE ``Atoms``,
:class:`~cgcnn.crystal.Crystal`\\ s, file paths or data folders (anything
:func:`cgcnn.io.iter_structures` reads), or any iterable of them; graphs are built in memory
with the settings the model was trained with (nothing is cached unless ``cache_dir`` is
given) and batched with PyTorch Geometric.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import torch

from cgcnn.errors import InputError
from cgcnn.trained import Checkpoint, open_checkpoint


def load(
    checkpoint: str | os.PathLike,
    atom_init: str | os.PathLike | None = None,
    *,
    device: str | torch.device | None = None,
) -> TrainedModel:
    """The trained model of ``checkpoint`` (a ``best.ckpt``, an ``ensemble.json``, or an
    original CGCNN ``.pth.tar`` with ``atom_init``, its ``atom_init.json``).

    ``device`` (``"cuda"``, ``"cuda:1"``, ``"cpu"``; default the CPU) is where the models
    run.  For code written for earlier versions, the result also unpacks as
    ``module, info = cgcnn.load(path)`` (a single model's :class:`~cgcnn.nn.CGCNN` and its
    metadata).
    """
    return TrainedModel(open_checkpoint(checkpoint), atom_init, device=device)


class TrainedModel:
    """A checkpoint's model(s), ready to predict (see the module docstring).

    Attributes:
        checkpoint: the :class:`~cgcnn.trained.Checkpoint` it was read from.
        models: the :class:`~cgcnn.nn.CGCNN` modules (several for an ensemble), in eval mode.
        task: ``regression`` or ``classification``.
        target_names: the names of the targets (output columns).
        units: target name -> its unit (``""`` where the checkpoint does not know it; also
            in the ``attrs["units"]`` of the tables returned).
        graph_settings: the :class:`~cgcnn.config.GraphSettings` of its graphs.
    """

    def __init__(
        self,
        checkpoint: Checkpoint,
        atom_init: str | os.PathLike | None = None,
        *,
        device: str | torch.device | None = None,
    ) -> None:
        from cgcnn.prediction import torch_device

        self.checkpoint = checkpoint
        self.device = torch_device(str(device or "cpu"))
        self.atom_init = atom_init
        if checkpoint.kind == "original":
            self.models = [checkpoint.model(atom_init or _no_atom_init(checkpoint))]
        else:
            self.models = checkpoint.models()
        self.models = [m.to(self.device).eval() for m in self.models]
        config = self.models[0].config
        self.task = config.task
        self.target_names = list(config.target_names) or [
            f"target{k}" if config.n_targets > 1 else "target" for k in range(config.n_targets)
        ]
        known = list(config.target_units)
        known += [""] * (len(self.target_names) - len(known))
        self.units = dict(zip(self.target_names, known, strict=False))
        # an original model reads the original's own graphs (cgcnn.compat), not these
        original = checkpoint.kind == "original"
        self.graph_settings = None if original else checkpoint.graph_settings()
        self._info = checkpoint.info()

    # ------------------------------------------------------------------ public

    def predict(self, structures: Any, *, batch_size: int = 256) -> Any:
        """A pandas DataFrame, one row per crystal in input order: ``id``, one column per
        target in physical units (``uncertainty`` after each for an ensemble), or for a
        classifier ``prediction`` (the class) and ``prob_<class>``.  ``frame.attrs["units"]``
        maps each target to its unit where the checkpoint knows it (``cgcnn train --unit``,
        or a registered data set's)."""
        import pandas as pd

        if self.checkpoint.kind == "original":
            return self._predict_original(structures)
        from cgcnn.prediction import ensemble_mean

        ids, per_model = [], [[] for _ in self.models]
        for chunk_ids, batch in self._batches(structures, batch_size):
            ids += chunk_ids
            for k, model in enumerate(self.models):
                per_model[k].append(model.predict(batch).cpu().numpy())
        outputs = [np.concatenate(p) if p else self._empty() for p in per_model]
        classification = self.task == "classification"
        mean, spread = ensemble_mean(outputs, classification, self.checkpoint.uncertainty_scale)
        table: dict[str, Any] = {"id": ids}
        if classification:
            table["prediction"] = mean.argmax(axis=1) if len(ids) else []
            if spread is not None:
                table["uncertainty"] = spread
            for k, name in enumerate(self._class_names()):
                table[f"prob_{name}"] = mean[:, k]
        else:
            for k, name in enumerate(self.target_names):
                table[name] = mean[:, k]
                if spread is not None:
                    table[
                        f"uncertainty_{name}" if len(self.target_names) > 1 else "uncertainty"
                    ] = spread[:, k]
        frame = pd.DataFrame(table)
        frame.attrs["checkpoint"] = self.checkpoint.source
        if not classification:
            frame.attrs["units"] = dict(self.units)
        return frame

    def embed(self, structures: Any, *, batch_size: int = 256) -> np.ndarray:
        """(n_crystals, F) crystal vectors: the pooled atom features the head reads (F is the
        model's ``atom_fea_len``); for an ensemble, its first member's."""
        return self._embeddings(structures, batch_size)[1]

    def embedding_table(self, structures: Any, *, batch_size: int = 256) -> Any:
        """:meth:`embed` as a DataFrame: ``id``, then ``e0`` ... ``e{F-1}``."""
        import pandas as pd

        ids, vectors = self._embeddings(structures, batch_size)
        frame = pd.DataFrame(vectors, columns=[f"e{k}" for k in range(vectors.shape[1])])
        frame.insert(0, "id", ids)
        return frame

    @torch.no_grad()
    def _embeddings(self, structures: Any, batch_size: int) -> tuple[list[str], np.ndarray]:
        """(ids, (n, F) vectors), from one pass over the structures."""
        model = self._single("embed")
        ids, chunks = [], []
        for chunk_ids, batch in self._batches(structures, batch_size):
            ids += chunk_ids
            chunks.append(model.crystal_embeddings(batch).cpu().numpy())
        width = model.config.atom_fea_len
        return ids, np.concatenate(chunks) if chunks else np.zeros((0, width), np.float32)

    @torch.no_grad()
    def contributions(self, structures: Any, *, batch_size: int = 256) -> Any:
        """One row per site: ``id``, ``site`` (its index in the input), ``element``, the
        fractional coordinates ``a, b, c`` and each target's contribution in its unit.

        Defined for regression models whose last step pools one value per site: an
        ``--extensive`` model (the contributions of a crystal sum to its prediction) or a
        ``--readout site`` model (they average to it); ``frame.attrs["pooling"]`` says which.
        A model that pools the atoms first and applies its head to the pooled vector has no
        per-site values, and this says so.
        """
        import pandas as pd

        from cgcnn.elements import element_symbol

        models = self.models
        if self.checkpoint.kind == "original" or not all(m.has_site_contributions for m in models):
            raise InputError(
                self.checkpoint.source,
                "has no per-site contributions: it pools the atoms before its head; train "
                "with --readout site (or --extensive) for a model whose prediction is the mean "
                "(or the sum) of one value per site",
            )
        rows: list[dict[str, Any]] = []
        for ids, batch, crystals in self._batches(structures, batch_size, with_crystals=True):
            values = np.mean([m.site_contributions(batch).cpu().numpy() for m in models], axis=0)
            at = 0
            for rid, crystal in zip(ids, crystals, strict=True):
                for site in range(crystal.num_atoms):
                    row = {
                        "id": rid,
                        "site": site,
                        "element": element_symbol(int(crystal.atomic_numbers[site])),
                        "a": float(crystal.frac_coords[site, 0]),
                        "b": float(crystal.frac_coords[site, 1]),
                        "c": float(crystal.frac_coords[site, 2]),
                    }
                    for k, name in enumerate(self.target_names):
                        row[name] = float(values[at + site, k])
                    rows.append(row)
                at += crystal.num_atoms
        frame = pd.DataFrame(rows)
        frame.attrs["pooling"] = "sum" if models[0].config.extensive else "mean"
        frame.attrs["units"] = dict(self.units)
        return frame

    def __iter__(self) -> Iterator[Any]:
        """``module, info = cgcnn.load(path)``, as earlier versions returned."""
        return iter((self._single("unpack"), self._info))

    def __repr__(self) -> str:
        kind = {"cgcnn": "model", "ensemble": f"ensemble of {len(self.models)}"}.get(
            self.checkpoint.kind, "original CGCNN model"
        )
        return (
            f"TrainedModel({kind}, {self.task}, targets {self.target_names}, "
            f"from {self.checkpoint.source})"
        )

    # ------------------------------------------------------------------ inputs

    def _batches(
        self, structures: Any, batch_size: int, with_crystals: bool = False
    ) -> Iterator[tuple]:
        """(ids, PyG Batch on the device[, crystals]) per chunk of ``batch_size`` crystals."""
        from torch_geometric.data import Batch

        from cgcnn.graph import build_graph

        chunk: list[tuple[str, Any]] = []

        def flush():
            graphs = [build_graph(c, self.graph_settings, rid).to_data() for rid, c in chunk]
            batch = Batch.from_data_list(graphs).to(self.device)
            ids = [rid for rid, _ in chunk]
            crystals = [c for _, c in chunk]
            return (ids, batch, crystals) if with_crystals else (ids, batch)

        for item in read_crystals(structures):
            chunk.append(item)
            if len(chunk) == batch_size:
                yield flush()
                chunk = []
        if chunk:
            yield flush()

    def _predict_original(self, structures: Any) -> Any:
        import pandas as pd

        from cgcnn.compat import predict_original

        source = {rid: crystal.to_structure() for rid, crystal in read_crystals(structures)}
        results = predict_original(self.checkpoint.state, source, self.atom_init)
        if results and results[0].probabilities is not None:
            probabilities = np.array([r.probabilities for r in results])
            table = {"id": [r.id for r in results], "prediction": probabilities.argmax(axis=1)}
            for k in range(probabilities.shape[1]):
                table[f"prob_{k}"] = probabilities[:, k]
            return pd.DataFrame(table)
        return pd.DataFrame(
            {"id": [r.id for r in results], "target": [r.prediction for r in results]}
        )

    def _single(self, what: str):
        if self.checkpoint.kind == "ensemble" and what == "unpack":
            raise InputError(self.checkpoint.source, "is an ensemble: use its methods")
        if self.checkpoint.kind == "original" and what == "embed":
            raise InputError(
                self.checkpoint.source,
                "is an original CGCNN model, which reads the original's own graphs "
                "(cgcnn.compat): its crystal vectors are not available here",
            )
        return self.models[0]

    def _class_names(self) -> list[str]:
        config = self.models[0].config
        return list(config.class_names) or [str(k) for k in range(config.n_classes)]

    def _empty(self) -> np.ndarray:
        return np.zeros((0, self.models[0].config.n_outputs), np.float32)


def read_crystals(structures: Any) -> Iterator[tuple[str, Any]]:
    """(id, Crystal) of every structure given, in order (see :class:`TrainedModel`)."""
    from cgcnn.io import iter_structures

    items = [structures] if _is_single(structures) else list(structures)
    for index, item in enumerate(items):
        source = _as_readable(item)
        for record in iter_structures(source):
            if record.error:
                raise InputError(record.source, record.error)
            # a file or folder names its crystals; an object is named by its place in the input
            rid = record.id if isinstance(item, str | os.PathLike) else str(index)
            yield rid, record.load()


def _is_single(value: Any) -> bool:
    if isinstance(value, str | os.PathLike):
        return True
    return not isinstance(value, Iterable) or _is_structure(value)


def _is_structure(value: Any) -> bool:
    kind = type(value).__name__
    return kind in ("Structure", "IStructure", "Crystal") or _is_atoms(value)


def _is_atoms(value: Any) -> bool:
    """ASE ``Atoms``, or a subclass of it (pymatgen's ``AseAtomsAdaptor`` returns one)."""
    return any(
        kind.__name__ == "Atoms" and kind.__module__.startswith("ase")
        for kind in type(value).__mro__
    )


def _as_readable(item: Any) -> Any:
    """ASE ``Atoms`` as a pymatgen ``Structure`` (what the readers take); the rest as is."""
    if _is_atoms(item):
        from pymatgen.io.ase import AseAtomsAdaptor

        return AseAtomsAdaptor.get_structure(item)
    return item


def _no_atom_init(checkpoint: Checkpoint) -> Any:
    raise InputError(
        checkpoint.source, "is an original CGCNN checkpoint: give its atom_init.json (atom_init=)"
    )
