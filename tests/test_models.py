"""training/models: every model builds and trains a step at its documented input sizes."""
import pytest
import torch
from torch import nn

from training.models import MODELS, build_model, nas_layers
from training.models.common import scaled
from training.models.vanillanet import VanillaNet, dropnet, normnet
from training.models.xception import Xception

# (in_channels, image_size, classes): the embedded digits and the paper's CIFAR-100.
INPUTS = [(1, 8, 10), (3, 32, 100)]
SMALL = 1 / 16


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("channels,size,classes", INPUTS)
def test_every_model_runs_forward_and_backward(name, channels, size, classes):
    torch.manual_seed(0)
    model = build_model(name, channels, size, classes, width=SMALL)
    logits = model(torch.randn(2, channels, size, size))
    assert logits.shape == (2, classes)
    assert torch.isfinite(logits).all()
    logits.logsumexp(1).sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, f"{name}: no gradient for {missing}"


def test_vanillanet_has_the_papers_layers_and_widths():
    model = VanillaNet(3, 32, 100)
    layers = {n: m for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}
    assert list(layers) == ["conv1", "conv2", "conv3", "conv4", "fc1", "prediction"]
    widths = [m.out_channels if isinstance(m, nn.Conv2d) else m.out_features for m in layers.values()]
    assert widths == [256, 256, 512, 512, 1024, 100]
    assert model.fc1.in_features == 512 * 8 * 8  # two 2x2 poolings of 32x32
    assert [m.out_channels for m in (VanillaNet(1, 8, 10, width=0.25).conv1,)] == [64]


def test_dropnet_rates_and_normnet_batch_norms():
    drop = dropnet(1, 8, 10)
    assert (drop.drop.p, drop.drop_fc1.p) == (0.3, 0.5)
    norm = normnet(1, 8, 10)
    assert sum(isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) for m in norm.modules()) == 5
    plain = VanillaNet(1, 8, 10)
    assert not any(isinstance(m, (nn.Dropout, nn.BatchNorm2d)) for m in plain.modules())


def test_vanillanet_rejects_an_image_size_it_cannot_pool():
    with pytest.raises(ValueError, match="divisible by 4.*got 10"):
        VanillaNet(1, 10, 10)


def test_width_scales_channels_and_rejects_nonpositive():
    assert scaled(256, 0.25) == 64 and scaled(3, 0.01) == 1
    with pytest.raises(ValueError, match="got 0"):
        scaled(64, 0)


def test_xception_measures_separable_convolutions_once():
    model = Xception(3, 32, 100, width=SMALL)
    chosen = nas_layers(model)
    assert chosen[:2] == ["block1_conv1", "block1_conv2"] and chosen[-1] == "predictions"
    assert not any(n.endswith(".depthwise") for n in chosen)
    # 2 entry convs + 4 down blocks * (2 separable + 1 shortcut) + 8 middle * 3 + 2 exit + predictions
    assert len(chosen) == 2 + 4 * 3 + 8 * 3 + 2 + 1
    assert nas_layers(VanillaNet(1, 8, 10)) is None  # every Conv/Linear layer


def test_deep_models_have_their_depth():
    counts = {
        name: sum(isinstance(m, (nn.Conv2d, nn.Linear)) for m in build_model(name, 3, 32, 100, SMALL).modules())
        for name in ("vgg16", "resnet50", "resnet50-nobn")
    }
    assert counts["vgg16"] == 16
    assert counts["resnet50"] == counts["resnet50-nobn"] == 50 + 4  # 49 convs + fc + 4 projection shortcuts
    bn = build_model("resnet50-nobn", 3, 32, 100, SMALL)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in bn.modules())


def test_unknown_model_names_the_valid_ones():
    with pytest.raises(ValueError, match="unknown model 'resnet18'.*vanilla.*xception"):
        build_model("resnet18", 3, 32, 100)
