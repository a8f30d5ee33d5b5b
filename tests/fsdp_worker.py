"""Run under torchrun with 2 processes: FSDP2 (fully_shard) training with watch (probe and stream) and
NASReg, checked against an unsharded replica trained on both ranks' batches; rank 1 has no probe."""
import copy
import gc
import sys

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.distributed.fsdp import FullyShardedDataParallel, fully_shard
from torch.distributed.tensor import init_device_mesh
from torch.distributed.tensor.parallel import ColwiseParallel, parallelize_module

import nas_logger
from conftest import SmallCNN
from reference import nas_reference

dist.init_process_group("gloo")
rank = dist.get_rank()
log_dir = sys.argv[1]
LAYERS = ("conv1", "conv2", "fc1", "fc2")


def fsdp1(module: torch.nn.Module) -> torch.nn.Module:
    """An FSDP1 instance around ``module``. FSDP1 cannot be built on a CPU ("FSDP needs a non-CPU
    accelerator device"), so this one skips its __init__: the check looks only at the type."""
    wrapper = FullyShardedDataParallel.__new__(FullyShardedDataParallel)
    torch.nn.Module.__init__(wrapper)
    wrapper._modules["_fsdp_wrapped_module"] = module
    return wrapper


# Wrappings that are not supported fail at watch and NASReg, on every rank, before any collective.
for wrapping, wrap in (
    ("fsdp1", fsdp1),
    ("tensor parallel", lambda m: parallelize_module(m, init_device_mesh("cpu", (2,)), {"fc1": ColwiseParallel()})),
):
    for api in (lambda m: nas_logger.watch(m, log_dir + "/unsupported"), nas_logger.NASReg):
        try:
            api(wrap(SmallCNN()))
            print(f"rank {rank} {wrapping} accepted", flush=True)
        except ValueError as e:
            print(f"rank {rank} {wrapping} ValueError: {e}", flush=True)

torch.manual_seed(0)
model = SmallCNN()
reference = copy.deepcopy(model)  # unsharded, trained on both ranks' batches as FSDP averages them
for name in LAYERS:
    fully_shard(getattr(model, name))
fully_shard(model)
probe = torch.randn(8, 1, 8, 8, generator=torch.Generator().manual_seed(100))
monitor = nas_logger.watch(model, log_dir, probe=probe if rank == 0 else None)  # rank 1 runs rank 0's
print(f"rank {rank} probe is rank 0's {torch.equal(monitor.probe, probe)}", flush=True)
stream = nas_logger.watch(model, log_dir, statistics="stream", name="stream")
reg = nas_logger.NASReg(model, strength=0.1)
reference_reg = nas_logger.NASReg(reference, strength=0.1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
reference_optimizer = torch.optim.SGD(reference.parameters(), lr=0.01)
generators = [torch.Generator().manual_seed(r) for r in range(2)]
seen = []  # conv2 outputs of rank 0's batches in the reference, which the stream monitor measures
reference.conv2.register_forward_hook(lambda m, i, o: seen.append(o.detach().numpy()) if capture else None)


def layer_medians(module: torch.nn.Module, x: torch.Tensor) -> dict[str, float]:
    """float64 medians of s_k per layer of an unsharded module on ``x``."""
    outputs = {}
    handles = [getattr(module, n).register_forward_hook(lambda m, i, o, n=n: outputs.update({n: o})) for n in LAYERS]
    with torch.no_grad():
        module.eval()(x)
    for h in handles:
        h.remove()
    return {n: float(np.median(nas_reference(o.numpy(), axis=-1 if n.startswith("fc") else 1))) for n, o in outputs.items()}


for epoch in range(3):
    seen.clear()
    for _ in range(4):
        batches = [(torch.randn(16, 1, 8, 8, generator=g), torch.randint(0, 10, (16,), generator=g)) for g in generators]
        x, y = batches[rank]
        optimizer.zero_grad()
        (F.cross_entropy(model(x), y) + reg.penalty()).backward()
        optimizer.step()
        reference_optimizer.zero_grad()
        for r, (xr, yr) in enumerate(batches):
            capture = r == 0
            ((F.cross_entropy(reference.train()(xr), yr) + reference_reg.penalty()) / 2).backward()
        capture = False
        reference_optimizer.step()
    medians = monitor.log(epoch, test_loss=1.0 / (epoch + 1))
    streamed = stream.log(epoch)
    print(f"rank {rank} epoch {epoch} layers {sorted(medians)} stream {sorted(streamed)}", flush=True)
    full = SmallCNN()
    full.load_state_dict({k: v.full_tensor() for k, v in model.state_dict().items()})  # every rank gathers
    if rank == 0:
        expected = layer_medians(full, probe)
        error = max(abs(medians[n] - expected[n]) for n in LAYERS)
        print(f"epoch {epoch} sharded {medians['conv2']:.7f} unsharded {expected['conv2']:.7f} max error {error:.1e}", flush=True)
        print(f"epoch {epoch} probe medians equal {error <= 1e-6}", flush=True)
        exact = float(np.median(nas_reference(np.concatenate(seen), axis=1)))
        print(f"epoch {epoch} stream median within a bin {abs(streamed['conv2'] - exact) <= 1 / 1024 + 1e-5}", flush=True)

# FSDP averaged the gradients of both ranks' losses, NASReg terms included, as the unsharded replica did.
gap = max((v.full_tensor() - reference.state_dict()[k]).abs().max().item() for k, v in model.state_dict().items())
print(f"rank {rank} matches unsharded training {gap <= 1e-5} ({gap:.1e})", flush=True)
dist.barrier()
reg.remove()
reference_reg.remove()
monitor.close()
stream.close()
del reg, reference_reg, monitor, stream, model, full
dist.destroy_process_group()
gc.collect()
