"""``python -m training`` (in a checkout): train the paper's models with NAS logging.

    python -m training --model vanilla --dataset digits --epochs 30 --repeats 3 --logdir runs/vanilla
    python -m training --models vanilla,dropnet,normnet,nasreg --width 0.25 --logdir runs/grid
"""
from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence

import torch

from .data import DATASETS, DEFAULT_SIZES, load_data
from .models import MODELS
from .train import LogDirConflict, Protocol, run_grid


def model_list(text: str) -> list[str]:
    """``"vanilla,nasreg"`` -> ``["vanilla", "nasreg"]``; an argparse error names unknown models."""
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in MODELS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown model {', '.join(map(repr, unknown)) or repr(text)}; choose from {', '.join(MODELS)}"
        )
    return names


def _positive(kind: type):
    def parse(text: str):
        value = kind(text)
        if not (math.isfinite(value) and value > 0):
            wanted = "an integer >= 1" if kind is int else "a finite number > 0"
            raise argparse.ArgumentTypeError(f"must be {wanted}; got {text}")
        return value

    parse.__name__ = kind.__name__
    return parse


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0; got {text}")
    return value


def device(text: str) -> torch.device:
    """A torch device that can train here: cpu, or an accelerator that is present (``cuda``, ``cuda:1``)."""
    usable = "cpu" + (f" or cuda[:0..{torch.cuda.device_count() - 1}]" if torch.cuda.is_available() else "")
    try:
        chosen = torch.device(text)
    except (RuntimeError, ValueError):
        raise argparse.ArgumentTypeError(f"not a torch device: {text!r}; use {usable}") from None
    if chosen.type == "cpu":
        return chosen
    backend = getattr(torch, chosen.type, None)
    present = backend is not None and hasattr(backend, "is_available") and backend.is_available()
    if not present or (chosen.index is not None and chosen.index >= backend.device_count()):
        raise argparse.ArgumentTypeError(f"device {text!r} cannot train here (it holds no data or is not "
                                         f"present); use {usable}")
    return chosen


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m training",
        description="Train the models of Huesmann et al., 'The Impact of Activation Sparsity on Overfitting "
        "in CNNs', with the paper's protocol (SGD, lr 0.01, batch 32) and log NAS for TensorBoard.",
    )
    p.add_argument("--model", "--models", dest="models", type=model_list, default=["vanilla"], metavar="NAMES",
                   help=f"model or comma-separated models to run in turn, from: {', '.join(MODELS)}")
    p.add_argument("--dataset", choices=DATASETS, default="digits",
                   help="digits (embedded, default), fashion-mnist, cifar10, cifar100 (the paper's)")
    p.add_argument("--data-dir", default=None, help="folder holding cifar-10-batches-py/, cifar-100-python/ or Fashion-MNIST's idx files")
    p.add_argument("--download", action="store_true", help="download CIFAR-10 / CIFAR-100 / Fashion-MNIST into --data-dir if missing")
    p.add_argument("--no-md5-check", dest="verify_md5", action="store_false",
                   help="read CIFAR files that are not the official ones (a subset of your own) without checking "
                        "their md5; they are still read as data only")
    p.add_argument("--train-size", type=_positive(int), default=None,
                   help="training images used; default " + ", ".join(
                       f"{k}: {v[0] or 'all'}" for k, v in DEFAULT_SIZES.items()))
    p.add_argument("--test-size", type=_positive(int), default=None, help="test images used (default as for --train-size)")
    p.add_argument("--label-noise", type=float, default=0.0, metavar="FRACTION",
                   help="replace this fraction of the training labels by wrong ones (default 0)")
    p.add_argument("--distorted", action="store_true",
                   help="also log distorted_test_loss on a test set of half training, half test images")
    p.add_argument("--epochs", type=_positive(int), default=30)
    p.add_argument("--repeats", type=_positive(int), default=3, help="trainings per model, seeds --seed, --seed+1, ...")
    p.add_argument("--seed", type=int, default=0, help="first seed")
    p.add_argument("--width", type=_positive(float), default=1.0, help="factor on every layer's channels (e.g. 0.25 on CPU)")
    p.add_argument("--lr", type=_positive(float), default=0.01)
    p.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd", help="default sgd (the paper's)")
    p.add_argument("--momentum", type=float, default=0.0, help="SGD momentum (default 0, the paper's)")
    p.add_argument("--weight-decay", type=float, default=0.0, help="L2 weight decay of the optimiser (default 0)")
    p.add_argument("--augment", action="store_true", help="random crop (4 pixels of padding) and flip of training batches")
    p.add_argument("--batch-size", type=_positive(int), default=32)
    p.add_argument("--nas-strength", type=_positive(float), default=1.0, help="NASReg: multiplier of lambda_i = 1/r_i")
    p.add_argument("--logdir", default="runs/train", help="runs go to <logdir>/<model>/seed<k>")
    p.add_argument("--device", type=device, default=None, help="torch device; default cuda when available, else cpu")
    p.add_argument("--threads", type=_positive(int), default=None,
                   help="CPU threads for torch (default: torch's choice; 1 is fastest for tiny models on a busy machine)")
    p.add_argument("--eb-batches", type=_non_negative_int, default=4, metavar="N",
                   help="training batches per epoch on which the EB stopping criterion is measured (0: none; "
                        "EB's per-sample gradients cost about as much as the epoch's training on CPU)")
    p.add_argument("--jobs", type=_positive(int), default=1,
                   help="runs trained at a time, in worker processes (e.g. 2 with --threads 1 on 2 cores)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    try:
        data = load_data(
            args.dataset, args.data_dir, args.download, args.train_size, args.test_size, args.distorted, args.label_noise,
            args.verify_md5,
        )
    except (FileNotFoundError, ValueError) as e:
        print(f"nas-train: error: {e}", file=sys.stderr)
        return 2
    protocol = Protocol(args.epochs, args.lr, args.batch_size, args.width, args.nas_strength, args.eb_batches,
                        args.optimizer, args.momentum, args.weight_decay, args.augment)
    print(
        f"{args.dataset}: {len(data.train)} training, {len(data.test)} test images of "
        f"{data.in_channels}x{data.image_size}x{data.image_size}, {data.classes} classes"
        f"{f', {args.label_noise:.0%} noisy training labels' if args.label_noise else ''}; device {device}; "
        f"logs in {args.logdir}",
        file=sys.stderr,
    )
    try:
        run_grid(args.models, data.to(device), protocol, args.repeats, args.logdir, args.seed, not args.no_progress,
                 args.jobs, args.threads)
    except LogDirConflict as e:
        print(f"nas-train: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
