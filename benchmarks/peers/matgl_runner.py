"""Train a MEGNet or an M3GNet property model with matgl on one fold (peer benchmark).

Runs in matgl's own environment: ``python matgl_runner.py JOB.json``.  The job names a JSON
file of pymatgen structures (``Structure.as_dict()``) with targets for the train, val and
test parts, the model (``megnet`` or ``m3gnet``), the task and the wall-clock budget.

Trained as matgl's tutorials train them ("Training a MEGNet / M3GNet Formation Energy Model
with PyTorch Lightning"): the element list of the data set, ``Structure2Graph`` with a 4 Å
cutoff, ``MGLDataset`` and ``MGLDataLoader`` with ``collate_fn_graph``, the tutorial's MEGNet
(16-dim node embedding, 100 Gaussians on 0-5 Å, 3 blocks, set2set) or M3GNet
(``is_intensive=True``, set2set readout, three-body cutoff 4 Å), ``ModelLightningModule`` with
its defaults (Adam lr 1e-3, cosine decay over 1000 steps, MSE) and a Lightning ``Trainer``.
The tutorials' demo values are replaced: batch 128 instead of 2 (matgl's own MP
formation-energy training script uses 128), 2,000 epochs (the tutorials' advice for formation
energy) cut by a wall-clock stop, Lightning's ``max_time`` = the budget.  Writes the job's
``result`` JSON.
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from datetime import timedelta
from pathlib import Path


def main() -> int:
    job = json.loads(Path(sys.argv[1]).read_text())
    warnings.simplefilter("ignore")
    import lightning as L
    import matgl
    import numpy as np
    import torch
    from lightning.pytorch.loggers import CSVLogger
    from matgl.ext.pymatgen import Structure2Graph, get_element_list
    from matgl.graph.data import MGLDataLoader, MGLDataset, collate_fn_graph
    from matgl.layers import BondExpansion
    from matgl.models import M3GNet, MEGNet
    from matgl.utils.training import ModelLightningModule
    from pymatgen.core import Structure

    work = Path(job["work"])
    tool = job["tool"]
    classification = job["task"] == "classification"
    parts = json.loads((work / "structures.json").read_text())
    structures = {
        name: [Structure.from_dict(r["structure"]) for r in rows] for name, rows in parts.items()
    }
    targets = {name: [float(r["y"]) for r in rows] for name, rows in parts.items()}
    elem_list = get_element_list([s for name in ("train", "val", "test") for s in structures[name]])
    converter = Structure2Graph(element_types=elem_list, cutoff=4.0)
    datasets = {
        name: MGLDataset(
            structures=structures[name],
            labels={"y": targets[name]},
            converter=converter,
            root=str(work / f"graphs-{name}"),
        )
        for name in ("train", "val", "test")
    }
    train_loader, val_loader, test_loader = MGLDataLoader(
        train_data=datasets["train"],
        val_data=datasets["val"],
        test_data=datasets["test"],
        collate_fn=collate_fn_graph,
        batch_size=128,
        num_workers=0,
    )
    torch.manual_seed(0)
    if tool == "megnet":
        bond_expansion = BondExpansion(
            rbf_type="Gaussian", initial=0.0, final=5.0, num_centers=100, width=0.5
        )
        model = MEGNet(
            dim_node_embedding=16,
            dim_edge_embedding=100,
            dim_state_embedding=2,
            nblocks=3,
            hidden_layer_sizes_input=(64, 32),
            hidden_layer_sizes_conv=(64, 64, 32),
            nlayers_set2set=1,
            niters_set2set=2,
            hidden_layer_sizes_output=(32, 16),
            is_classification=classification,
            activation_type="softplus2",
            element_types=elem_list,
            bond_expansion=bond_expansion,
            cutoff=4.0,
            gauss_width=0.5,
        )
    else:
        model = M3GNet(
            element_types=elem_list,
            is_intensive=True,
            readout_type="set2set",
            task_type="classification" if classification else "regression",
        )
    changes = [
        "batch size 2 (the tutorial's demo value) -> 128 (matgl's MP formation-energy "
        "training script)",
        f"max_epochs 20 (demo) -> 2000 (the tutorial's advice), stopped by the wall clock: "
        f"max_time = the {float(job['budget']):.0f} s budget",
    ]
    if classification:
        mean, std = 0.0, 1.0
        changes.append(
            "classification: the model's sigmoid output, trained with the module's default "
            "MSE loss (ModelLightningModule has no cross-entropy)"
        )
    else:
        mean, std = float(np.mean(targets["train"])), float(np.std(targets["train"]))
        changes.append(
            "data_mean / data_std = the training targets' mean and std (ModelLightningModule "
            "arguments; the tutorial leaves 0 / 1 for formation energies near 0)"
        )
    module = ModelLightningModule(model=model, data_mean=mean, data_std=std)

    class EpochClock(L.Callback):
        """Notes when each epoch (training and validation) ends."""

        def __init__(self) -> None:
            self.ends: list[float] = []

        def on_train_epoch_end(self, trainer, pl_module) -> None:
            self.ends.append(time.perf_counter())

    clock = EpochClock()
    trainer = L.Trainer(
        max_epochs=2000,
        max_time=timedelta(seconds=float(job["budget"])),
        accelerator="cpu",
        logger=CSVLogger(str(work / "logs"), name=tool),
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[clock],
    )
    started = time.perf_counter()
    trainer.fit(model=module, train_dataloaders=train_loader, val_dataloaders=val_loader)
    train_seconds = time.perf_counter() - started
    epochs = int(trainer.current_epoch)
    ends = clock.ends
    module.eval()
    values = []
    with torch.no_grad():
        for g, lat, state_attr, _labels in test_loader:
            out = module(g=g, lat=lat, state_attr=state_attr)
            values.extend((out * std + mean).reshape(-1).tolist())
    ids = [r["id"] for r in parts["test"]]
    result = {
        "predictions": dict(zip(ids, values, strict=True)),
        "train_seconds": round(train_seconds, 1),
        # the first epoch's seconds, and the median of the later ones (or the first)
        "first_epoch_seconds": round(ends[0] - started, 2) if ends else None,
        "epoch_seconds": round(
            float(np.median(np.diff(ends))) if len(ends) > 1 else ends[0] - started, 2
        )
        if ends
        else None,
        "parameters": sum(p.numel() for p in model.parameters()),
        "epochs": epochs,
        "changes": changes,
        "version": matgl.__version__,
        "torch": torch.__version__,
    }
    Path(job["result"]).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
