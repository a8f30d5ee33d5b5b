"""Run under torchrun with 2 processes: DDP training with watch + NASReg; rank 1 is slower."""
import gc
import sys
import time

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

import nas_logger
from conftest import SmallCNN

dist.init_process_group("gloo")
rank = dist.get_rank()
torch.manual_seed(0)
model = DistributedDataParallel(SmallCNN())
probe = torch.randn(8, 1, 8, 8) if rank == 0 else None  # rank 1 has no probe of its own
monitor = nas_logger.watch(model, sys.argv[1], probe=probe)
reg = nas_logger.NASReg(model, strength=0.1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
generator = torch.Generator().manual_seed(rank)
for epoch in range(3):
    for _ in range(4):
        x, y = torch.randn(16, 1, 8, 8, generator=generator), torch.randint(0, 10, (16,), generator=generator)
        optimizer.zero_grad()
        (F.cross_entropy(model(x), y) + reg.penalty()).backward()
        optimizer.step()
    if rank == 1:
        time.sleep(0.5)  # ranks log at different speeds
    medians = monitor.log(epoch, test_loss=1.0 / (epoch + 1))
    print(f"rank {rank} epoch {epoch} layers {sorted(medians)}", flush=True)
monitor.close()

# ranks="all": every rank measures its own probe and the histograms are all-reduced; rank 1 has no
# probe of its own and captures its first batch.
merged = nas_logger.watch(model, sys.argv[1] + "/merged", probe=torch.randn(8, 1, 8, 8) if rank == 0 else None, ranks="all")
model(torch.randn(16, 1, 8, 8, generator=generator))
medians = merged.log(0)
merged.close()
module = model.module.eval()
outputs = {}
handle = module.conv2.register_forward_hook(lambda m, i, o: outputs.setdefault("conv2", o))
with torch.no_grad():
    module(merged.probe)
handle.remove()
mine = nas_logger.nas_sparsity(outputs["conv2"]).reshape(-1).numpy()
everyone = [None, None]
dist.all_gather_object(everyone, mine)
if rank == 0:
    import numpy as np

    exact = np.median(np.concatenate(everyone))
    print(f"merged median within a bin {abs(medians['conv2'] - exact) <= 1 / 1024}, samples {[len(e) // 64 for e in everyone]}", flush=True)
# Replicas stayed in sync through the NASReg gradients.
weights = [torch.zeros_like(model.module.conv1.weight) for _ in range(2)]
dist.all_gather(weights, model.module.conv1.weight.detach())
print(f"rank {rank} in sync {torch.equal(weights[0], weights[1])}", flush=True)
# Orderly teardown, as a user's job should end: no rank leaves while its peer still talks to it, the
# SDK's objects let go of the model first, and the process group goes while the interpreter is whole
# (gloo's worker threads release their last tensors before Python starts to finalise).
dist.barrier()
reg.remove()
del reg, monitor, merged, model, module, weights, outputs
dist.destroy_process_group()
gc.collect()
