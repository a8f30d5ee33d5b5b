"""training/cli.py and training/train.py: the protocol end to end, read back from the event files."""
import subprocess
import sys

import pytest
import torch
from torch import nn

from events import read_nas, read_scalars
from training import cli
from training.data import load_data
from training.models import build_model, nas_layers
from training.penalties import make_penalty, weight_penalty
from training.train import Protocol, evaluate, train_run

TINY = ["--width", "0.0625", "--train-size", "64", "--test-size", "32", "--no-progress"]
VANILLA_LAYERS = {"conv1", "conv2", "conv3", "conv4", "fc1", "prediction"}


def test_cli_trains_a_grid_and_logs_nas_for_every_layer(tmp_path, capsys):
    argv = ["--models", "vanilla,nasreg", "--epochs", "1", "--repeats", "1", "--distorted", "--logdir", str(tmp_path)]
    assert cli.main(argv + TINY) == 0
    for model in ("vanilla", "nasreg"):
        run = tmp_path / model / "seed0"
        nas = read_nas(run)
        assert {layer for layer, _ in nas} == VANILLA_LAYERS
        assert {record for _, record in nas} == {"stats", "heatmap"}
        for (layer, record), (info, points) in nas.items():
            assert [step for step, _ in points] == [1], (layer, record)
            assert info.name == layer
        scalars = read_scalars(run)
        assert [s for s, _ in scalars["test_loss"]] == [1] and [s for s, _ in scalars["train_loss"]] == [1]
        assert 0 <= scalars["test_accuracy"][-1][1] <= 1
        assert "distorted_test_loss" in scalars
        assert [s for s, _ in scalars["eb_criterion"]] == [1]  # the EB baseline, measured on training batches
    out = capsys.readouterr().out
    assert "VanillaNet seed0: peak test accuracy" in out and "NASReg: peak test accuracy" in out
    # what the NAS tab lists: one group per model, our layers in depth order, test_loss as the red curve
    from plugin_fixtures import app_for, get_json

    client = app_for(tmp_path)[0]
    listing = get_json(client, "/data/plugin/nas/runs")
    assert {g["group"] for g in listing["groups"]} == {"vanilla", "nasreg"}
    assert "vanilla/seed0" in [r["run"] for r in listing["runs"]]
    run = get_json(client, "/data/plugin/nas/run?run=vanilla%2Fseed0")  # a run's layers and tags: its detail
    assert [layer["name"] for layer in run["layers"]] == ["conv1", "conv2", "conv3", "conv4", "fc1", "prediction"]
    assert run["loss_tag"] == "test_loss" and "distorted_test_loss" in run["scalar_tags"]


def test_a_deep_model_logs_the_layers_it_chooses(tmp_path):
    argv = ["--model", "xception", "--epochs", "1", "--repeats", "1", "--logdir", str(tmp_path)]
    assert cli.main(argv + TINY) == 0
    model = build_model("xception", 1, 8, 10, 0.0625)
    assert {layer for layer, _ in read_nas(tmp_path / "xception" / "seed0")} == set(nas_layers(model))


def test_unknown_model_and_dataset_are_argparse_errors_listing_the_valid_names(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["--models", "vanilla,resnet18"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "unknown model 'resnet18'; choose from vanilla, l1net, l2net, dropnet, normnet, nasreg" in err
    with pytest.raises(SystemExit):
        cli.main(["--dataset", "mnist"])
    assert "choose from 'digits', 'fashion-mnist', 'cifar10', 'cifar100'" in capsys.readouterr().err


def test_missing_dataset_is_a_clear_error_not_a_traceback(tmp_path, capsys):
    assert cli.main(["--dataset", "cifar100", "--data-dir", str(tmp_path)]) == 2
    assert "cifar-100-python.tar.gz" in capsys.readouterr().err
    assert cli.main(["--dataset", "cifar10", "--data-dir", str(tmp_path)]) == 2
    assert "cifar-10-python.tar.gz" in capsys.readouterr().err


def test_a_crafted_cifar_file_is_an_error_naming_it_and_its_payload_never_runs(tmp_path, capsys):
    import pickle

    from test_data import _Payload, write_cifar

    folder = write_cifar(tmp_path, "cifar10")
    marker = tmp_path / "payload-ran"
    entry = pickle.loads((folder / "data_batch_1").read_bytes())
    (folder / "data_batch_1").write_bytes(pickle.dumps({**entry, "extra": _Payload(marker)}))
    argv = ["--dataset", "cifar10", "--data-dir", str(tmp_path), "--logdir", str(tmp_path / "runs"), "--epochs", "1"]
    assert cli.main(argv) == 2
    assert f"{folder / 'data_batch_1'}" in capsys.readouterr().err  # md5: not the official file
    assert cli.main(argv + ["--no-md5-check"]) == 2
    assert f"{folder / 'data_batch_1'}: not a CIFAR batch, refused: it asks for io.open" in capsys.readouterr().err
    assert not marker.exists() and not (tmp_path / "runs").exists()


@pytest.mark.parametrize("argv, message", [
    (["--width", "nan"], "argument --width: must be a finite number > 0; got nan"),
    (["--lr", "inf"], "argument --lr: must be a finite number > 0; got inf"),
    (["--epochs", "-1"], "argument --epochs: must be an integer >= 1; got -1"),
    (["--device", "meta"], "argument --device: device 'meta' cannot train here"),
    (["--device", "cuda:99"], "argument --device: device 'cuda:99' cannot train here"),
    (["--device", "gpu0"], "argument --device: not a torch device: 'gpu0'; use cpu"),
])
def test_bad_arguments_are_argparse_errors_naming_the_value_and_what_is_valid(argv, message, capsys, tmp_path):
    with pytest.raises(SystemExit) as e:
        cli.main(argv + ["--logdir", str(tmp_path / "runs")])
    assert e.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_an_unwritable_save_curves_path_is_an_argparse_error_before_any_work(tmp_path, capsys):
    from training import evaluate_detector

    for path, why in ((tmp_path / "missing" / "c.json.gz", "No such file or directory"), (tmp_path, "Is a directory")):
        with pytest.raises(SystemExit) as e:
            evaluate_detector.main([f"synthetic={tmp_path}", "--save-curves", str(path)])
        assert e.value.code == 2
        assert f"argument --save-curves: cannot write '{path}': {why}" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        evaluate_detector.main([f"synthetic={tmp_path}", "--output", str(tmp_path / "no" / "report.md")])
    assert "argument --output: cannot write" in capsys.readouterr().err


def test_a_diverged_run_is_summarised_as_diverged_and_the_grid_goes_on_and_reuses_it(tmp_path, capsys):
    """A learning rate that sends every test loss to NaN: both models train, each summary says so, the
    result files are written, and a second command reuses them."""
    argv = ["--models", "vanilla,l2net", "--epochs", "2", "--repeats", "1", "--lr", "1e30", "--eb-batches", "0",
            "--logdir", str(tmp_path)] + TINY
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    for name in ("VanillaNet seed0", "L2Net seed0"):
        line = next(line for line in out.splitlines() if line.startswith(name))
        assert "test loss diverged (not finite at any epoch)" in line, out
    for model in ("vanilla", "l2net"):
        assert (tmp_path / model / "seed0" / "result.json").exists()
        assert [v for _, v in read_scalars(tmp_path / model / "seed0")["test_loss"]] != []
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert out.count("test loss diverged (not finite at any epoch); NAS overfitting alarm: none (finished before: "
                     "reused)") == 2, out


def test_a_summary_reports_a_loss_that_diverged_late_as_nan(tmp_path):
    from training.train import RunResult

    run = RunResult("vanilla", 0, str(tmp_path), test_loss=[2.0, 1.0, 0.5, float("nan")],
                    test_accuracy=[0.1, 0.5, 0.7, 0.1], train_loss=[2.0, 1.0, 0.5, float("nan")])
    assert "test loss 0.5000 at its (smoothed) minimum, epoch 3, nan (diverged) at the end" in run.summary()


@pytest.mark.parametrize("damage", ["truncated", "another version's"])
def test_a_result_file_that_cannot_be_read_is_an_error_naming_it_and_what_to_do(tmp_path, capsys, damage):
    argv = ["--model", "vanilla", "--epochs", "1", "--repeats", "1", "--eb-batches", "0", "--logdir", str(tmp_path)]
    assert cli.main(argv + TINY) == 0
    recorded = tmp_path / "vanilla" / "seed0" / "result.json"
    text = recorded.read_text()
    recorded.write_text(text[: len(text) // 2] if damage == "truncated" else text.replace('"seed": 0', '"seed": 0, "lr": 1'))
    capsys.readouterr()
    assert cli.main(argv + TINY) == 2
    err = capsys.readouterr().err
    assert f"{recorded} is not a finished run's record that this version can read" in err
    assert "delete it to train that run again" in err and "Traceback" not in err


def test_python_dash_m_training_runs_the_cli():
    done = subprocess.run([sys.executable, "-m", "training", "--model", "nope"], capture_output=True, text=True)
    assert done.returncode == 2 and "choose from vanilla" in done.stderr


def test_runs_repeat_with_their_seed_and_differ_across_seeds(tmp_path):
    data = load_data("digits", train_size=64, test_size=32)
    protocol = Protocol(epochs=2, width=0.0625)
    a = train_run("vanilla", data, protocol, 0, tmp_path / "a", progress=False)
    b = train_run("vanilla", data, protocol, 0, tmp_path / "b", progress=False)
    c = train_run("vanilla", data, protocol, 1, tmp_path / "c", progress=False)
    assert a.test_loss == b.test_loss and a.train_loss == b.train_loss
    assert a.test_loss != c.test_loss
    assert len(a.test_loss) == len(a.train_loss) == len(a.test_accuracy) == 2
    assert a.peak_accuracy == max(a.test_accuracy) and a.test_accuracy[a.peak_epoch - 1] == a.peak_accuracy
    assert a.overfit_epoch in (1, 2)


def _events(run):
    return sorted(f.name for f in run.iterdir() if f.name.startswith("events.out.tfevents."))


def test_a_grid_reuses_finished_runs_retrains_unfinished_ones_and_refuses_another_setting(tmp_path, capsys):
    def argv(epochs=2, repeats=1):
        return ["--models", "vanilla", "--epochs", str(epochs), "--repeats", str(repeats), "--eb-batches", "1",
                "--logdir", str(tmp_path)] + TINY

    assert cli.main(argv()) == 0
    run = tmp_path / "vanilla" / "seed0"
    first, saved = _events(run), (run / "result.json").read_text()
    capsys.readouterr()
    assert cli.main(argv(repeats=2)) == 0  # --repeats 2: seed0 is reused, only seed1 trains
    out = capsys.readouterr().out
    assert "VanillaNet seed0" in out and "(finished before: reused)" in out and "VanillaNet: peak test accuracy" in out
    assert _events(run) == first and (run / "result.json").read_text() == saved
    assert [s for s, _ in read_scalars(tmp_path / "vanilla" / "seed1")["test_loss"]] == [1, 2]
    # a run cut short (its result never written) is trained again from epoch 1, not appended to
    (run / "result.json").unlink()
    assert cli.main(argv()) == 0
    assert "unfinished run" in capsys.readouterr().out
    assert len(_events(run)) == 1 and _events(run) != first and (run / "result.json").exists()
    assert [s for s, _ in read_scalars(run)["test_loss"]] == [1, 2]
    # another number of epochs into the same folders: an error that says what differs, nothing overwritten
    kept = _events(run)
    assert cli.main(argv(epochs=3)) == 2
    err = capsys.readouterr().err
    assert str(run) in err and "epochs 2, now 3" in err and "another --logdir" in err
    assert _events(run) == kept
    (run / "notes.txt").write_text("mine")
    (run / "result.json").unlink()
    assert cli.main(argv()) == 2 and "notes.txt" in capsys.readouterr().err
    assert (run / "notes.txt").exists() and _events(run) == kept


def test_jobs_train_runs_in_worker_processes_with_the_same_results(tmp_path, capsys):
    argv = ["--models", "vanilla,nasreg", "--epochs", "2", "--repeats", "1", "--eb-batches", "0", "--threads", "1"] + TINY
    before = torch.get_num_threads()
    try:  # --threads 1 in this process and in the workers: both ways compute alike
        assert cli.main(argv + ["--logdir", str(tmp_path / "serial")]) == 0
        assert cli.main(argv + ["--jobs", "2", "--logdir", str(tmp_path / "parallel")]) == 0
    finally:
        torch.set_num_threads(before)
    out = capsys.readouterr().out
    assert "VanillaNet: peak test accuracy" in out and "NASReg: peak test accuracy" in out
    for model in ("vanilla", "nasreg"):
        serial = read_scalars(tmp_path / "serial" / model / "seed0")
        parallel = read_scalars(tmp_path / "parallel" / model / "seed0")
        assert "eb_criterion" not in parallel  # --eb-batches 0: not measured
        assert [s for s, _ in parallel["test_loss"]] == [1, 2]
        assert [v for _, v in parallel["test_loss"]] == pytest.approx([v for _, v in serial["test_loss"]], rel=1e-4)
        assert {layer for layer, _ in read_nas(tmp_path / "parallel" / model / "seed0")} == VANILLA_LAYERS


def test_a_negative_eb_batch_count_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--eb-batches", "-1"])
    assert "must be >= 0; got -1" in capsys.readouterr().err


def test_evaluate_matches_a_direct_computation():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    x, y = torch.randn(25, 1, 4, 4), torch.randint(0, 3, (25,))
    from training.data import Split

    loss, accuracy = evaluate(model, Split(x, y), batch_size=7)
    logits = model(x).double()
    expected = nn.functional.cross_entropy(logits, y)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert accuracy.item() == pytest.approx((logits.argmax(1) == y).double().mean().item())


def test_weight_penalties_match_a_float64_reference():
    torch.manual_seed(0)
    model = build_model("vanilla", 1, 8, 10, 0.0625)
    weights = [m.weight.detach().double() for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    l1 = 0.01 * sum(w.abs().sum() for w in weights)
    l2 = 0.01 * sum(w.square().sum() for w in weights)
    assert make_penalty("l1", model)().item() == pytest.approx(l1.item(), rel=1e-5)
    assert make_penalty("l2", model)().item() == pytest.approx(l2.item(), rel=1e-5)
    assert make_penalty(None, model) is None
    with pytest.raises(ValueError, match="'l3'"):
        weight_penalty(model, "l3", 1.0)


def test_nasreg_penalty_is_minus_mean_perplexity_of_all_but_the_prediction_layer():
    torch.manual_seed(0)
    model = build_model("nasreg", 1, 8, 10, 0.0625)
    penalty = make_penalty("nas", model)
    x = torch.randn(4, 1, 8, 8)
    acts = {}
    hooks = [getattr(model, n).register_forward_hook(lambda m, i, o, n=n: acts.__setitem__(n, o)) for n in VANILLA_LAYERS]
    model(x)
    for h in hooks:
        h.remove()
    expected = 0.0
    for name in VANILLA_LAYERS - {"prediction"}:
        a = acts[name].double()
        dim = 1 if a.dim() == 4 else -1
        p = a.softmax(dim)
        rho = torch.exp(-(p * p.log()).sum(dim))  # (B, H, W) or (B,)
        expected -= rho.flatten(1).mean(1).mean().item() if rho.dim() > 1 else rho.mean().item()
    assert penalty().item() == pytest.approx(expected, rel=1e-4)


def test_free_port_can_be_bound():
    import socket

    from training.serve import free_port

    port = free_port()
    with socket.socket() as s:
        s.bind(("localhost", port))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the workers through /proc")
def test_workers_stop_when_the_training_command_is_killed(tmp_path):
    """Killing ``python -m training --jobs 2`` (SIGKILL: no handler can run) must not leave its workers
    training on and writing into the log dir."""
    import os
    import signal
    import time
    from pathlib import Path

    command = [sys.executable, "-m", "training", "--models", "vanilla", "--repeats", "2", "--epochs", "10000",
               "--jobs", "2", "--threads", "1", "--logdir", str(tmp_path), *TINY]
    parent = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while not all(any((tmp_path / "vanilla" / f"seed{k}").glob("events.out.tfevents.*")) for k in (0, 1)):
            assert parent.poll() is None and time.monotonic() < deadline, "the workers never started logging"
            time.sleep(0.2)
        children = Path(f"/proc/{parent.pid}/task/{parent.pid}/children").read_text().split()
        workers = [int(pid) for pid in children  # not the resource tracker, the other child
                   if "spawn_main" in Path(f"/proc/{pid}/cmdline").read_text(errors="replace")]
        assert len(workers) == 2
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()

    def alive(pid: int) -> bool:
        try:
            return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
        except FileNotFoundError:
            return False

    deadline = time.monotonic() + 60
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    leftover = [pid for pid in workers if alive(pid)]
    for pid in leftover:
        os.kill(pid, signal.SIGKILL)
    assert not leftover, "workers went on training after the command was killed"


def test_the_peak_accuracy_line_gives_the_spread_only_over_several_runs():
    from training.train import RunResult, peak_accuracy_line

    runs = [RunResult("nasreg", seed, "x", test_accuracy=[0.5, peak]) for seed, peak in enumerate((0.9, 0.92, 0.94))]
    assert peak_accuracy_line("nasreg", runs[:1]) == "NASReg: peak test accuracy 0.9000 (1 run)"
    assert peak_accuracy_line("nasreg", runs) == "NASReg: peak test accuracy 0.9200 +- 0.0200 (mean +- sd over 3 runs)"


def test_runs_trained_in_parallel_show_one_progress_bar_for_the_grid(tmp_path, capfd):
    # Two workers' own epoch bars would interleave on one terminal; the grid's bar counts finished runs.
    argv = ["--models", "vanilla,nasreg", "--epochs", "2", "--repeats", "1", "--eb-batches", "0", "--threads", "1",
            "--jobs", "2", "--width", "0.0625", "--train-size", "64", "--test-size", "32", "--logdir", str(tmp_path)]
    before = torch.get_num_threads()
    try:
        assert cli.main(argv) == 0
    finally:
        torch.set_num_threads(before)
    err = capfd.readouterr().err
    assert "2 runs, 2 at a time" in err and "2/2" in err
    assert "epoch/s" not in err and "s/epoch" not in err  # no worker's per-epoch bar
