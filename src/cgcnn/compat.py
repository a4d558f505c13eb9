"""Compatibility mode: run the original CGCNN's ``.pth.tar`` checkpoints unchanged.

The original code (Xie & Grossman, PRL 120, 145301 (2018)) saved its models with
``torch.save`` as a dict holding ``state_dict``, ``normalizer`` (``{"mean", "std"}`` of the
regression target), ``args`` (the training options), ``epoch``, ``best_mae_error`` and the
optimizer state.  This module loads such a file without running pickled code, rebuilds the
same network as a :class:`~cgcnn.nn.model.CGCNN` and builds the crystal graphs exactly as the
original did, so that its predictions are reproduced to float32 round-off (measured: at
most 6e-6 on the three published models, ``tests/test_compat.py``;
``docs/original-checkpoints.md``).

API: :func:`load_original_checkpoint` (safe load), :func:`is_original_checkpoint`,
:func:`original_architecture` (hyperparameters from the weight shapes),
:func:`model_from_original` (-> :class:`CGCNN`), :func:`load_original` (both),
:func:`featurize_original` (the original's graph), :func:`iter_original_graphs` and
:func:`predict_graphs` (the two halves of) :func:`predict_original` (path + data ->
:class:`OriginalPrediction` per crystal).

What compatibility mode does differently from the default pipeline
-------------------------------------------------------------------

* **Graphs** (:func:`featurize_original`).  Each atom's neighbours come from pymatgen's
  ``Structure.get_all_neighbors(radius, include_index=True)``; each atom's list is sorted
  by distance with Python's *stable* ``sorted``, so atoms at the same distance keep
  pymatgen's order, and the first ``max_num_nbr`` (12) are kept.  That order decides which
  atoms survive a tie at the cutoff (in a cubic perovskite ABO3, O has 2 B at a/2, then 12
  atoms, 4 A and 8 O, at a/sqrt(2) for its last 10 places), so it is reproduced rather than
  replaced by our own tie key (:mod:`cgcnn.graph`).  An atom with fewer than
  ``max_num_nbr`` neighbours is **padded** with neighbour 0 at distance ``radius + 1`` Å,
  as the original does; the padded pairs are ordinary edges of the graph (image offset
  (0, 0, 0)) so the convolutions see exactly what the original saw.
* **Edge features**: Gaussians ``exp(-(d - mu_k)^2 / 0.2^2)``, ``mu_k = 0, 0.2, ..., radius``
  (41 features for 8 Å), the original's ``GaussianDistance(dmin=0, dmax=radius, step=0.2)``.
  The radius is inferred from the width of ``fc_full``.
* **Head**: the original applies softplus to the pooled crystal vector *and* after
  ``conv_to_fc`` (``CGCNNConfig.original_head=True``); classification models use dropout
  0.5 (inactive in eval mode) and end with a LogSoftmax, whose ``exp`` is the softmax that
  :meth:`CGCNN.predict` returns.
* **Units**: regression outputs are ``out * std + mean`` with the checkpoint's
  ``normalizer``; classification ignores the normalizer.
* **Atom features**: the original reads ``atom_init.json`` from the data folder; so does
  :func:`predict_original` unless another table is given.  Its width must equal the input
  width of the checkpoint's embedding (92 for the published models).

Safe loading
------------
:func:`load_original_checkpoint` reads the file with :func:`cgcnn.checkpoint.read_checkpoint`,
the package's one checkpoint loader: ``torch.load(..., weights_only=True)``, which only
rebuilds tensors, containers and plain numbers, inside
``torch.serialization.safe_globals`` with this allow-list
(:func:`cgcnn.checkpoint.allowed_globals`):

* ``numpy.core.multiarray.scalar`` (also under its numpy 2 name
  ``numpy._core.multiarray.scalar``): rebuilds a numpy scalar (the published
  classification model stores ``best_mae_error`` as a ``numpy.float64``) from a dtype and
  its raw bytes;
* ``numpy.dtype`` and ``numpy.dtypes.Float64DType``: the dtype of that scalar (numpy 2
  builds the concrete ``Float64DType`` class, whose state must be restored);
* ``argparse.Namespace``: some forks save ``args`` as the namespace itself rather than as
  ``vars(args)``; it is a plain attribute holder.

The published regression models need nothing beyond PyTorch's defaults (their ``args`` is
a dict, their normalizer plain floats); the classification model needs the numpy entries.
None of the allowed names can run arbitrary code: the scalar reconstructor only copies
bytes into a number, the dtype classes and ``Namespace`` only hold attributes.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from cgcnn.crystal import Crystal
from cgcnn.elements import AtomFeatures, resolve_atom_features
from cgcnn.errors import InputError
from cgcnn.graph import CrystalGraph

if TYPE_CHECKING:
    import torch
    from pymatgen.core import Structure

    from cgcnn.io import DataSource, StructureRecord
    from cgcnn.nn.model import CGCNN

#: The original's Gaussian spacing (and width), Å.
ORIGINAL_STEP = 0.2

#: The original's neighbour count per atom.
ORIGINAL_MAX_NUM_NBR = 12

#: Distance given to padded neighbours: ``radius + PAD_EXTRA`` Å.
PAD_EXTRA = 1.0

# Original parameter/buffer names.  The network keeps the original module names
# (embedding, convs.K.fc_full / bn1 / bn2, conv_to_fc, fcs.K, fc_out), so the mapping onto
# :class:`CGCNN` is the identity on these names; the pattern checks that nothing else is there.
_ORIGINAL_KEY = re.compile(
    r"^(?:(?:embedding|conv_to_fc|fc_out|fcs\.\d+)\.(?:weight|bias)"
    r"|convs\.\d+\.fc_full\.(?:weight|bias)"
    r"|convs\.\d+\.bn[12]\.(?:weight|bias|running_mean|running_var|num_batches_tracked))$"
)
_REQUIRED = ("embedding.weight", "conv_to_fc.weight", "fc_out.weight")


def load_original_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load an original CGCNN checkpoint safely (no pickled code runs).

    Args:
        path: the ``.pth.tar`` file.

    Returns:
        The checkpoint dict on the CPU; ``state_dict`` holds the weights, ``normalizer`` the
        target mean and std, ``args`` the training options (a dict).

    Raises:
        InputError: naming the file, when it does not exist, cannot be read by
            ``torch.load(weights_only=True)`` with the allow-list, or is not an original
            CGCNN checkpoint.
    """
    from cgcnn.checkpoint import read_checkpoint

    name = os.fspath(path)
    checkpoint = read_checkpoint(name)
    if not (isinstance(checkpoint, Mapping) and is_original_checkpoint(checkpoint)):
        raise InputError(
            name,
            "not an original CGCNN checkpoint (expected a dict with a 'state_dict' holding "
            "embedding, convs.K.fc_full, conv_to_fc and fc_out weights)",
        )
    return checkpoint


def is_original_checkpoint(path_or_dict: str | os.PathLike[str] | Mapping[str, Any]) -> bool:
    """Whether a file or a loaded dict is an original CGCNN checkpoint.

    A dict qualifies when its ``state_dict`` holds only original parameter names
    (``embedding``, ``convs.K.fc_full``/``bn1``/``bn2``, ``conv_to_fc``, ``fcs.K``,
    ``fc_out``, optionally prefixed by ``module.``) including the embedding, conv_to_fc and
    fc_out weights.  A path qualifies when :func:`load_original_checkpoint` accepts it.
    """
    if isinstance(path_or_dict, Mapping):
        state = path_or_dict.get("state_dict")
        if not isinstance(state, Mapping) or not state:
            return False
        state = _strip_prefix(state)
        return (
            all(isinstance(k, str) and _ORIGINAL_KEY.match(k) for k in state)
            and all(k in state for k in _REQUIRED)
            and all(hasattr(v, "shape") for v in state.values())
        )
    if not isinstance(path_or_dict, str | os.PathLike):
        return False
    try:
        load_original_checkpoint(path_or_dict)
    except InputError:
        return False
    return True


# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class OriginalArchitecture:
    """The hyperparameters of an original checkpoint, read from its weight shapes.

    Attributes:
        atom_input_len: width of the atom features (embedding input).
        atom_fea_len: F.
        n_conv: number of convolutions.
        h_fea_len: width of the hidden layers.
        n_h: number of hidden layers (1 + number of ``fcs``).
        edge_fea_len: G, number of Gaussians.
        radius: last Gaussian centre (= graph cutoff), Å.
        step: Gaussian spacing, Å.
        max_num_nbr: neighbours per atom.
        task: ``regression`` or ``classification``.
        n_outputs: outputs of ``fc_out``.
    """

    atom_input_len: int
    atom_fea_len: int
    n_conv: int
    h_fea_len: int
    n_h: int
    edge_fea_len: int
    radius: float
    step: float
    max_num_nbr: int
    task: str
    n_outputs: int


def original_architecture(
    checkpoint: Mapping[str, Any], source: str = "checkpoint"
) -> OriginalArchitecture:
    """Infer the architecture of an original checkpoint from its state_dict shapes.

    ``source`` names the checkpoint in error messages.

    Raises:
        InputError: not an original checkpoint, or shapes that do not fit together.
    """
    if not is_original_checkpoint(checkpoint):
        raise InputError(source, "not an original CGCNN checkpoint")
    state = _strip_prefix(checkpoint["state_dict"])
    args = _args_dict(checkpoint.get("args"))

    def shape(key: str) -> tuple[int, ...]:
        return tuple(state[key].shape)

    def fail(reason: str) -> InputError:
        return InputError(source, reason)

    if len(shape("embedding.weight")) != 2:
        raise fail(f"embedding.weight must be 2-D, got {shape('embedding.weight')}")
    atom_fea_len, atom_input_len = shape("embedding.weight")
    conv_ids = sorted({int(k.split(".")[1]) for k in state if k.startswith("convs.")})
    fc_ids = sorted({int(k.split(".")[1]) for k in state if k.startswith("fcs.")})
    if conv_ids != list(range(len(conv_ids))) or fc_ids != list(range(len(fc_ids))):
        raise fail(f"convs/fcs are not numbered 0, 1, ...: {conv_ids}, {fc_ids}")
    if not conv_ids:
        raise fail("the state_dict holds no convolution (convs.0.fc_full)")
    full = shape("convs.0.fc_full.weight") if "convs.0.fc_full.weight" in state else ()
    if len(full) != 2 or full[0] != 2 * atom_fea_len or full[1] <= 2 * atom_fea_len + 1:
        raise fail(
            f"convs.0.fc_full.weight has shape {full}, expected ({2 * atom_fea_len}, "
            f"{2 * atom_fea_len} + number of Gaussians)"
        )
    edge_fea_len = full[1] - 2 * atom_fea_len
    h_fea_len = shape("conv_to_fc.weight")[0]
    n_outputs = shape("fc_out.weight")[0]

    step = float(args.get("step", ORIGINAL_STEP))
    dmin = float(args.get("dmin", 0.0))
    if dmin != 0.0:
        raise fail(f"Gaussians starting at dmin={dmin:g} Å are not supported (the original: 0)")
    radius = round((edge_fea_len - 1) * step, 9)
    if "radius" in args and not math.isclose(float(args["radius"]), radius, abs_tol=1e-6):
        raise fail(
            f"args.radius = {args['radius']} Å but fc_full expects {edge_fea_len} Gaussians, "
            f"i.e. a radius of {radius:g} Å with step {step:g}"
        )
    max_num_nbr = int(args.get("max_num_nbr", ORIGINAL_MAX_NUM_NBR))

    task = str(args.get("task", "classification" if n_outputs == 2 else "regression"))
    if task not in ("regression", "classification"):
        raise fail(f"unknown task {task!r} in args")
    if task == "classification" and n_outputs < 2:
        raise fail(f"args say classification but fc_out has {n_outputs} output")
    if task == "regression" and n_outputs != 1:
        raise fail(f"args say regression but fc_out has {n_outputs} outputs (the original: 1)")
    return OriginalArchitecture(
        atom_input_len=atom_input_len,
        atom_fea_len=atom_fea_len,
        n_conv=len(conv_ids),
        h_fea_len=h_fea_len,
        n_h=1 + len(fc_ids),
        edge_fea_len=edge_fea_len,
        radius=radius,
        step=step,
        max_num_nbr=max_num_nbr,
        task=task,
        n_outputs=n_outputs,
    )


def model_from_original(
    checkpoint: Mapping[str, Any], atom_features: AtomFeatures, source: str = "checkpoint"
) -> CGCNN:
    """Rebuild an original checkpoint as a :class:`CGCNN` (eval mode).

    Every original parameter and buffer is copied onto the parameter of the same name (the
    mapping is the identity on names, see :data:`NAME_MAPPING`), with its shape checked;
    ``num_batches_tracked`` (absent from PyTorch 0.4 checkpoints) is set to 0 when missing.
    Our extra buffers are set as follows: ``atom_table`` from ``atom_features``,
    ``target_mean`` / ``target_std`` from the normalizer (regression; classification keeps
    0 / 1), ``ref_coef`` / ``ref_bias`` zero, ``gaussian.centres`` from the inferred radius.

    Args:
        checkpoint: a dict from :func:`load_original_checkpoint`.
        atom_features: the atom feature table the model was trained with (the original's
            ``atom_init.json``); its width must equal the embedding's input width.
        source: the checkpoint's name in error messages.

    Raises:
        InputError: not an original checkpoint, inconsistent shapes, or atom features of
            the wrong width.
    """
    import torch

    from cgcnn.nn.model import CGCNN, CGCNNConfig

    arch = original_architecture(checkpoint, source)
    if atom_features.dim != arch.atom_input_len:
        raise InputError(
            atom_features.source,
            f"atom features have {atom_features.dim} values per element but the checkpoint's "
            f"embedding expects {arch.atom_input_len}: use the atom_init.json the model was "
            "trained with",
        )
    classification = arch.task == "classification"
    config = CGCNNConfig(
        atom_input_len=arch.atom_input_len,
        atom_fea_len=arch.atom_fea_len,
        n_conv=arch.n_conv,
        h_fea_len=arch.h_fea_len,
        n_h=arch.n_h,
        conv="gated",
        pooling="mean",
        activation="softplus",
        batchnorm=True,
        task=arch.task,
        n_targets=1,
        n_classes=arch.n_outputs if classification else 2,
        dropout=0.5 if classification else 0.0,
        radius=arch.radius,
        gaussian_step=arch.step,
        original_head=True,
    )
    model = CGCNN(config, torch.from_numpy(atom_features.table))
    if model.gaussian.num_features != arch.edge_fea_len:
        raise InputError(
            source,
            f"{arch.edge_fea_len} Gaussians cannot be rebuilt with radius {arch.radius:g} "
            f"and step {arch.step:g}",
        )

    original = {k: torch.as_tensor(v) for k, v in _strip_prefix(checkpoint["state_dict"]).items()}
    ours = model.state_dict()
    new_state: dict[str, torch.Tensor] = {}
    for key, target in ours.items():
        source_key = _ORIGINAL_NAME.get(key, key)
        if source_key in original:
            value = original.pop(source_key)
        elif key.endswith("num_batches_tracked") and _is_network_key(key):
            value = torch.zeros((), dtype=torch.long)
        elif _is_network_key(key):
            raise InputError(source, f"the state_dict lacks {source_key}")
        else:
            value = target  # our own buffers, set below
        if tuple(value.shape) != tuple(target.shape):
            raise InputError(
                source,
                f"{source_key} has shape {tuple(value.shape)}, expected {tuple(target.shape)}",
            )
        new_state[key] = value.to(target.dtype)
    if original:
        raise InputError(source, f"unused parameters in the state_dict: {sorted(original)}")
    if not classification:
        mean, std = _normalizer(checkpoint, source)
        new_state["target_mean"] = torch.tensor([mean], dtype=torch.float32)
        new_state["target_std"] = torch.tensor([std], dtype=torch.float32)
    model.load_state_dict(new_state, strict=True)
    return model.eval()


#: Our name -> original name, for the names that differ (none: the module layout is the
#: original's).  Kept explicit so that a future rename is one line here.
_ORIGINAL_NAME: dict[str, str] = {}

#: The name mapping, for documentation: original pattern -> ours.
NAME_MAPPING: dict[str, str] = {
    "embedding.{weight,bias}": "embedding.{weight,bias}",
    "convs.K.fc_full.{weight,bias}": "convs.K.fc_full.{weight,bias}",
    "convs.K.bn1.{weight,bias,running_mean,running_var,num_batches_tracked}": (
        "convs.K.bn1.* (num_batches_tracked = 0 when absent)"
    ),
    "convs.K.bn2.{...}": "convs.K.bn2.{...}",
    "conv_to_fc.{weight,bias}": "conv_to_fc.{weight,bias}",
    "fcs.K.{weight,bias}": "fcs.K.{weight,bias}",
    "fc_out.{weight,bias}": "fc_out.{weight,bias}",
    "normalizer.mean / normalizer.std": "target_mean / target_std (regression)",
}


def _is_network_key(key: str) -> bool:
    return bool(_ORIGINAL_KEY.match(key))


def _normalizer(checkpoint: Mapping[str, Any], source: str) -> tuple[float, float]:
    norm = checkpoint.get("normalizer")
    if not isinstance(norm, Mapping) or "mean" not in norm or "std" not in norm:
        raise InputError(source, "a regression checkpoint needs normalizer {mean, std}")
    try:
        mean = float(np.asarray(_to_number(norm["mean"])).reshape(()))
        std = float(np.asarray(_to_number(norm["std"])).reshape(()))
    except (TypeError, ValueError):
        raise InputError(source, "normalizer mean/std are not single numbers") from None
    if not (math.isfinite(mean) and math.isfinite(std) and std > 0):
        raise InputError(source, f"bad normalizer: mean {mean}, std {std}")
    return mean, std


def _to_number(value: Any) -> Any:
    if hasattr(value, "detach"):  # a tensor (the public code stores torch scalars)
        return value.detach().cpu().double().numpy()
    return value


def _args_dict(args: Any) -> dict[str, Any]:
    if isinstance(args, argparse.Namespace):
        return vars(args)
    if isinstance(args, Mapping):
        return dict(args)
    return {}


def _strip_prefix(state: Mapping[str, Any]) -> Mapping[str, Any]:
    """The state_dict without DataParallel's ``module.`` prefix (when every key has it)."""
    if state and all(isinstance(k, str) and k.startswith("module.") for k in state):
        return {k[len("module.") :]: v for k, v in state.items()}
    return state


# --------------------------------------------------------------------------- graphs


def featurize_original(
    structure: Structure | Crystal,
    radius: float = 8.0,
    max_num_nbr: int = ORIGINAL_MAX_NUM_NBR,
    *,
    source: str | None = None,
) -> CrystalGraph:
    """The original CGCNN's graph of one crystal, padding and tie order included.

    Per atom i: pymatgen's ``get_all_neighbors(radius, include_index=True)[i]`` sorted by
    distance with Python's stable sort (equal distances keep pymatgen's order), the first
    ``max_num_nbr`` kept; if fewer, the list is padded with neighbour 0 at
    ``radius + 1`` Å (image offset 0).  Every atom therefore has exactly ``max_num_nbr``
    edges.

    Args:
        structure: a pymatgen ``Structure`` (ordered) or a :class:`~cgcnn.crystal.Crystal`.
        radius: the neighbour cutoff, Å (the original: 8).
        max_num_nbr: neighbours per atom (the original: 12).
        source: a file name or id for error messages.

    Returns:
        A :class:`CrystalGraph` with N atoms and E = N * max_num_nbr edges, grouped by
        centre (``edge_index[1]`` = 0 ... 0, 1 ... 1, ...) and in the original's order.

    Raises:
        InputError: a disordered or invalid structure, or bad settings.
    """
    if not (isinstance(radius, int | float) and math.isfinite(radius) and radius > 0):
        raise InputError("radius", f"must be a positive number of Å, got {radius!r}")
    if isinstance(max_num_nbr, bool) or not isinstance(max_num_nbr, int | np.integer):
        raise InputError("max_num_nbr", f"must be a whole number >= 1, got {max_num_nbr!r}")
    if max_num_nbr < 1:
        raise InputError("max_num_nbr", f"must be >= 1, got {max_num_nbr}")
    if isinstance(structure, Crystal):
        crystal = structure
        crystal.validate(source)
        structure = crystal.to_structure()
    else:
        crystal = Crystal.from_structure(structure, source)
        crystal.validate(source)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # include_index is deprecated (always included now)
        all_neighbors = structure.get_all_neighbors(radius, include_index=True)

    n_atoms = len(structure)
    m = int(max_num_nbr)
    neighbor = np.zeros((n_atoms, m), dtype=np.int64)  # padding: atom 0
    distance = np.full((n_atoms, m), radius + PAD_EXTRA, dtype=np.float64)
    offsets = np.zeros((n_atoms, m, 3), dtype=np.int16)
    for i, neighbors in enumerate(all_neighbors):
        kept = sorted(neighbors, key=lambda nbr: nbr.nn_distance)[:m]  # stable
        for k, nbr in enumerate(kept):
            neighbor[i, k] = nbr.index
            distance[i, k] = nbr.nn_distance
            offsets[i, k] = np.rint(nbr.image)

    return CrystalGraph(
        atomic_numbers=crystal.atomic_numbers.astype(np.int64),
        edge_index=np.stack([neighbor.reshape(-1), np.repeat(np.arange(n_atoms), m)]),
        distances=distance.reshape(-1).astype(np.float32),
        offsets=offsets.reshape(-1, 3),
        pos=crystal.cart_coords.astype(np.float32),
        cell=np.array(crystal.lattice, dtype=np.float64),
        radius=float(radius),
    )


# --------------------------------------------------------------------------- prediction


@dataclass(frozen=True)
class OriginalPrediction:
    """The prediction of an original model for one crystal.

    Attributes:
        id: the crystal's id.
        target: its known targets (from ``id_prop.csv`` etc.), or ``None``.
        prediction: regression: the value in the target's units; classification: the
            most probable class (0 or 1 for the published model).
        probabilities: classification: (n_classes,) class probabilities (the ``exp`` of
            the original's LogSoftmax output); regression: ``None``.
    """

    id: str
    target: tuple[float, ...] | None
    prediction: float | int
    probabilities: tuple[float, ...] | None = None


def load_original(
    path: str | os.PathLike[str],
    atom_features: AtomFeatures | str | os.PathLike[str],
) -> CGCNN:
    """:func:`load_original_checkpoint` + :func:`model_from_original` in one call.

    ``atom_features``: a table, an ``atom_init.json`` path or a built-in table name.
    """
    checkpoint = load_original_checkpoint(path)
    return model_from_original(checkpoint, resolve_atom_features(atom_features), os.fspath(path))


def iter_original_graphs(
    source: DataSource,
    atom_features: AtomFeatures | None = None,
    radius: float = 8.0,
    max_num_nbr: int = ORIGINAL_MAX_NUM_NBR,
) -> Iterator[tuple[StructureRecord, CrystalGraph]]:
    """Read ``source`` and build each crystal's original graph (:func:`featurize_original`).

    Args:
        source: anything :func:`cgcnn.io.iter_structures` reads.
        atom_features: when given, every element must be in this table (else InputError).
        radius, max_num_nbr: the graph settings (the original: 8 Å, 12).

    Yields:
        (record, graph) per crystal, in the source's order.

    Raises:
        InputError: the first unreadable or invalid structure.
    """
    from cgcnn.io import iter_structures

    for record in iter_structures(source):
        if record.error is not None:
            raise InputError(record.listed_at or record.source, record.error)
        crystal = record.load()
        if atom_features is not None:
            atom_features(crystal.atomic_numbers, record.source)  # unknown element -> error
        yield record, featurize_original(crystal, radius, max_num_nbr, source=record.source)


def predict_graphs(
    model: CGCNN,
    items: Iterable[tuple[str, tuple[float, ...] | None, CrystalGraph]],
    batch_size: int = 64,
) -> Iterator[OriginalPrediction]:
    """Run a model (e.g. from :func:`model_from_original`) on graphs, in batches.

    Args:
        model: the model, in eval mode.
        items: (id, known targets or None, graph) per crystal.
        batch_size: crystals per forward pass (no effect on the results in eval mode).

    Yields:
        One :class:`OriginalPrediction` per item, in order.
    """
    import torch
    from torch_geometric.data import Batch

    if batch_size < 1:
        raise InputError("batch_size", f"must be >= 1, got {batch_size}")
    classification = model.config.task == "classification"
    pending: list[tuple[str, tuple[float, ...] | None, CrystalGraph]] = []

    def flush() -> list[OriginalPrediction]:
        batch = Batch.from_data_list([graph.to_data() for _, _, graph in pending])
        with torch.no_grad():
            out = model.predict(batch).double().numpy()  # (B, T) or (B, C)
        done = []
        for (rid, target, _), row in zip(pending, out, strict=True):
            if classification:
                probs = tuple(float(p) for p in row)
                done.append(OriginalPrediction(rid, target, int(np.argmax(row)), probs))
            else:
                done.append(OriginalPrediction(rid, target, float(row[0])))
        pending.clear()
        return done

    for item in items:
        pending.append(item)
        if len(pending) >= batch_size:
            yield from flush()
    if pending:
        yield from flush()


def predict_original(
    checkpoint: str | os.PathLike[str] | Mapping[str, Any],
    source: DataSource,
    atom_init: AtomFeatures | str | os.PathLike[str] | None = None,
    *,
    batch_size: int = 64,
) -> list[OriginalPrediction]:
    """Predict every crystal of ``source`` with an original checkpoint, as the original would.

    Args:
        checkpoint: the ``.pth.tar`` path, or a dict from :func:`load_original_checkpoint`.
        source: anything :func:`cgcnn.io.iter_structures` reads (a CGCNN data folder, CIF
            files, a CSV, structures, ...).
        atom_init: the atom feature table: an ``atom_init.json`` path, an
            :class:`AtomFeatures` or a built-in name.  Default: ``atom_init.json`` inside
            ``source`` (a data folder), as the original code does.
        batch_size: crystals per forward pass (no effect on the results: eval mode).

    Returns:
        One :class:`OriginalPrediction` per crystal, in the source's order.

    Raises:
        InputError: a bad checkpoint, no or mismatching atom features, a bad structure or
            an element missing from the atom feature table.
    """
    from cgcnn.io import find_atom_init

    if atom_init is None:
        found = find_atom_init(source)
        if found is None:
            raise InputError(
                "atom_init",
                "no atom_init.json in the data folder; give the atom feature table the model "
                "was trained with (the original reads DATA/atom_init.json)",
            )
        atom_init = found
    atom_features = resolve_atom_features(atom_init)
    if isinstance(checkpoint, Mapping):
        loaded, name = checkpoint, "checkpoint"
    else:
        loaded, name = load_original_checkpoint(checkpoint), os.fspath(checkpoint)
    model = model_from_original(loaded, atom_features, name)
    max_num_nbr = int(_args_dict(loaded.get("args")).get("max_num_nbr", ORIGINAL_MAX_NUM_NBR))
    graphs = iter_original_graphs(source, atom_features, model.config.radius, max_num_nbr)
    items = ((record.id, record.target, graph) for record, graph in graphs)
    return list(predict_graphs(model, items, batch_size))
