import numpy as np
import pytest

from training.evaluate_detector import (GRID, applicability_rows, complete, cost, judge, load_suites, main,
                                         onset_rows, read_curves, save_curves, summary_rows, tune)
from training.report import Curves


def curves(overfit_at: int | None, epochs: int = 30) -> Curves:
    """Test loss falling to a minimum at ``overfit_at`` then rising, NAS flat until then and rising
    after; or (None) a loss that keeps falling and flat NAS. Training loss falls as 1 / t."""
    t = np.arange(1, epochs + 1)
    if overfit_at is None:
        loss = 2.0 / t
        rise = np.zeros(epochs)
    else:
        loss = 1.0 + 0.01 * (t - overfit_at) ** 2
        rise = np.clip(t - overfit_at, 0, None) * 0.03
    nas = {f"conv{i}": dict(zip(t.tolist(), (0.2 * i + rise * (1 - 0.2 * i)).tolist())) for i in (1, 2, 3)}
    nas["prediction"] = dict(zip(t.tolist(), [0.9] * epochs))
    scalars = {"test_loss": dict(zip(t.tolist(), loss.tolist())), "train_loss": dict(zip(t.tolist(), (1.0 / t).tolist()))}
    return Curves(scalars, nas)


def test_judge_reads_stops_and_labels():
    j = judge("a", curves(12))
    assert j.overfits and j.loss_min == 12
    assert j.stops["GL_5"] == 15  # 1 + 0.01 * 3^2 = 1.09 > 1.05, 1.04 at 14 is not
    assert j.stops["UP_2"] == 20  # strip ends 5, 10, 15, 20: the loss rises from 10 to 15 and from 15 to 20
    assert j.alarm is not None and 12 < j.alarm <= 18
    assert not j.early("NAS alarm") and j.loss_ratio("GL_5") == pytest.approx(1.09)
    assert j.stops["EB"] is None and not j.has_eb  # not logged
    noisy = curves(12)
    noisy.scalars["eb_criterion"] = {e: (-1.0 if e < 9 else 0.2) for e in noisy.scalars["test_loss"]}
    assert judge("a", noisy).stops["EB"] == 9
    clean = judge("b", curves(None))
    assert not clean.overfits and all(stop is None for stop in clean.stops.values())
    assert clean.loss_ratio("NAS alarm") == 1.0  # never stops: the last epoch, the minimum here


def test_an_alarm_while_the_loss_is_far_above_its_minimum_is_early():
    run = curves(20)
    run.nas = {name: {e: v + 0.01 * min(e, 6) ** 2 for e, v in values.items()} for name, values in run.nas.items()}
    run.nas["prediction"] = {e: 0.9 for e in run.nas["prediction"]}
    j = judge("a", run, threshold=0.25, window=3, quorum=0.5, patience=1)
    assert j.alarm is not None and j.alarm < 10 and j.early("NAS alarm")
    row = summary_rows("synthetic", [j], ("NAS alarm",))[0]
    assert row.startswith("| synthetic | NAS alarm | 1 / 1 |") and "| 1 / 1 | 0 / 0 |" in row
    assert "not logged" in summary_rows("synthetic", [j], ("EB",))[0]


def test_cost_penalises_misses_and_false_alarms_and_tuning_picks_the_cheapest():
    over, clean = judge("a", curves(10), threshold=50.0), judge("b", curves(None))
    assert over.alarm is None and cost([over], 30) == 30  # missed
    assert cost([judge("a", curves(10))], 30) == abs(judge("a", curves(10)).alarm - 10)
    assert cost([clean], 30) == 0
    runs = {"a": curves(10), "b": curves(None), "c": curves(20)}
    options, best = tune(runs, 30)
    assert set(options) == set(GRID)
    assert best <= cost([judge(n, c) for n, c in runs.items()], 30)
    assert best < cost([judge(n, c, threshold=50.0) for n, c in runs.items()], 30)  # tuning beats a deaf detector


def test_main_reads_suites_and_rejects_a_folder_without_complete_runs(tmp_path, capsys):
    empty = tmp_path / "empty"
    (empty / "vanilla" / "seed0").mkdir(parents=True)
    with pytest.raises(ValueError, match="no run with 30 logged epochs"):
        load_suites({"x": empty}, 30)
    with pytest.raises(SystemExit):
        main(["digits"])  # not DATASET=LOGDIR
    assert "expected DATASET=LOGDIR" in capsys.readouterr().err


def test_saved_curves_are_judged_as_the_runs_they_were_read_from(tmp_path, capsys, monkeypatch):
    suites = {"synthetic": {"VanillaNet seed0": curves(12), "NASReg seed0": curves(None)},
              "short": {"VanillaNet seed0": curves(12, epochs=10)}}
    path = tmp_path / "runs.json.gz"
    monkeypatch.setattr("training.evaluate_detector.load_suites", lambda roots, epochs: {
        d: {n: r for n, r in suites[d].items() if complete(r, epochs)} for d in roots})
    assert main(["synthetic=" + str(tmp_path), "--save-curves", str(path)]) == 0
    from_logs = capsys.readouterr().out
    assert main([str(path)]) == 0
    assert capsys.readouterr().out == from_logs and "| synthetic | NAS alarm | 1 / 1 |" in from_logs
    back = read_curves(path)["synthetic"]["VanillaNet seed0"]
    assert back.nas == suites["synthetic"]["VanillaNet seed0"].nas and list(back.nas) == ["conv1", "conv2", "conv3", "prediction"]
    save_curves(suites, path)
    assert main([str(path)]) == 2  # "short" has no 30-epoch run
    assert "short: no run with 30 logged epochs" in capsys.readouterr().err
    (tmp_path / "bad.json.gz").write_bytes(b"not gzip")
    assert main([str(tmp_path / "bad.json.gz")]) == 2
    assert "not a curves file written by --save-curves" in capsys.readouterr().err


def test_runs_of_one_dataset_from_a_curves_file_and_a_log_dir_are_judged_together(tmp_path, capsys, monkeypatch):
    path = tmp_path / "runs.json.gz"
    save_curves({"synthetic": {"VanillaNet seed0": curves(12)}}, path)
    monkeypatch.setattr("training.evaluate_detector.load_suites",
                        lambda roots, epochs: {d: {"VanillaNet seed1": curves(15)} for d in roots})
    assert main([str(path), "synthetic=" + str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "| synthetic | NAS alarm | 2 / 2 |" in out and "| VanillaNet seed0 |" in out and "| VanillaNet seed1 |" in out


def test_runs_of_one_name_from_two_sources_are_both_judged(tmp_path, capsys, monkeypatch):
    path = tmp_path / "runs.json.gz"
    save_curves({"synthetic": {"VanillaNet seed0": curves(12)}}, path)
    monkeypatch.setattr("training.evaluate_detector.load_suites",
                        lambda roots, epochs: {d: {"VanillaNet seed0": curves(15)} for d in roots})
    (tmp_path / "more").mkdir()
    assert main([str(path), "synthetic=" + str(tmp_path / "more")]) == 0
    out = capsys.readouterr().out
    assert "| synthetic | NAS alarm | 2 / 2 |" in out and "| VanillaNet seed0 (more) |" in out


def test_rewind_goes_to_the_onset_within_the_kept_epochs():
    j = judge("VanillaNet seed0", curves(12))
    assert j.onset is not None and j.onset <= j.alarm
    assert j.stops["NAS rewind"] == j.onset  # within the 8 kept epochs
    short = judge("VanillaNet seed0", curves(12), keep=1)
    assert short.stops["NAS rewind"] == short.alarm  # only the alarm's own weights kept
    assert j.loss_at(j.stops["NAS rewind"]) == pytest.approx(1.0 + 0.01 * (j.onset - 12) ** 2)
    assert judge("b", curves(None)).stops["NAS rewind"] is None


def test_applicability_counts_states_per_kind_of_network():
    flat = curves(12)
    flat.nas = {name: {e: 0.3 for e in values} for name, values in flat.nas.items()}  # NAS does not move
    judged = [judge("NormNet seed0", flat), judge("ResNet10-BN seed0", flat), judge("VanillaNet seed0", curves(12)),
              judge("VanillaNet seed1", curves(None)), judge("NASReg seed0", flat)]
    assert [j.kind for j in judged] == ["normalised", "normalised", "plain", "plain", "NAS-lowering penalty"]
    assert [j.state for j in judged] == ["cannot_judge", "cannot_judge", "fired", "cannot_judge", "cannot_judge"]
    rows = applicability_rows(judged)
    assert rows[2] == "| normalised | 2 | 2 | 0 | 0 | 2 / 2 |"  # both overfit without an alarm: both told
    assert rows[3] == "| plain | 2 | 1 | 0 | 1 | 0 / 0 |"
    assert rows[4] == "| NAS-lowering penalty | 1 | 1 | 0 | 0 | 1 / 1 |"


def test_onset_rows_compare_the_test_loss_at_each_stop_on_the_alarmed_runs():
    runs = [judge("VanillaNet seed0", curves(12)), judge("VanillaNet seed1", curves(None))]
    j = runs[0]
    row = onset_rows("synthetic", runs)[0].split(" | ")
    last = max(j.losses)
    want = [1.0, j.loss_at(j.onset), j.loss_at(j.alarm), j.loss_at(j.stops["NAS rewind"]),
            j.loss_at(j.stops["GL_5"] or last), j.loss_at(last)]  # EB is not logged: the last epoch
    assert row[1] == "1" and [float(v) for v in row[2:8]] == pytest.approx(want, abs=5e-4)
    assert float(row[8].rstrip(" |")) == j.alarm - j.onset
    assert onset_rows("none", runs[1:])[0].startswith("| none | 0 | -")


def test_one_table_alone_is_the_same_text_as_in_the_whole_report(tmp_path, capsys):
    path = tmp_path / "runs.json.gz"
    save_curves({"synthetic": {"VanillaNet seed0": curves(12), "NormNet seed0": curves(None)}}, path)
    assert main([str(path)]) == 0
    whole = capsys.readouterr().out
    assert main([str(path), "--table", "applicability"]) == 0
    alone = capsys.readouterr().out
    assert "## Applicability" in alone and "## Every run" not in alone and "## Onset" not in alone
    body = alone.split("\n", 1)[1]
    assert body.strip() in whole


def test_the_early_warning_tables_are_what_the_kept_curves_give():
    """docs/early-warning.md's summary, applicability and onset tables are printed by the evaluation from the
    kept curves, byte for byte (the leave-one-dataset-out table takes a minute: checked by hand)."""
    from pathlib import Path

    from training.evaluate_detector import report

    root = Path(__file__).resolve().parent.parent
    page = (root / "docs/early-warning.md").read_text(encoding="utf-8")
    suites = read_curves(root / "docs/data/early-warning-runs.json.gz")
    for table in ("summary", "applicability", "onset"):
        text = report(suites, 25, (table,))
        body = "\n".join(line for line in text.splitlines()[1:] if not line.startswith("## ")).strip()
        assert body in page, f"run: python -m training.evaluate_detector docs/data/early-warning-runs.json.gz --epochs 25 --table {table}"
