import torch
from torch import nn

from training.models import MODELS, build_model


def test_resnet10_bn_and_vgg8_drop_map_cifar_images_to_logits():
    for name, norms in (("resnet10-bn", True), ("vgg8-drop", False)):
        model = build_model(name, 3, 32, 10, width=0.125)
        assert model(torch.randn(4, 3, 32, 32)).shape == (4, 10)
        has_norm = any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
        assert has_norm == norms
    assert MODELS["resnet10-bn"].paper_name == "ResNet10-BN" and MODELS["vgg8-drop"].paper_name == "VGG8-Drop"
    drops = [m.p for m in build_model("vgg8-drop", 3, 32, 10).modules() if isinstance(m, nn.Dropout)]
    assert drops == [0.25, 0.25, 0.25, 0.5]


def test_the_optimiser_flags_reach_the_optimiser():
    from training.cli import parser
    from training.train import Protocol, make_optimizer

    args = parser().parse_args(["--momentum", "0.9", "--weight-decay", "5e-4", "--augment"])
    assert (args.optimizer, args.momentum, args.weight_decay, args.augment) == ("sgd", 0.9, 5e-4, True)
    model = nn.Linear(2, 2)
    sgd = make_optimizer(model, Protocol(lr=0.01, momentum=0.9, weight_decay=5e-4))
    assert isinstance(sgd, torch.optim.SGD)
    assert (sgd.defaults["momentum"], sgd.defaults["weight_decay"], sgd.defaults["lr"]) == (0.9, 5e-4, 0.01)
    adam = make_optimizer(model, Protocol(lr=0.001, optimizer="adam"))
    assert isinstance(adam, torch.optim.Adam) and adam.defaults["lr"] == 0.001
    assert isinstance(make_optimizer(model, Protocol()), torch.optim.SGD)  # the paper's plain SGD by default
    assert make_optimizer(model, Protocol()).defaults["momentum"] == 0.0
