import json

import pytest
import torch

from edgeae.errors import EdgeAEError
from edgeae.outputs import OutputLock
from edgeae.training.train import TrainConfig, load_model, train

TINY = dict(data="synthetic", samples_per_epoch=512, val_samples=128, max_images=12, batch_size=64)


def test_run_folder_holds_config_checkpoints_metrics_and_plot(tmp_path):
    train(TrainConfig(epochs=2, **TINY), tmp_path / "run", progress=False)
    names = {p.name for p in (tmp_path / "run").iterdir()}
    assert {"config.json", "best.pt", "last.pt", "metrics.json", "loss.png"} <= names
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert [m["epoch"] for m in metrics["epochs"]] == [1, 2]
    # state dicts only: loadable with weights_only=True
    assert "model" in torch.load(tmp_path / "run" / "best.pt", weights_only=True)


def test_training_reduces_validation_loss(tmp_path):
    result = train(TrainConfig(epochs=3, **{**TINY, "samples_per_epoch": 4096}), tmp_path / "run", progress=False)
    losses = [m["val_loss"] for m in result["epochs"]]
    assert losses[-1] < losses[0]


def test_same_seed_gives_identical_weights(tmp_path):
    train(TrainConfig(epochs=1, **TINY), tmp_path / "a", progress=False)
    train(TrainConfig(epochs=1, **TINY), tmp_path / "b", progress=False)
    a, _, _ = load_model(tmp_path / "a", "last")
    b, _, _ = load_model(tmp_path / "b", "last")
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_resume_continues_to_the_same_weights_as_an_uninterrupted_run(tmp_path):
    train(TrainConfig(epochs=2, **TINY), tmp_path / "full", progress=False)
    train(TrainConfig(epochs=1, **TINY), tmp_path / "resumed", progress=False)
    train(TrainConfig(epochs=2, **TINY), tmp_path / "resumed", resume=True, progress=False)
    a, _, _ = load_model(tmp_path / "full", "last")
    b, _, _ = load_model(tmp_path / "resumed", "last")
    for x, y in zip(a.state_dict().values(), b.state_dict().values()):
        torch.testing.assert_close(x, y)


def test_denoise_task_trains_noisy_to_clean(tmp_path):
    result = train(TrainConfig(epochs=1, task="denoise", noise="salt_pepper", noise_level=0.05, **TINY),
                   tmp_path / "run", progress=False)
    assert result["epochs"][0]["val_loss"] > 0


def test_existing_run_is_not_overwritten_without_resume(tmp_path):
    train(TrainConfig(epochs=1, **TINY), tmp_path / "run", progress=False)
    with pytest.raises(EdgeAEError, match="--resume"):
        train(TrainConfig(epochs=1, **TINY), tmp_path / "run", progress=False)


def test_interrupt_keeps_the_last_complete_checkpoint(tmp_path, monkeypatch):
    import edgeae.training.train as train_module

    calls = {"n": 0}
    real = train_module._evaluate

    def evaluate_then_interrupt(*args):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(train_module, "_evaluate", evaluate_then_interrupt)
    with pytest.raises(EdgeAEError, match="epoch 1: continue with --resume"):
        train(TrainConfig(epochs=3, **TINY), tmp_path / "run", progress=False)
    ckpt = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert ckpt["epoch"] == 1


def test_second_train_into_the_same_folder_is_refused_while_the_first_runs(tmp_path):
    (tmp_path / "run").mkdir()
    with OutputLock(tmp_path / "run"):  # what a first `edgeae train --out run` holds until it ends
        with pytest.raises(EdgeAEError, match="being written by another edgeae process"):
            train(TrainConfig(epochs=1, **TINY), tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / "config.json").exists()
