"""What `run`, `lines` and `stripes` tell the frontend beside the layers: each run's alarm status, the loss
tags the selection lacks, and the wall time of each logged step; events written with the SDK's writer."""
import logging

import numpy as np
import pytest
from tensorboard.compat.proto import summary_pb2

from nas_logger import format as fmt
from nas_logger.summaries import alarm_status_summary
from plugin_fixtures import both_loaders, get_json, write_summaries
from test_plugin_robustness import STEPS, step_summary

P = "/data/plugin/nas/"
T0 = 1_700_000_000.0  # wall time of step 0; step s is logged at T0 + 3600 s + 0.25 s


def wall(step: int) -> float:
    return T0 + 3600.25 * step


def status(state, message, **fields) -> summary_pb2.Summary:
    return alarm_status_summary(fmt.encode_alarm_status(state, message, **fields))


def scalar(tag: str, value: float) -> summary_pb2.Summary:
    return summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, simple_value=value)])


WARMING = dict(state="warming_up", message="NAS alarm: warming up, 3 more epochs before it can judge", epochs_needed=3)
FIRED = dict(state="fired", message="NAS alarm fired at epoch 2; the climb became significant at epoch 1", onset=1, alarm=2)


@pytest.fixture(scope="module")
def clients(tmp_path_factory):
    root = tmp_path_factory.mktemp("contracts")
    for run, statuses, losses in (("a/seed0", [WARMING, WARMING, FIRED], ("test_loss", "distorted_test_loss")),
                                  ("a/seed1", [WARMING] * STEPS, ("test_loss",)),
                                  ("b", None, ("test_loss",))):
        records = []
        for s in range(STEPS):
            records.append((s, step_summary(s, s == 0), wall(s)))
            if statuses:
                records.append((s, status(**statuses[s]), wall(s)))
            for tag in losses:
                records.append((s, scalar(tag, 1.0 / (s + 1)), wall(s)))
        write_summaries(root / run, records)
    # A bad status record at the last step: skipped, the run has no status.
    write_summaries(root / "bad", [(s, step_summary(s, s == 0), wall(s)) for s in range(STEPS)]
                    + [(STEPS - 1, alarm_status_summary(b'{"state": "nope"}'), wall(STEPS - 1))])
    # Written before the index record: the wall times come from the stats table's events.
    no_index = []
    for s in range(STEPS):
        summary = step_summary(s, s == 0)
        kept = [v for v in summary.value if v.tag != fmt.index_tag()]
        del summary.value[:]
        summary.value.extend(kept)
        no_index.append((s, summary, wall(s)))
    write_summaries(root / "old", no_index)
    with both_loaders(root) as found:
        yield found


LOADERS = ["python", "rust"]


@pytest.mark.parametrize("loader", LOADERS)
def test_alarm_status_of_each_selected_run_is_its_last_record(clients, loader, caplog):
    client = clients[loader]
    fired = {**FIRED, "epochs_needed": None}
    warming = {**WARMING, "onset": None, "alarm": None}
    with caplog.at_level(logging.WARNING, logger="nas_tb_plugin"):
        assert get_json(client, P + "run?run=a%2Fseed0")["alarm_status"] == {"a/seed0": fired}
        assert get_json(client, P + "run?run=b")["alarm_status"] == {}
        for route in ("lines", "stripes"):
            assert get_json(client, P + f"{route}?group=a")["alarm_status"] == {"a/seed0": fired, "a/seed1": warming}
            assert get_json(client, P + f"{route}?run=a%2Fseed1")["alarm_status"] == {"a/seed1": warming}
            assert get_json(client, P + f"{route}?run=bad")["alarm_status"] == {}
    assert len([r for r in caplog.records if "'bad'" in r.getMessage() and "alarm_status" in r.getMessage()]) == 1


@pytest.mark.parametrize("loader", LOADERS)
@pytest.mark.parametrize("route", ["lines", "stripes", "steps"])
def test_a_loss_tag_the_selection_lacks_is_null_and_named(clients, loader, route):
    client = clients[loader]
    body = get_json(client, P + f"{route}?run=b&loss_tag=distorted_test_loss&loss_tag2=test_loss")
    assert body["loss"] is None and body["loss2"]["tag"] == "test_loss" and body["overfit_step"] is None
    assert body["missing_loss_tags"] == ["distorted_test_loss"]
    body = get_json(client, P + f"{route}?run=b&loss_tag2=nope")
    assert body["loss"]["tag"] == "test_loss" and body["loss2"] is None and body["missing_loss_tags"] == ["nope"]
    assert get_json(client, P + f"{route}?run=b")["missing_loss_tags"] == []
    if route != "steps":  # for a group, the mean over the runs that have it
        body = get_json(client, P + f"{route}?group=a&loss_tag2=distorted_test_loss")
        assert body["loss2"]["values"] == pytest.approx([1.0 / (s + 1) for s in range(STEPS)], rel=1e-6)
        assert body["missing_loss_tags"] == []


@pytest.mark.parametrize("loader", LOADERS)
@pytest.mark.parametrize("route", ["lines", "stripes"])
def test_times_are_the_wall_times_of_the_logged_steps(clients, loader, route):
    client = clients[loader]
    want = {"steps": list(range(STEPS)), "wall_times": [wall(s) for s in range(STEPS)]}
    for query in ("run=b", "group=a", "run=old"):
        times = get_json(client, P + f"{route}?{query}")["times"]
        assert times["steps"] == want["steps"], query
        np.testing.assert_allclose(times["wall_times"], want["wall_times"], rtol=0, atol=1e-3)
