import pytest
import torch
import torch.nn.functional as F
from torch import nn

import nas_logger
from nas_logger import format as fmt
from conftest import SmallCNN
from events import read_nas, read_scalars, step_unit


def digits_like(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 8, 8, generator=g), torch.randint(0, 10, (n,), generator=g)


def test_lightning_callback_logs_every_validation_epoch(tmp_path):
    pl = pytest.importorskip("lightning.pytorch")
    from nas_logger.integrations.lightning import NASCallback

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

    class KeywordModel(nn.Module):
        """The Trainer calls model(**batch) and reads the loss from the output."""

        def __init__(self):
            super().__init__()
            self.net = SmallCNN()

        def forward(self, pixels=None, labels=None):
            logits = self.net(pixels)
            return {"loss": F.cross_entropy(logits, labels), "logits": logits}

    x, y = digits_like()
    data = [{"pixels": xi, "labels": yi} for xi, yi in zip(x, y)]
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path / "out"), num_train_epochs=2, eval_strategy="epoch", save_strategy="no",
        per_device_train_batch_size=16, per_device_eval_batch_size=16, learning_rate=0.01, report_to="none",
        use_cpu=True, disable_tqdm=True,
    )
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
