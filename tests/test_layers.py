import pytest
import torch
from torch import nn

from nas_logger.layers import filter_dim, layer_kind, normalised_layers, select_layers, unwrap


def test_kinds_and_filter_dims():
    assert [layer_kind(m) for m in (nn.Conv1d(1, 2, 1), nn.Conv2d(1, 2, 1), nn.Conv3d(1, 2, 1), nn.Linear(1, 2), nn.ReLU())] == \
        ["conv1d", "conv2d", "conv3d", "linear", None]
    assert filter_dim("conv2d") == 1 and filter_dim("linear") == -1


def test_selection_keeps_registration_order_and_accepts_globs(small_cnn):
    assert list(select_layers(small_cnn)) == ["conv1", "conv2", "fc1", "fc2"]
    assert list(select_layers(small_cnn, "fc*")) == ["fc1", "fc2"]
    assert list(select_layers(small_cnn, [small_cnn.conv2, "fc2"])) == ["conv2", "fc2"]


def test_selection_errors_name_the_bad_value(small_cnn):
    with pytest.raises(ValueError, match="layer ReLU is not a Conv/Linear module of SmallCNN"):
        select_layers(small_cnn, [nn.ReLU()])
    with pytest.raises(ValueError, match=r"'pool' matches no Conv/Linear layer of SmallCNN; choose from \['conv1'"):
        select_layers(small_cnn, "pool")


def test_an_empty_selection_is_rejected_unless_allowed(small_cnn):
    for empty in ([], (), iter([])):
        with pytest.raises(ValueError, match=r"layers is an empty selection; pass None .* choose from \['conv1'"):
            select_layers(small_cnn, empty)
    assert select_layers(small_cnn, [], allow_empty=True) == {}


@pytest.mark.parametrize("model, name", [(nn.Linear(4, 3), "Linear"), (nn.Conv2d(1, 2, 3), "Conv2d")])
def test_a_model_that_is_one_layer_is_named_by_its_class(model, name):
    assert select_layers(model) == {name: model}
    assert select_layers(model, [model]) == select_layers(model, name) == {name: model}


def test_unwrap_sees_through_compile_and_data_parallel(small_cnn):
    assert unwrap(torch.compile(small_cnn, backend="eager")) is small_cnn
    assert unwrap(nn.DataParallel(small_cnn)) is small_cnn
    assert unwrap(small_cnn) is small_cnn


class Attention(nn.Module):
    """A MultiheadAttention (whose out_proj weight it applies with F.linear, never calling out_proj) and a head."""

    def __init__(self) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        return self.head(self.attn(x, x, x)[0])


def test_multihead_attention_out_proj_is_not_listed_since_it_never_runs_as_a_module():
    model = Attention()
    assert list(select_layers(model)) == ["head"]
    assert list(select_layers(model, "*")) == ["head"]


@pytest.mark.parametrize("ask", ["attn.out_proj", "attn.*", "module"])
def test_asking_for_multihead_attention_out_proj_says_why_it_cannot_be_measured(ask):
    model = Attention()
    with pytest.raises(ValueError, match=r"'attn.out_proj' is never called as a module: nn.MultiheadAttention applies "
                                         r"its weight with F.linear"):
        select_layers(model, [model.attn.out_proj if ask == "module" else ask])


def test_layers_that_feed_a_normalisation_layer_are_found_in_architectures_outside_the_suites():
    """torchvision's ResNet-18 (every convolution feeds a BatchNorm2d, the classifier none), a VGG with batch norm
    after the ReLU, an MLP with LayerNorm and GroupNorm, and a plain CNN (activations, dropout and pooling passed
    over: none)."""
    torchvision = pytest.importorskip("torchvision")
    resnet = torchvision.models.resnet18(num_classes=10)
    layers = select_layers(resnet)
    fed = normalised_layers(resnet, layers)
    assert set(fed) == set(layers) - {"fc"} and set(fed.values()) == {"BatchNorm2d"}
    assert "layer2.0.downsample.0" in fed
    vgg = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.BatchNorm2d(8), nn.Conv2d(8, 8, 3), nn.ReLU(),
                        nn.BatchNorm2d(8, affine=False), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8, 4))
    assert normalised_layers(vgg, select_layers(vgg)) == {"0": "BatchNorm2d", "3": "BatchNorm2d"}
    mlp = nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.GELU(), nn.Linear(8, 8), nn.GroupNorm(2, 8),
                        nn.Linear(8, 3))
    assert normalised_layers(mlp, select_layers(mlp)) == {"0": "LayerNorm", "3": "GroupNorm"}
    plain = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Dropout(0.2), nn.MaxPool2d(2), nn.Identity(),
                          nn.Conv2d(8, 8, 3), nn.BatchNorm2d(8), nn.Flatten(), nn.Linear(8, 2))
    assert normalised_layers(plain, ["0", "8"]) == {}  # "5" feeds one, but is not asked about
