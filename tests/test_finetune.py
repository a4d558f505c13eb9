"""Fine-tuning (``--init``): the weights, architecture and graphs come from the checkpoint."""

from __future__ import annotations

import pytest
import torch

from cgcnn import InputError
from cgcnn.finetune import copy_weights
from cgcnn.nn import CGCNN, CGCNNConfig
from cgcnn.prediction import load
from cgcnn.training import train
from helpers import shared

SOURCE = {"atom_fea_len": 16, "h_fea_len": 16, "n_conv": 2, "conv": "gated", "max_neighbors": 8}
#: a step too small to move any weight: what the run starts from is what it ends with
FROZEN = {"lr": 1e-12, "weight_decay": 0.0, "ema": 0.0, "epochs": 1, "scheduler": "none"}


def _train(tmp_path, name, data=None, **kwargs):
    options = {"progress": False, "plots": False, "cache_dir": tmp_path / "cache", **kwargs}
    return train(data or shared("sample-regression"), tmp_path / name, **options)


@pytest.fixture
def source(tmp_path):
    return _train(tmp_path, "source", epochs=2, **SOURCE)


def _parameters(model: CGCNN) -> dict[str, torch.Tensor]:
    return dict(model.named_parameters())


def test_fine_tuning_starts_from_the_checkpoint(source, tmp_path):
    tuned = _train(tmp_path, "tuned", init=source.checkpoint, **FROZEN)
    before, _ = load(source.checkpoint)
    after, info = load(tuned.checkpoint)
    # the architecture and graph settings are the checkpoint's, not train()'s defaults
    assert after.config.conv == "gated" and after.config.atom_fea_len == 16
    assert info["graph_settings"]["max_neighbors"] == 8
    assert info["meta"]["init"] == str(source.checkpoint)
    assert torch.equal(after.atom_table, before.atom_table)
    start = _parameters(before)
    for name, value in _parameters(after).items():
        torch.testing.assert_close(value, start[name], rtol=0, atol=1e-6, msg=name)


def test_options_that_contradict_the_checkpoint_are_refused(source, tmp_path):
    with pytest.raises(InputError, match="--atom-fea-len: is 32 but .* built with 16"):
        _train(tmp_path, "wide", init=source.checkpoint, atom_fea_len=32, **FROZEN)
    with pytest.raises(InputError, match="atom features come from the --init checkpoint"):
        _train(tmp_path, "feat", init=source.checkpoint, atom_features="onehot", **FROZEN)
    with pytest.raises(InputError, match="missing.ckpt: no such checkpoint file"):
        _train(tmp_path, "none", init=tmp_path / "missing.ckpt", **FROZEN)
    listing = tmp_path / "ensemble.json"
    listing.write_text('{"members": []}')
    with pytest.raises(InputError, match="ensemble listing; start from one model"):
        _train(tmp_path, "ens", init=listing, **FROZEN)
    # the same value as the checkpoint's is accepted
    _train(tmp_path, "agree", init=source.checkpoint, conv="gated", max_neighbors=8, **FROZEN)


def test_max_neighbors_message_names_the_given_value(source, tmp_path):
    with pytest.raises(InputError, match="--max-neighbors: is 6 but .* built with 8"):
        _train(tmp_path, "nn", init=source.checkpoint, max_neighbors=6, **FROZEN)


def test_a_new_task_starts_the_output_layer_afresh():
    torch.manual_seed(0)
    common = {"atom_input_len": 5, "atom_fea_len": 8, "h_fea_len": 8, "n_conv": 1}
    regression = CGCNN(CGCNNConfig(**common, n_targets=2))
    classifier = CGCNN(CGCNNConfig(**common, task="classification", n_classes=2))
    fresh_out = classifier.fc_out.weight.detach().clone()
    assert copy_weights(classifier, regression) == ["fc_out.weight", "fc_out.bias"]
    assert torch.equal(classifier.fc_out.weight, fresh_out)  # same shape, but not copied
    assert torch.equal(classifier.convs[0].fc_full.weight, regression.convs[0].fc_full.weight)
    # a regression of the same width keeps it; the target scaling is never copied
    other = CGCNN(CGCNNConfig(**common, n_targets=2))
    regression.target_mean.fill_(3.0)
    assert copy_weights(other, regression) == []
    assert torch.equal(other.fc_out.weight, regression.fc_out.weight)
    assert torch.equal(other.target_mean, torch.zeros(2))


def test_fine_tuning_an_original_checkpoint(tmp_path):
    original = shared("pretrained-cgcnn") / "formation-energy-per-atom.pth.tar"
    atom_init = shared("atom_init.json")
    with pytest.raises(InputError, match="original CGCNN checkpoint: give the atom_init.json"):
        _train(tmp_path, "bare", init=original, **FROZEN)
    tuned = _train(
        tmp_path, "tuned", init=original, atom_features=atom_init, extensive=True, **FROZEN
    )
    before, _ = load(original, atom_init)
    after, _ = load(tuned.checkpoint)
    assert after.config.extensive and after.config.conv == "gated"
    start = _parameters(before)
    for name, value in _parameters(after).items():
        torch.testing.assert_close(value, start[name], rtol=0, atol=1e-6, msg=name)


def test_a_fine_tuned_run_resumes(source, tmp_path):
    options = {**FROZEN, "lr": 1e-3, "epochs": 2}
    first = _train(tmp_path, "run", init=source.checkpoint, stop_after=1, **options)
    assert first.metrics["epochs_run"] == 1
    resumed = _train(
        tmp_path, "run", init=source.checkpoint, resume=tmp_path / "run" / "last.ckpt", **options
    )
    assert resumed.metrics["epochs_run"] == 2
