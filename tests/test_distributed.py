import os
import socket
import subprocess
import sys

from nas_logger import format as fmt
from events import read_nas, read_scalars


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_with_torchrun_rank0_writes_ranks_merge_and_nothing_hangs(tmp_path):
    tests = os.path.dirname(__file__)
    env = {**os.environ, "PYTHONPATH": tests + os.pathsep + os.environ.get("PYTHONPATH", ""), "OMP_NUM_THREADS": "1",
           # a crash at exit prints every thread's Python stack into the assertion message
           "PYTHONFAULTHANDLER": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={free_port()}",
         os.path.join(tests, "ddp_worker.py"), str(tmp_path)],
        env=env, capture_output=True, text=True, timeout=240,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "rank 0 epoch 2 layers ['conv1', 'conv2', 'fc1', 'fc2']" in out
    assert "rank 1 epoch 2 layers []" in out  # other ranks compute nothing and write nothing
    assert "rank 0 in sync True" in out and "rank 1 in sync True" in out
    assert "merged median within a bin True, samples [8, 16]" in out
    event_files = [f for f in os.listdir(tmp_path) if f.startswith("events.out.tfevents")]
    assert len(event_files) == 1
    assert [s for s, _ in read_nas(tmp_path)[("conv2", fmt.STATS)][1]] == [0, 1, 2]
    assert [s for s, _ in read_scalars(tmp_path)["test_loss"]] == [0, 1, 2]
