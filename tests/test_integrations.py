import pytest
import torch
import torch.nn.functional as F
from torch import nn

import nas_logger
from nas_logger.detector import Alarm, OverfitDetector
from nas_logger import format as fmt
from conftest import SmallCNN
from events import read_alarm_status, read_nas, read_scalars, step_unit


def digits_like(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 8, 8, generator=g), torch.randint(0, 10, (n,), generator=g)


def hf_training(transformers, tmp_path, epochs):
    """The digits-like samples as keyword batches and CPU TrainingArguments evaluating every epoch."""
    x, y = digits_like()
    data = [{"pixels": xi, "labels": yi} for xi, yi in zip(x, y)]
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path / "out"), num_train_epochs=epochs, eval_strategy="epoch", save_strategy="no",
        per_device_train_batch_size=16, per_device_eval_batch_size=16, learning_rate=0.01, report_to="none",
        use_cpu=True, disable_tqdm=True,
    )
    return data, args


def lightning_classifier(pl):
    """A LightningModule over SmallCNN that logs ``val_loss``."""

    class Classifier(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = SmallCNN()

        def forward(self, x):
            return self.net(x)

        def training_step(self, batch, _):
            x, y = batch
            return F.cross_entropy(self(x), y)

        def validation_step(self, batch, _):
            x, y = batch
            self.log("val_loss", F.cross_entropy(self(x), y))

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.01)

    return Classifier


class KeywordModel(nn.Module):
    """The Trainer calls model(**batch) and reads the loss from the output."""

    def __init__(self):
        super().__init__()
        self.net = SmallCNN()

    def forward(self, pixels=None, labels=None):
        logits = self.net(pixels)
        return {"loss": F.cross_entropy(logits, labels), "logits": logits}


def test_lightning_callback_logs_every_validation_epoch(tmp_path):
    pl = pytest.importorskip("lightning.pytorch")
    from nas_logger.integrations.lightning import NASCallback

    Classifier = lightning_classifier(pl)

    x, y = digits_like()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=16)
    logger = pl.loggers.TensorBoardLogger(str(tmp_path), name="lit")
    trainer = pl.Trainer(max_epochs=3, accelerator="cpu", logger=logger, callbacks=[NASCallback()],
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         num_sanity_val_steps=0)
    trainer.fit(Classifier(), loader, loader)
    run = logger.log_dir
    layer, stats = read_nas(run)[("net.conv2", fmt.STATS)]
    assert [s for s, _ in stats] == [0, 1, 2] and layer.depth == 1
    assert [s for s, _ in read_scalars(run)["test_loss"]] == [0, 1, 2]
    assert step_unit(run) == "epoch"  # it logs at trainer.current_epoch


def test_huggingface_callback_logs_every_evaluation(tmp_path):
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("accelerate")
    from nas_logger.integrations.huggingface import NASTrainerCallback

    data, args = hf_training(transformers, tmp_path, epochs=2)
    trainer = transformers.Trainer(model=KeywordModel(), args=args, train_dataset=data, eval_dataset=data,
                                   callbacks=[NASTrainerCallback(tmp_path / "nas")])
    trainer.train()
    layer, stats = read_nas(tmp_path / "nas")[("net.fc1", fmt.STATS)]
    assert [s for s, _ in stats] == [4, 8]  # 64 samples / 16 per step = 4 steps per epoch
    assert len(read_scalars(tmp_path / "nas")["test_loss"]) == 2
    assert step_unit(tmp_path / "nas") == "global step"  # it logs at state.global_step


def test_huggingface_callback_takes_a_users_step_unit():
    pytest.importorskip("transformers")
    from nas_logger.integrations.huggingface import NASTrainerCallback

    assert NASTrainerCallback(step_unit="optimizer step").watch_options["step_unit"] == "optimizer step"
    assert NASTrainerCallback(layers=["fc1"]).watch_options == {"step_unit": "global step", "layers": ["fc1"]}


def test_keyword_probe_is_captured_and_replayed(tmp_path):
    class Keyword(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 4)
            self.out = nn.Linear(4, 2)

        def forward(self, *, features, mask):
            return self.out(self.fc(features) * mask)

    model = Keyword()
    monitor = nas_logger.watch(model, tmp_path)
    model(features=torch.randn(100, 3), mask=torch.ones(100, 1))
    assert set(monitor.probe) == {"features", "mask"} and monitor.probe["features"].shape == (64, 3)
    assert set(monitor.log(0)) == {"fc", "out"}
    monitor.close()
    with pytest.raises(ValueError, match=r"probe of keys features \(2, 5\), mask \(2, 1\) cannot be fed to Keyword"):
        nas_logger.watch(model, tmp_path, probe={"features": torch.randn(2, 5), "mask": torch.ones(2, 1)})


class ScriptedAlarm(OverfitDetector):
    """An alarm that fires at the ``fire``-th log with its onset at the ``onset``-th: the trainers, callbacks and
    weights are real, only the moment of the alarm is set, so that stop and rewind can be checked exactly."""

    def __init__(self, fire: int, onset: int) -> None:
        super().__init__()
        self.fire, self.onset_at = fire, onset

    def update(self, step, medians):
        self._steps.append(int(step))
        self._epochs += 1
        if self.alarm is None and self._epochs == self.fire:
            self.alarm = Alarm(int(step), tuple(medians), self._steps[self.onset_at - 1])
            return self.alarm
        return None


def snapshot(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def same_weights(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("restore", [None, "onset"])
def test_lightning_stops_at_the_alarm_and_rewinds_to_the_onset(tmp_path, restore):
    pl = pytest.importorskip("lightning.pytorch")
    from nas_logger.integrations.lightning import NASCallback

    class Recorder(pl.Callback):
        """The weights at the end of every validation epoch, before the NAS callback acts."""

        def __init__(self):
            self.weights = {}

        def on_validation_epoch_end(self, trainer, module):
            self.weights[trainer.current_epoch] = snapshot(module)

    recorder = Recorder()
    nas = NASCallback(tmp_path / "nas", stop_on_alarm=True, restore=restore, keep=3,
                      detect=ScriptedAlarm(fire=5, onset=3))
    x, y = digits_like()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=16)
    module = lightning_classifier(pl)()
    trainer = pl.Trainer(max_epochs=12, accelerator="cpu", logger=False, callbacks=[recorder, nas],
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         num_sanity_val_steps=0)
    trainer.fit(module, loader, loader)
    assert sorted(recorder.weights) == [0, 1, 2, 3, 4]  # stopped after the alarm's epoch
    assert not same_weights(recorder.weights[2], recorder.weights[4])
    final = snapshot(module)
    assert same_weights(final, recorder.weights[2] if restore else recorder.weights[4])
    status = read_alarm_status(tmp_path / "nas")
    assert status[-1] == (4, {"state": "fired", "alarm": 4, "onset": 2, "epochs_needed": None,
                              "message": "NAS alarm fired at epoch 4; the climb became significant at epoch 2"})
    if restore:
        assert nas.stop.rewind.steps == [2, 3, 4] and nas.stop.restored_step == 2
        weights = sum(t.numel() * t.element_size() for t in final.values())
        assert nas.stop.rewind.nbytes == 3 * weights  # keep state dicts, no more


@pytest.mark.parametrize("restore", [None, "onset"])
def test_huggingface_stops_at_the_alarm_and_rewinds_to_the_onset(tmp_path, restore):
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("accelerate")
    from nas_logger.integrations.huggingface import NASTrainerCallback

    class Recorder(transformers.TrainerCallback):
        def __init__(self):
            self.weights = {}

        def on_evaluate(self, args, state, control, model=None, **kwargs):
            self.weights[state.global_step] = snapshot(model)

    data, args = hf_training(transformers, tmp_path, epochs=10)
    recorder = Recorder()
    nas = NASTrainerCallback(tmp_path / "nas", stop_on_alarm=True, restore=restore,
                             detect=ScriptedAlarm(fire=3, onset=2))
    model = KeywordModel()
    trainer = transformers.Trainer(model=model, args=args, train_dataset=data, eval_dataset=data,
                                   callbacks=[recorder, nas])
    trainer.train()
    assert sorted(recorder.weights) == [4, 8, 12] and trainer.state.global_step == 12
    assert not same_weights(recorder.weights[8], recorder.weights[12])
    assert same_weights(snapshot(model), recorder.weights[8] if restore else recorder.weights[12])
    assert read_alarm_status(tmp_path / "nas")[-1][1]["onset"] == 8


def test_stop_options_are_checked():
    from nas_logger.integrations.stopping import AlarmStop

    with pytest.raises(ValueError, match="restore must be None or 'onset'.*got 'best'"):
        AlarmStop(True, "best")
    with pytest.raises(ValueError, match="restore='onset' .* needs stop_on_alarm=True"):
        AlarmStop(False, "onset")
    with pytest.raises(ValueError, match="keep must be an int >= 1.*got 0"):
        AlarmStop(True, "onset", keep=0)
    assert AlarmStop(True).watch_options({"layers": ["fc1"]}) == {"layers": ["fc1"], "detect": True}
    assert AlarmStop(False).watch_options({"layers": ["fc1"]}) == {"layers": ["fc1"]}


def test_rewind_keeps_the_last_steps_and_falls_back_to_the_oldest(caplog):
    from nas_logger.integrations.rewind import Rewind

    model = nn.Linear(2, 1)
    rewind = Rewind(model, keep=2)
    weights = {}
    for step in (0, 5, 10):
        with torch.no_grad():
            model.weight.fill_(step)
        rewind.save(step)
        weights[step] = model.weight.clone()
    assert rewind.steps == [5, 10] and rewind.nbytes == 2 * (2 + 1) * 4
    assert rewind.restore(5) == 5 and torch.equal(model.weight, weights[5])
    assert rewind.restore(7) == 5  # a step between saves: the latest kept before it
    with caplog.at_level("WARNING", logger="nas_logger"):
        assert rewind.restore(0) == 5  # no longer kept: the oldest kept, with a warning
    assert "weights of step 0 are no longer kept (kept: 5, 10)" in caplog.text
    assert Rewind(model).restore(3) is None
    with pytest.raises(ValueError, match="keep must be an int >= 1.*got 0"):
        Rewind(model, keep=0)
