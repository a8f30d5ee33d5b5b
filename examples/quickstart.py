"""The two-line integration in a complete training loop: a small CNN on scikit-learn's real 8x8 digits."""
import argparse

import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn
from tqdm import tqdm

import nas_logger


def digits(train_size: int = 300):
    data = load_digits()
    x = torch.tensor(data.images, dtype=torch.float32)[:, None] / 16.0
    y = torch.tensor(data.target)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    x, y = x[perm], y[perm]
    return (x[:train_size], y[:train_size]), (x[-500:], y[-500:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--logdir", default="runs/quickstart")
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()
    torch.manual_seed(0)
    (x, y), (x_test, y_test) = digits()
    model = nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64 * 16, 128), nn.ReLU(), nn.Linear(128, 10),
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    monitor = nas_logger.watch(model, args.logdir, probe=x_test[:32])  # line 1
    for epoch in tqdm(range(args.epochs), desc="epochs"):
        model.train()
        for i in range(0, len(x), 32):
            optimizer.zero_grad()
            F.cross_entropy(model(x[i : i + 32]), y[i : i + 32]).backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            test_loss = F.cross_entropy(model(x_test), y_test)
        monitor.log(epoch, test_loss=test_loss)  # line 2
    monitor.close()
    print(f"NAS summaries written to {args.logdir}; view them with: tensorboard --logdir {args.logdir}")


if __name__ == "__main__":
    main()
