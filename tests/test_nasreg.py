import copy
import gc
import weakref

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import nas_logger
from nas_logger import NASReg
from reference import perplexity_reference


def outputs_of(model, x):
    outputs = {}
    hooks = [m.register_forward_hook(lambda m, i, o, n=n: outputs.setdefault(n, o.detach()))
             for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return outputs


def reference_penalty(model, x, strength):
    """-strength * sum_i (1/r_i) sum_k rho_k, batch mean, all layers but the last executed, in float64."""
    outputs = outputs_of(model, x)
    total = 0.0
    for name in list(outputs)[:-1]:
        out = outputs[name].double().numpy()
        rho = perplexity_reference(out, axis=1 if out.ndim == 4 else -1)
        total += rho.reshape(len(rho), -1).sum(axis=1).mean() / rho[0].size
    return -strength * total


def test_penalty_matches_float64_formula(small_cnn):
    small_cnn.double()
    x = torch.randn(6, 1, 8, 8, dtype=torch.float64)
    reg = NASReg(small_cnn, strength=0.7)
    small_cnn(x)
    got = reg.penalty()
    assert got.dim() == 0 and got.requires_grad
    assert got.item() == pytest.approx(reference_penalty(small_cnn, x, 0.7), rel=1e-12)
    assert reg.prediction_layer == "fc2"
    assert reg.layers == ["conv1", "conv2", "fc1"]
    values = reg.values()
    out = outputs_of(small_cnn, x)["conv2"].numpy()
    assert all(type(v) is float for v in values.values())
    assert values["conv2"] == pytest.approx(perplexity_reference(out).mean(), rel=1e-12)
    assert set(values) == {"conv1", "conv2", "fc1"}


def test_gradcheck_in_float64_through_conv_and_linear_layers():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 3, 3), nn.Tanh(), nn.Flatten(), nn.Linear(12, 5), nn.Tanh(), nn.Linear(5, 2)).double()
    reg = NASReg(model, strength=2.0)

    def penalty(x, conv_weight):
        torch.func.functional_call(model, {"0.weight": conv_weight}, (x,))
        return reg.penalty()

    x = torch.randn(2, 2, 4, 4, dtype=torch.float64, requires_grad=True)
    w = model[0].weight.detach().clone().requires_grad_(True)
    assert torch.autograd.gradcheck(penalty, (x, w))


def test_gradcheck_in_float64_through_layers_followed_by_in_place_relu():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 3, 3), nn.ReLU(inplace=True), nn.Flatten(), nn.Linear(12, 5),
                          nn.ReLU(inplace=True), nn.Linear(5, 2)).double()
    reg = NASReg(model, strength=2.0)

    def loss(x, conv_weight):
        out = torch.func.functional_call(model, {"0.weight": conv_weight}, (x,))
        return reg.penalty() + out.sum()

    x = torch.randn(2, 2, 4, 4, dtype=torch.float64, requires_grad=True)
    w = model[0].weight.detach().clone().requires_grad_(True)
    assert torch.autograd.gradcheck(loss, (x, w))


def without_in_place(model):
    """A copy of ``model`` whose ReLU and Dropout modules work out of place: the same function."""
    twin = copy.deepcopy(model)
    for m in twin.modules():
        if hasattr(m, "inplace"):
            m.inplace = False
    return twin


def test_torchvision_squeezenet_with_in_place_relu_trains_as_its_out_of_place_twin():
    """SqueezeNet (torchvision) follows every conv, the prediction conv too, with ReLU(inplace=True)."""
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    model = torchvision.models.squeezenet1_1(num_classes=10)
    model.classifier[0].p = 0.0  # dropout draws differ between the twins otherwise
    twin = without_in_place(model)
    assert any(getattr(m, "inplace", False) for m in model.modules())
    x, y = torch.randn(2, 3, 40, 40), torch.randint(0, 10, (2,))
    losses = {}
    for name, net in (("in place", model), ("out of place", twin)):
        reg = NASReg(net)
        optimizer = torch.optim.SGD(net.parameters(), lr=0.01)
        losses[name] = []
        for _ in range(2):
            optimizer.zero_grad()
            loss = F.cross_entropy(net(x), y) + reg.penalty()
            loss.backward()
            optimizer.step()
            losses[name].append(loss.item())
    assert losses["in place"] == pytest.approx(losses["out of place"], rel=1e-6)
    for p, q in zip(model.parameters(), twin.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-7)


def test_alexnet_like_sequential_with_in_place_relu_gets_the_reference_gradient():
    """torchvision's AlexNet layout (features / avgpool / classifier, every ReLU in place), small."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
        nn.Dropout(0.0, inplace=True), nn.Linear(64, 32), nn.ReLU(inplace=True), nn.Linear(32, 10),
    ).double()
    x = torch.randn(5, 3, 8, 8, dtype=torch.float64)
    twin = without_in_place(model)
    reg = NASReg(model, strength=0.5)
    model(x)
    penalty = reg.penalty()
    penalty.backward()
    assert penalty.item() == pytest.approx(reference_penalty(twin, x, 0.5), rel=1e-12)
    # Reference: the same penalty, differentiated by autograd through the plain softmax formula.
    outputs = {}
    hooks = [m.register_forward_hook(lambda m, i, o, n=n: outputs.setdefault(n, o))
             for n, m in twin.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    twin(x)
    for h in hooks:
        h.remove()
    total = 0.0
    for name in ["0", "3", "8"]:
        a = outputs[name]
        dim = 1 if a.dim() == 4 else -1
        rho = (-(torch.softmax(a, dim) * torch.log_softmax(a, dim)).sum(dim)).exp()
        total = total + rho.reshape(len(rho), -1).sum(1).mean() / rho[0].numel()
    (-0.5 * total).backward()
    for (name, p), q in zip(model.named_parameters(), twin.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-10, atol=1e-12, msg=name)


def test_weights_override_lambda_per_layer(small_cnn):
    x = torch.randn(4, 1, 8, 8)
    reg = NASReg(small_cnn, weights={"conv1": 0.0, "conv2": 0.0, "fc1": 2.0})
    small_cnn(x)
    out = outputs_of(small_cnn, x)["fc1"].double().numpy()
    assert reg.penalty().item() == pytest.approx(-2.0 * perplexity_reference(out, axis=-1).mean(), rel=1e-5)


def test_exclude_and_layers_choose_what_is_regularised(small_cnn):
    reg = NASReg(small_cnn, exclude=["conv*"])
    small_cnn(torch.randn(2, 1, 8, 8))
    reg.penalty()
    assert reg.layers == ["fc1"]
    reg.remove()
    reg = NASReg(small_cnn, layers=["conv1", "fc2"])
    small_cnn(torch.randn(2, 1, 8, 8))
    reg.penalty()
    assert reg.prediction_layer is None and reg.layers == ["conv1", "fc2"]  # explicit choice is respected


def test_bad_arguments_are_rejected(small_cnn):
    with pytest.raises(ValueError, match="strength must be >= 0; got -1"):
        NASReg(small_cnn, strength=-1)
    with pytest.raises(ValueError, match="strength must be >= 0; got nan"):
        NASReg(small_cnn, strength=float("nan"))
    with pytest.raises(ValueError, match="layer 'conv7' matches no Conv/Linear layer of SmallCNN"):
        NASReg(small_cnn, layers=["conv7"])
    with pytest.raises(ValueError, match="layer 'fc9' matches no"):
        NASReg(small_cnn, exclude=["fc9"])
    with pytest.raises(ValueError, match="no Conv/Linear layer left to regularise"):
        NASReg(nn.Sequential(nn.Flatten(), nn.Linear(4, 2)))
    with pytest.raises(ValueError, match=r"weights name layers that are not regularised: \['fc3'\]"):
        NASReg(small_cnn, weights={"fc3": 1.0})
    reg = NASReg(small_cnn)
    with pytest.raises(RuntimeError, match="needs a forward pass"):
        reg.penalty()
    with torch.no_grad():
        small_cnn(torch.randn(2, 1, 8, 8))
    with pytest.raises(RuntimeError, match="needs a forward pass"):
        reg.penalty()


def test_no_activation_outlives_the_step(small_cnn):
    refs = []
    small_cnn.conv2.register_forward_hook(lambda m, i, o: refs.append(weakref.ref(o)))
    reg = NASReg(small_cnn)
    loss = F.cross_entropy(small_cnn(torch.randn(8, 1, 8, 8)), torch.arange(8)) + reg.penalty()
    loss.backward()
    del loss
    gc.collect()
    assert refs and refs[0]() is None


def test_shares_hooks_with_the_monitor_and_ignores_its_probe_pass(tmp_path, small_cnn):
    reg = NASReg(small_cnn)
    monitor = nas_logger.watch(small_cnn, tmp_path, probe=torch.randn(3, 1, 8, 8))
    x = torch.randn(4, 1, 8, 8)
    small_cnn(x)
    monitor.log(0)  # the probe forward must not replace the training forward's capture
    assert all(len(m._forward_hooks) <= 1 for m in small_cnn.modules())
    got = reg.penalty().item()
    assert got == pytest.approx(reference_penalty(small_cnn, x, 1.0), rel=1e-5)
    monitor.close()


def test_autocast_penalty_is_float32(small_cnn):
    reg = NASReg(small_cnn)
    x = torch.randn(4, 1, 8, 8)
    small_cnn(x)
    plain = reg.penalty()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        small_cnn(x)
        mixed = reg.penalty()
    assert mixed.dtype == torch.float32
    assert mixed.item() == pytest.approx(plain.item(), rel=0.02)


def test_inductor_compiled_model_gives_the_eager_penalty_and_gradients(small_cnn):
    x, y = torch.randn(8, 1, 8, 8), torch.randint(0, 10, (8,))
    reg = NASReg(small_cnn)
    eager = F.cross_entropy(small_cnn(x), y) + reg.penalty()
    eager.backward()
    eager_grad = small_cnn.conv1.weight.grad.clone()
    small_cnn.zero_grad()
    compiled = torch.compile(small_cnn)  # inductor, as users compile
    loss = F.cross_entropy(compiled(x), y) + reg.penalty()
    loss.backward()
    assert loss.item() == pytest.approx(eager.item(), rel=1e-5)
    torch.testing.assert_close(small_cnn.conv1.weight.grad, eager_grad, rtol=1e-4, atol=1e-6)


def test_grad_scaler_with_autocast_steps_with_finite_scaled_gradients(small_cnn):
    x, y = torch.randn(8, 1, 8, 8), torch.randint(0, 10, (8,))
    reg = NASReg(small_cnn)
    optimizer = torch.optim.SGD(small_cnn.parameters(), lr=0.01)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)
    before = small_cnn.conv1.weight.detach().clone()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = F.cross_entropy(small_cnn(x), y) + reg.penalty()
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)
    assert all(torch.isfinite(p.grad).all() for p in small_cnn.parameters())
    scaler.step(optimizer)
    scaler.update()
    assert scaler.get_scale() == 2.0**10  # no inf/NaN found, so the scale was kept
    assert not torch.equal(small_cnn.conv1.weight, before)


def mean_nas(model, x):
    model.eval()
    with torch.no_grad():
        medians = [nas_logger.nas_sparsity(o, dim=1 if o.dim() == 4 else -1).mean().item()
                   for o in outputs_of(model, x).values()]
    return float(np.mean(medians[:-1]))


def test_regularised_training_lowers_nas(small_cnn):
    torch.manual_seed(0)
    x, y = torch.randn(64, 1, 8, 8), torch.randint(0, 10, (64,))
    state = {k: v.clone() for k, v in small_cnn.state_dict().items()}
    results = {}
    for strength in (0.0, 1.0):
        small_cnn.load_state_dict(state)
        reg = NASReg(small_cnn, strength=strength)
        optimizer = torch.optim.SGD(small_cnn.parameters(), lr=0.05)
        for step in range(40):
            batch = slice((step % 4) * 16, (step % 4 + 1) * 16)
            optimizer.zero_grad()
            (F.cross_entropy(small_cnn(x[batch]), y[batch]) + reg.penalty()).backward()
            optimizer.step()
        reg.remove()
        results[strength] = mean_nas(small_cnn, x)
    assert results[1.0] < results[0.0] - 0.01


@pytest.mark.parametrize("layer, x", [(nn.Linear(6, 4), torch.randn(3, 6)), (nn.Conv2d(2, 5, 3), torch.randn(3, 2, 6, 6))])
def test_a_model_that_is_one_layer_is_regularised_under_its_class_name(layer, x):
    name = type(layer).__name__
    layer.double()
    x = x.double()
    reg = NASReg(layer, layers=[layer], weights={name: 0.5})
    out = layer(x)
    got = reg.penalty()
    assert reg.layers == [name] and list(reg.values()) == [name]
    rho = perplexity_reference(out.detach().numpy(), axis=1 if out.dim() == 4 else -1)
    assert got.item() == pytest.approx(-0.5 * rho.reshape(len(rho), -1).sum(axis=1).mean(), rel=1e-12)
    assert NASReg(layer, layers=name, exclude=[]).layers == [name]


def test_layers_leave_out_multihead_attention_out_proj_which_never_runs_as_a_module():
    class Attention(nn.Module):
        def __init__(self):
            super().__init__()
            self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
            self.fc = nn.Linear(8, 8)
            self.head = nn.Linear(8, 3)

        def forward(self, x):
            return self.head(self.fc(self.attn(x, x, x)[0]))

    model = Attention()
    reg = NASReg(model)
    assert reg.layers == ["fc", "head"]
    model(torch.randn(2, 4, 8)).sum()
    reg.penalty()
    assert reg.layers == ["fc"]


def reference_normalized_penalty(model, x, strength):
    """-strength * mean_i (1/(r_i D_i)) sum_k rho_k, batch mean, all layers but the last executed, in float64."""
    outputs = outputs_of(model, x)
    terms = []
    for name in list(outputs)[:-1]:
        out = outputs[name].double().numpy()
        rho = perplexity_reference(out, axis=1 if out.ndim == 4 else -1)
        filters = out.shape[1 if out.ndim == 4 else -1]
        terms.append(rho.reshape(len(rho), -1).sum(axis=1).mean() / (rho[0].size * filters))
    return -strength * float(np.mean(terms))


@pytest.mark.parametrize("width", [4, 64])
def test_normalized_penalty_is_a_mean_over_layers_of_terms_in_0_1_whatever_the_width(width):
    from conftest import SmallCNN

    torch.manual_seed(0)
    model = SmallCNN(width=width).double()
    x = torch.randn(6, 1, 8, 8, dtype=torch.float64)
    reg = NASReg(model, strength=0.5, normalize=True)
    model(x)
    got = reg.penalty()
    assert got.item() == pytest.approx(reference_normalized_penalty(model, x, 0.5), rel=1e-12)
    assert -0.5 <= got.item() <= -0.5 / (32 * width)  # rho_k / D in [1/D, 1] per layer, D <= 32 * width


def test_default_penalty_grows_with_the_filters_and_the_normalized_one_does_not():
    from conftest import SmallCNN

    penalties = {}
    for width in (4, 64):
        torch.manual_seed(0)
        model = SmallCNN(width=width).double()
        x = torch.randn(6, 1, 8, 8, dtype=torch.float64)
        for normalize in (False, True):
            reg = NASReg(model, normalize=normalize)
            model(x)
            penalties[width, normalize] = reg.penalty().item()
            reg.remove()
    # fc1 keeps its 32 filters, the convs get 16x more: the sum of mean perplexities grows several-fold
    assert penalties[64, False] < 3 * penalties[4, False] < 0
    assert -1 <= penalties[64, True] < 0 and -1 <= penalties[4, True] < 0


def test_normalize_and_weights_are_exclusive(small_cnn):
    with pytest.raises(ValueError, match="normalize=True sets lambda_i itself"):
        NASReg(small_cnn, normalize=True, weights={"conv1": 1.0})
