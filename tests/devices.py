"""The devices a test runs on: the CPU always, CUDA where a GPU is present. The CUDA cases carry the
``cuda`` mark, so that ``pytest -m cuda`` (benchmarks/gpu.sh) runs only them."""
import pytest
import torch

CUDA = pytest.param("cuda", marks=(pytest.mark.cuda,
                                   pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")))
DEVICES = ["cpu", CUDA]
