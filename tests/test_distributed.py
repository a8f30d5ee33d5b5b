import os
import socket
import subprocess
import sys

import pytest
import torch.distributed.fsdp
from nas_logger import format as fmt
from events import read_nas, read_scalars


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(worker: str, log_dir) -> subprocess.CompletedProcess:
    """``worker`` under torchrun with 2 processes on gloo; exit status 0 asserted, stdout returned."""
    tests = os.path.dirname(__file__)
    env = {**os.environ, "PYTHONPATH": tests + os.pathsep + os.environ.get("PYTHONPATH", ""), "OMP_NUM_THREADS": "1",
           # a crash at exit prints every thread's Python stack into the assertion message
           "PYTHONFAULTHANDLER": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={free_port()}",
         os.path.join(tests, worker), str(log_dir)],
        env=env, capture_output=True, text=True, timeout=240,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_ddp_with_torchrun_rank0_writes_ranks_merge_and_nothing_hangs(tmp_path):
    out = torchrun("ddp_worker.py", tmp_path).stdout
    assert "rank 0 epoch 2 layers ['conv1', 'conv2', 'fc1', 'fc2']" in out
    assert "rank 1 epoch 2 layers []" in out  # other ranks compute nothing and write nothing
    assert "rank 0 in sync True" in out and "rank 1 in sync True" in out
    assert "merged median within a bin True, samples [8, 16]" in out
    event_files = [f for f in os.listdir(tmp_path) if f.startswith("events.out.tfevents")]
    assert len(event_files) == 1
    assert [s for s, _ in read_nas(tmp_path)[("conv2", fmt.STATS)][1]] == [0, 1, 2]
    assert [s for s, _ in read_scalars(tmp_path)["test_loss"]] == [0, 1, 2]


@pytest.mark.skipif(not hasattr(torch.distributed.fsdp, "fully_shard"), reason="FSDP2 needs torch >= 2.6")
def test_fsdp2_with_torchrun_every_rank_probes_rank0_writes_medians_of_the_unsharded_model(tmp_path):
    out = torchrun("fsdp_worker.py", tmp_path).stdout
    for rank in (0, 1):  # unsupported wrappings fail at watch and NASReg, on every rank
        assert out.count(f"rank {rank} fsdp1 ValueError: ") == 2, out
        assert out.count(f"rank {rank} tensor parallel ValueError: modules ['fc1'] of SmallCNN are tensor parallel") == 2
    assert "rank 1 probe is rank 0's True" in out
    assert "rank 0 epoch 2 layers ['conv1', 'conv2', 'fc1', 'fc2'] stream ['conv1', 'conv2', 'fc1', 'fc2']" in out
    assert "rank 1 epoch 2 layers [] stream []" in out
    for epoch in range(3):
        assert f"epoch {epoch} probe medians equal True" in out, out
        assert f"epoch {epoch} stream median within a bin True" in out, out
    assert "rank 0 matches unsharded training True" in out and "rank 1 matches unsharded training True" in out
    event_files = [f for f in os.listdir(tmp_path) if f.startswith("events.out.tfevents")]
    assert len({f.split(".")[-2] for f in event_files}) == 1 and len(event_files) == 2  # rank 0's, one per monitor
    nas = read_nas(tmp_path)
    for layer in ("conv1", "conv2", "fc1", "fc2"):
        assert [s for s, _ in nas[(layer, fmt.STATS)][1]] == [0, 1, 2]
        assert [s for s, _ in nas[(f"stream/{layer}", fmt.STATS)][1]] == [0, 1, 2]
    assert [s for s, _ in read_scalars(tmp_path)["test_loss"]] == [0, 1, 2]
