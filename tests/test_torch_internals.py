"""The private torch APIs behind nas_logger/torch_internals.py: with each removed from torch, the module
loads, says so, and the public fallbacks give the same probes, penalties and gradients."""
import ast
import collections
import importlib
from pathlib import Path

import pytest
import torch
from torch import nn

from nas_logger import NASReg
from nas_logger import torch_internals as internals
from nas_logger.probe import ProbeCall, capture_call

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def without_private_torch(monkeypatch):
    """torch as a build without ``_pytree`` and ``_lazy_clone`` would be, for a reload of torch_internals."""
    import sys

    with monkeypatch.context() as patch:
        patch.delattr(torch, "_lazy_clone")
        patch.delattr(torch.utils, "_pytree")
        patch.setitem(sys.modules, "torch.utils._pytree", None)  # import raises ImportError
        importlib.reload(internals)
        yield
    importlib.reload(internals)
    assert all(internals.available.values())


Point = collections.namedtuple("Point", "x y")


def captured(call_args, call_kwargs):
    probe = capture_call(call_args, call_kwargs, max_samples=2)
    return probe.args, probe.kwargs


def test_without_private_torch_the_fallbacks_stand_in_and_give_the_same_results(without_private_torch):
    assert internals.available == {"torch.utils._pytree": False, "torch._lazy_clone": False}
    x, mask = torch.randn(4, 3), torch.ones(4, 1)
    args, kwargs = captured((x, [mask, Point(x, 7)]), {"extra": {"scale": torch.tensor(2.0)}, "flag": True})
    assert torch.equal(args[0], x[:2]) and torch.equal(args[1][0], mask[:2])
    assert isinstance(args[1][1], Point) and torch.equal(args[1][1].x, x[:2]) and args[1][1].y == 7
    assert torch.equal(kwargs["extra"]["scale"], torch.tensor(2.0)) and kwargs["flag"] is True
    assert args[0].data_ptr() != x.data_ptr()  # copied, not a view of the training batch
    assert [getattr(t, "shape", t) for t in internals.tree_leaves(ProbeCall(args, kwargs).args)] == [(2, 3), (2, 1), (2, 3), 7]


def test_the_fallbacks_match_torch_pytree_and_lazy_clone_where_torch_has_them():
    if not all(internals.available.values()):
        pytest.skip("this torch build lacks a private API the comparison needs")
    tree = ((torch.zeros(1), [torch.ones(2), 3]), {"b": torch.ones(1), "a": Point(torch.zeros(3), None)})
    assert [id(leaf) for leaf in internals._leaves(tree)] == [id(leaf) for leaf in internals.tree_leaves(tree)]
    double = lambda t: t * 2  # noqa: E731
    ours, torchs = internals._map_only(torch.Tensor, double, tree), internals.tree_map_only(torch.Tensor, double, tree)
    assert [l.tolist() if isinstance(l, torch.Tensor) else l for l in internals._leaves(ours)] == \
        [l.tolist() if isinstance(l, torch.Tensor) else l for l in internals.tree_leaves(torchs)]


def reference_gradient(model, x):
    """d penalty / d first weight with rho = exp(H(softmax)) in plain autograd ops, no NASReg, in float64."""
    total, out = 0.0, x
    for layer in model:
        out = layer(out) if not isinstance(layer, nn.ReLU) else torch.relu(out)
        if isinstance(layer, nn.Linear) and layer is not model[-1]:
            p = torch.softmax(out, dim=-1)
            total = total + torch.exp(-(p * torch.log(p)).sum(-1)).mean()  # r = 1 field, batch mean
    (-total).backward()
    return model[0].weight.grad.clone()


def test_penalty_gradient_is_right_with_a_plain_clone_for_backward(without_private_torch):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 6), nn.ReLU(inplace=True), nn.Linear(6, 4), nn.ReLU(inplace=True),
                          nn.Linear(4, 2)).double()
    x = torch.randn(3, 5, dtype=torch.float64)
    want = reference_gradient(model, x)
    model.zero_grad()
    reg = NASReg(model)
    model(x)  # the in-place ReLUs overwrite what backward reads unless it was cloned
    reg.penalty().backward()
    torch.testing.assert_close(model[0].weight.grad, want, rtol=1e-10, atol=1e-12)


def test_no_module_but_torch_internals_names_a_private_torch_api():
    private = ("_pytree", "_lazy_clone", "_orig_mod", "_distribute_module_applied", "_composable")
    offenders = []
    for path in sorted((ROOT / "nas_logger").rglob("*.py")):
        if path.name == "torch_internals.py":
            continue
        tree = ast.parse(path.read_text())
        calls = {id(arg) for node in ast.walk(tree) if isinstance(node, ast.Call) for arg in node.args}
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute):
                named = node.attr in private or (
                    isinstance(node.value, ast.Name) and node.value.id == "torch" and node.attr.startswith("_"))
            elif isinstance(node, ast.ImportFrom):
                named = any(p in (node.module or "") for p in private) or any(
                    a.name in private for a in node.names)
            elif isinstance(node, ast.Constant) and id(node) in calls and isinstance(node.value, str):
                named = any(p in node.value for p in private)  # getattr(torch, "_lazy_clone") and the like
            else:
                named = False
            if named:
                offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []
