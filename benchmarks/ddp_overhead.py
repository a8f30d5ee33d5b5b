"""DDP step time with the NAS monitor as a ratio to without, measured in the same run.

Two processes on the gloo backend (CPU), or NCCL with one GPU each when enough are present.
    python benchmarks/ddp_overhead.py [--epochs 4 --steps 20]
An "epoch" is --steps training steps, followed by one monitor.log (rank 0 writes) in the monitored ones;
the two alternate as in monitor_overhead.py, the single-process version.
"""
import argparse
import os
import socket
import tempfile

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel

import nas_logger
from monitor_overhead import alternate_epochs, print_ratios


def net() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64 * 64, 128), nn.ReLU(),
        nn.Linear(128, 100),
    )


def worker(rank: int, world: int, port: int, args: argparse.Namespace, logdir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    cuda = torch.cuda.device_count() >= world
    dist.init_process_group("nccl" if cuda else "gloo", rank=rank, world_size=world)
    device = torch.device(f"cuda:{rank}" if cuda else "cpu")
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = DistributedDataParallel(net().to(device), device_ids=[rank] if cuda else None)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = torch.randn(32, 3, 32, 32, device=device), torch.randint(0, 100, (32,), device=device)
    monitor = nas_logger.watch(model, logdir, probe=x)  # once, as in a training script

    def train() -> None:
        for _ in range(args.steps):
            optimizer.zero_grad()
            F.cross_entropy(model(x), y).backward()
            optimizer.step()

    def sync() -> None:  # the epoch ends when every rank's queued work is done
        if cuda:
            torch.cuda.synchronize()
        dist.barrier()

    times, logs = alternate_epochs(train, lambda epoch: monitor.log(epoch, test_loss=1.0), args.epochs, sync)
    monitor.close()
    if rank == 0:
        print(f"{world} ranks, {'nccl' if cuda else 'gloo'}, epoch = {args.steps} steps of batch 32 per rank")
        print_ratios(times, logs, 1.02)
    dist.destroy_process_group()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as logdir:
        mp.spawn(worker, args=(2, port, args, logdir), nprocs=2)


if __name__ == "__main__":
    main()
