"""training/report.py: the reproduction table is computed from what the event files hold."""
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.util import tensor_util

from events import read_scalars
from nas_logger import format as fmt
from training.data import load_data
from training.report import model_row, read_run, report
from training.train import Protocol, train_run


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    root = tmp_path_factory.mktemp("grid")
    data = load_data("digits", train_size=64, test_size=32, distorted=True)
    protocol = Protocol(epochs=3, width=0.0625)
    results = {
        name: [train_run(name, data, protocol, seed, root / name / f"seed{seed}", progress=False) for seed in seeds]
        for name, seeds in (("vanilla", (0, 1)), ("normnet", (0,)))
    }
    return root, results


def test_read_run_gives_the_logged_curves_with_layers_in_depth_order(grid):
    root, results = grid
    run = read_run(root / "vanilla" / "seed0")
    assert list(run.nas) == ["conv1", "conv2", "conv3", "conv4", "fc1", "prediction"]
    assert run.feature_layers == ["conv1", "conv2", "conv3", "conv4", "fc1"]
    assert run.epochs == [1, 2, 3]
    logged = read_scalars(root / "vanilla" / "seed0")
    assert [v for _, v in logged["test_loss"]] == pytest.approx([run.scalars["test_loss"][e] for e in (1, 2, 3)])
    assert [run.scalars["test_loss"][e] for e in (1, 2, 3)] == pytest.approx(results["vanilla"][0].test_loss, rel=1e-6)
    assert run.overfit_epoch == results["vanilla"][0].overfit_epoch
    # Independent of the plugin's reader: TensorBoard's own event accumulator, the median column of the
    # feature layers' rows (the first five) of the stats table at epoch 1, averaged in float64.
    events = EventAccumulator(str(root / "vanilla" / "seed0"), size_guidance={"tensors": 0})
    events.Reload()
    median = fmt.STAT_FIELDS.index("median")
    table = next(tensor_util.make_ndarray(e.tensor_proto) for e in events.Tensors(fmt.TABLE_TAG) if e.step == 1)
    medians = [float(v) for v in table[:5, median]]
    assert run.feature_nas(1) == pytest.approx(sum(medians) / len(medians), rel=1e-6)
    assert 0 < run.feature_nas(1) < 1


def test_report_rows_hold_the_peak_accuracy_over_seeds(grid):
    root, results = grid
    row = model_row("vanilla", [read_run(root / "vanilla" / f"seed{s}") for s in (0, 1)])
    peaks = [r.peak_accuracy for r in results["vanilla"]]
    assert row[0] == "VanillaNet"
    assert row[1].startswith(f"{sum(peaks) / 2:.4f}")
    assert row[2] == ", ".join(str(r.overfit_epoch) for r in results["vanilla"])
    text = report(root)
    assert "| VanillaNet |" in text and "| NormNet |" in text and "| conv1 |" in text


def test_report_of_an_empty_folder_says_so(tmp_path):
    with pytest.raises(ValueError, match="no model folders"):
        report(tmp_path)


def test_a_suite_of_a_curves_file_gives_the_tables_of_its_grid_folder(grid, tmp_path):
    from training.evaluate_detector import save_curves

    root, _ = grid
    runs = {f"{model} seed{s}": read_run(root / folder / f"seed{s}")
            for folder, model, seeds in (("vanilla", "VanillaNet", (0, 1)), ("normnet", "NormNet", (0,)))
            for s in seeds}
    save_curves({"tiny": runs}, tmp_path / "curves.json.gz")
    assert report(f"{tmp_path / 'curves.json.gz'}:tiny") == report(root)
    with pytest.raises(ValueError, match="no suite 'other'; it holds tiny"):
        report(f"{tmp_path / 'curves.json.gz'}:other")


def test_update_rewrites_each_report_block_from_its_own_arguments(grid, tmp_path):
    from training.report import main

    root, _ = grid
    page = tmp_path / "page.md"
    page.write_text(f"# Title\n\ntext\n\n<!-- report: {root} --no-layers -->\nold table\n<!-- end report -->\n\nafter\n")
    assert main(["--update", str(page)]) == 0
    expected = f"# Title\n\ntext\n\n<!-- report: {root} --no-layers -->\n\n{report(root, layers=False)}\n\n<!-- end report -->\n\nafter\n"
    assert page.read_text() == expected
    main(["--update", str(page)])
    assert page.read_text() == expected  # a page that is up to date stays as it is


def test_a_diverged_run_is_reported_as_diverged_beside_the_others(grid, tmp_path):
    """Every test loss NaN (a learning rate of 1e30): its row and layer table say so, the other seeds count."""
    root, _ = grid
    data = load_data("digits", train_size=64, test_size=32, distorted=True)
    train_run("vanilla", data, Protocol(epochs=2, lr=1e30, width=0.0625, eb_batches=0), 7,
              tmp_path / "vanilla" / "seed7", progress=False)
    diverged = read_run(tmp_path / "vanilla" / "seed7")
    assert diverged.overfit_epoch is None
    good = read_run(root / "vanilla" / "seed0")
    row = model_row("vanilla", [good, diverged])
    assert row[2] == f"{good.overfit_epoch}, diverged"
    assert row[5].endswith("; diverged")
    assert row[4].endswith("→ nan ± nan")  # the end's loss: NaN, as logged
    assert model_row("vanilla", [diverged])[4] == "- → nan"
    text = report(tmp_path)
    assert "| VanillaNet |" in text and "| conv1 |" in text
