"""The datasets, as tensors in memory: images ``x: (N, C, H, W)`` float32, labels ``y: (N,)`` int64.

- ``digits`` (default, embedded): scikit-learn's real 8x8 handwritten digits (1,797 images, 10 classes),
  shipped inside the scikit-learn wheel, so it needs no download. Split once with a fixed seed.
- ``fashion-mnist``: 28x28 Fashion-MNIST from the standard idx files (``*-idx3-ubyte[.gz]``), found in
  ``--data-dir`` or where Debian's ``dataset-fashion-mnist`` package puts them.
- ``cifar10`` / ``cifar100``: CIFAR-10 (32x32x3, 10 classes) and the paper's CIFAR-100 (100 classes) through
  torchvision's layout, from ``<data-dir>/cifar-10-batches-py`` / ``<data-dir>/cifar-100-python``. Every
  file's md5 is checked against the official files' before any is read, and batches are unpickled by an
  unpickler that builds data only (see :func:`cifar`).

Pixels are scaled to [0, 1] and then standardised per channel with the mean and standard deviation of
the training subset (without it, plain SGD at lr 0.01 idles for dozens of epochs on the 8x8 digits).
Training sets can be cut to a subset, and a fraction of the training labels can be replaced by wrong
ones (``label_noise``, Zhang et al. 2017): the digits are so easy that a small VanillaNet fits them without
its test loss ever rising, while with 40% noisy training labels it first learns the digits and then
memorises the noise, and its test loss rises as in the paper's CIFAR-100 runs. Test labels stay clean. The
*distorted* test set (paper section 2.4) mixes training and test images half and half, which breaks the
independence of test and training data.
"""
from __future__ import annotations

import functools
import gzip
import hashlib
import importlib
import logging
import os
import pickle
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torchvision

DATASETS = ("digits", "fashion-mnist", "cifar10", "cifar100")
CLASSES = {"digits": 10, "fashion-mnist": 10, "cifar10": 10, "cifar100": 100}
# Subset sizes when none is given: digits is cut small enough for VanillaNet to overfit in a demo.
DEFAULT_SIZES: dict[str, tuple[int | None, int | None]] = {  # (train, test); None = all
    "digits": (None, 500),
    "fashion-mnist": (2000, 2000),
    "cifar10": (None, None),
    "cifar100": (None, None),
}
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
CIFAR_READERS = {"cifar10": torchvision.datasets.CIFAR10, "cifar100": torchvision.datasets.CIFAR100}
CIFAR_ARCHIVE_MB = {"cifar10": 163, "cifar100": 161}
log = logging.getLogger(__name__)
FASHION_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


@dataclass(frozen=True)
class Split:
    x: torch.Tensor  # (N, C, H, W) float32
    y: torch.Tensor  # (N,) int64 class indices

    def __len__(self) -> int:
        return len(self.y)

    def head(self, n: int | None) -> "Split":
        return self if n is None else Split(self.x[:n], self.y[:n])

    def to(self, device: torch.device | str) -> "Split":
        return Split(self.x.to(device), self.y.to(device))


@dataclass(frozen=True)
class Data:
    name: str
    train: Split
    test: Split
    classes: int
    distorted: Split | None = None  # half training, half test images

    @property
    def in_channels(self) -> int:
        return self.train.x.shape[1]

    @property
    def image_size(self) -> int:
        return self.train.x.shape[-1]

    def to(self, device: torch.device | str) -> "Data":
        distorted = self.distorted.to(device) if self.distorted is not None else None
        return replace(self, train=self.train.to(device), test=self.test.to(device), distorted=distorted)

    def fingerprint(self) -> str:
        """``name:sha1`` over every image and label: equal exactly when two loads hold the same data (the
        same files, subset sizes and label noise), so that a finished run is reused only for its own data."""
        digest = hashlib.sha1(self.name.encode())
        for split in (self.train, self.test, self.distorted):
            for t in (split.x, split.y) if split is not None else ():
                digest.update(str(tuple(t.shape)).encode())
                digest.update(t.detach().cpu().contiguous().numpy().tobytes())
        return f"{self.name}:{digest.hexdigest()}"


def _shuffled(x: torch.Tensor, y: torch.Tensor, seed: int = 0) -> Split:
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    return Split(x[order], y[order])


def _images(array: np.ndarray, scale: float) -> torch.Tensor:
    """(N, H, W) or (N, H, W, C) numbers in [0, scale] -> (N, C, H, W) float32 in [0, 1]."""
    x = torch.from_numpy(np.ascontiguousarray(array)).float() / scale
    return x[:, None] if x.ndim == 3 else x.permute(0, 3, 1, 2).contiguous()


@functools.lru_cache(maxsize=1)
def digits() -> tuple[Split, Split]:
    """scikit-learn's 1,797 real 8x8 digits, shuffled once (seed 0): the last 500 are the test pool."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise ImportError("the digits dataset ships with scikit-learn: pip install scikit-learn") from None
    raw = load_digits()
    data = _shuffled(_images(raw.images, 16.0), torch.from_numpy(raw.target).long())
    return Split(data.x[:-500], data.y[:-500]), Split(data.x[-500:], data.y[-500:])


# --- Fashion-MNIST -----------------------------------------------------------------------------------

_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """An array from an idx file (the MNIST format: magic ``0 0 type ndim``, big-endian uint32 sizes,
    then the data), gzip-compressed when the name ends in ``.gz``."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise ValueError(f"{path} is not an idx file: it starts with {raw[:4]!r}")
    ndim = raw[3]
    shape = tuple(int(s) for s in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    offset = 4 + 4 * ndim
    if len(raw) - offset != int(np.prod(shape)) * dtype.itemsize:
        raise ValueError(f"{path}: header says shape {shape} of {dtype} but it holds {len(raw) - offset} data bytes")
    return np.frombuffer(bytearray(raw), dtype, offset=offset).reshape(shape)  # bytearray: writable


def _find_idx(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def fashion_mnist_dirs(data_dir: str | os.PathLike | None) -> list[Path]:
    """Where Fashion-MNIST's idx files are looked for, in order."""
    dirs = []
    if data_dir is not None:
        root = Path(data_dir)
        dirs += [root / "fashion-mnist", root / "FashionMNIST" / "raw", root]
    return dirs + [DEBIAN_FASHION_MNIST]


def fashion_mnist(data_dir: str | os.PathLike | None = None, download: bool = False) -> tuple[Split, Split]:
    """Fashion-MNIST's 60,000 training and 10,000 test images (28x28, 10 classes), each shuffled (seed 0)."""
    for folder in fashion_mnist_dirs(data_dir):
        files = {split: [_find_idx(folder, stem) for stem in stems] for split, stems in FASHION_MNIST_FILES.items()}
        if all(p is not None for paths in files.values() for p in paths):
            return tuple(  # type: ignore[return-value]
                _shuffled(_images(read_idx(images), 255.0), torch.from_numpy(read_idx(labels).astype(np.int64)))
                for images, labels in files.values()
            )
    if download and data_dir is not None:
        torchvision.datasets.FashionMNIST(str(data_dir), download=True)  # into <data_dir>/FashionMNIST/raw
        return fashion_mnist(data_dir)
    names = ", ".join(f"{s}[.gz]" for stems in FASHION_MNIST_FILES.values() for s in stems)
    looked = ", ".join(str(d) for d in fashion_mnist_dirs(data_dir))
    raise FileNotFoundError(
        f"Fashion-MNIST not found: looked for {names} in {looked}. Install Debian's dataset-fashion-mnist "
        f"package (apt-get install dataset-fashion-mnist), put the files in --data-dir, or pass "
        f"--data-dir DIR --download."
    )


# --- CIFAR-10 and CIFAR-100 -------------------------------------------------------------------------


class UntrustedData(ValueError):
    """A data file that is not what it claims to be: a wrong md5, or a pickle that asks for more than data."""


def _numpy_global(modules: tuple[str, ...], name: str):
    for module in modules:
        try:
            return getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            continue
    raise ImportError(f"numpy has no {name} in {' or '.join(modules)}")


# Every global a CIFAR batch's pickle names: numpy's array reconstruction, as numpy 1 (the official files)
# and numpy 2 (protocol 4 and 5) write it. Nothing else may be looked up, so unpickling builds data only.
_CIFAR_GLOBALS = {
    **{(m, "_reconstruct"): ("numpy._core.multiarray", "numpy.core.multiarray")
       for m in ("numpy.core.multiarray", "numpy._core.multiarray")},
    **{(m, "_frombuffer"): ("numpy._core.numeric", "numpy.core.numeric")
       for m in ("numpy.core.numeric", "numpy._core.numeric")},
    ("numpy", "ndarray"): ("numpy",),
    ("numpy", "dtype"): ("numpy",),
}


class _CifarUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, strings, bytes, numbers and numpy arrays; any other global is refused."""

    def find_class(self, module: str, name: str):
        if (module, name) not in _CIFAR_GLOBALS:
            raise pickle.UnpicklingError(f"it asks for {module}.{name}, which a CIFAR file never holds")
        return _numpy_global(_CIFAR_GLOBALS[module, name], name)


def _cifar_batch(path: Path, classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(N, 32, 32, 3)`` uint8 and labels ``(N,)`` of one CIFAR batch file (a pickled dict with
    ``data``: ``(N, 3072)`` uint8 rows of 1024 red, 1024 green, 1024 blue pixels, and ``labels`` (CIFAR-10) or
    ``fine_labels`` (CIFAR-100)), read with :class:`_CifarUnpickler`."""
    try:
        with open(path, "rb") as f:
            entry = _CifarUnpickler(f, encoding="latin1").load()  # latin1: the official files are Python 2's
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as e:
        raise UntrustedData(f"{path}: not a CIFAR batch, refused: {e}") from None
    entry = entry if isinstance(entry, dict) else {}
    images, labels = entry.get("data"), entry.get("labels", entry.get("fine_labels"))
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 2 or images.shape[1] != 3072:
        raise UntrustedData(f"{path}: not a CIFAR batch: expected a dict whose 'data' is an (N, 3072) uint8 array")
    if not isinstance(labels, list) or len(labels) != len(images) or not all(
            type(y) is int and 0 <= y < classes for y in labels):
        raise UntrustedData(f"{path}: not a CIFAR batch: expected a list of {len(images)} labels in [0, {classes})")
    return images.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), np.asarray(labels, dtype=np.int64)


def _md5_mismatches(reader: type, folder: Path) -> list[str]:
    """The files in ``folder`` whose md5 differs from the official archive's."""
    files = reader.train_list + reader.test_list + [[reader.meta["filename"], reader.meta["md5"]]]
    return [name for name, md5 in files if not torchvision.datasets.utils.check_integrity(str(folder / name), md5)]


def cifar(name: str, data_dir: str | os.PathLike, download: bool = False,
          verify_md5: bool = True) -> tuple[Split, Split]:
    """CIFAR-10 or CIFAR-100 (``name``) from torchvision's layout under ``data_dir``, each split shuffled
    (seed 0). ``download=True`` fetches and extracts the official archive first if files are missing.

    Every file's md5 is checked against torchvision's list of the official files before any is read, and
    the batches are unpickled by :class:`_CifarUnpickler`, which builds dicts, lists, numbers, strings and
    numpy arrays and nothing else: a file that would run code is refused, naming it. ``verify_md5=False``
    (``--no-md5-check``) reads files of one's own making (a subset, say) without the md5 check, through the
    same unpickler."""
    reader = CIFAR_READERS[name]
    folder = Path(data_dir) / reader.base_folder
    needed = [n for n, _ in reader.train_list + reader.test_list] + [reader.meta["filename"]]
    missing = [n for n in needed if not (folder / n).is_file()]
    if missing and download:
        torchvision.datasets.utils.download_and_extract_archive(reader.url, str(data_dir), filename=reader.filename,
                                                                md5=reader.tgz_md5)
        missing = [n for n in needed if not (folder / n).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{name.upper().replace('CIFAR', 'CIFAR-')} not found: {', '.join(str(folder / n) for n in missing)} "
            f"missing. Download {reader.url} ({CIFAR_ARCHIVE_MB[name]} MB) and extract it into {data_dir} "
            f"(giving {folder}/{', '.join(needed)}), or pass --download to fetch it."
        )
    bad = _md5_mismatches(reader, folder) if verify_md5 else []
    if bad:
        raise UntrustedData(
            f"{', '.join(str(folder / n) for n in bad)}: md5 differs from the official {reader.url}; the "
            f"download is corrupt or the files were changed, and they were not read. Delete {folder} and pass "
            f"--download; for files of your own (a subset), pass --no-md5-check (verify_md5=False)."
        )
    splits = []
    for files in (reader.train_list, reader.test_list):
        batches = [_cifar_batch(folder / n, CLASSES[name]) for n, _ in files]
        images, labels = (np.concatenate(parts) for parts in zip(*batches))
        splits.append(_shuffled(_images(images, 255.0), torch.from_numpy(labels)))
    return splits[0], splits[1]


def cifar100(data_dir: str | os.PathLike, download: bool = False, verify_md5: bool = True) -> tuple[Split, Split]:
    """CIFAR-100 from ``<data_dir>/cifar-100-python/{train,test,meta}``; see :func:`cifar`."""
    return cifar("cifar100", data_dir, download, verify_md5)


def cifar10(data_dir: str | os.PathLike, download: bool = False, verify_md5: bool = True) -> tuple[Split, Split]:
    """CIFAR-10 from ``<data_dir>/cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}``; see :func:`cifar`."""
    return cifar("cifar10", data_dir, download, verify_md5)


# --- Putting it together -----------------------------------------------------------------------------


def standardise(train: Split, *others: Split) -> list[Split]:
    """Every split with ``train``'s per-channel mean subtracted and divided by its standard deviation."""
    mean = train.x.mean(dim=(0, 2, 3), keepdim=True)
    std = train.x.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-6)
    return [Split((s.x - mean) / std, s.y) for s in (train, *others)]


def with_label_noise(split: Split, fraction: float, classes: int, seed: int = 0) -> Split:
    """``split`` with ``round(fraction * N)`` labels (a fixed random choice) each moved to another class."""
    if not 0 <= fraction < 1:
        raise ValueError(f"label noise must be a fraction in [0, 1); got {fraction}")
    generator = torch.Generator().manual_seed(seed)
    chosen = torch.randperm(len(split), generator=generator)[: round(fraction * len(split))]
    y = split.y.clone()
    y[chosen] = (y[chosen] + torch.randint(1, classes, (len(chosen),), generator=generator)) % classes
    return Split(split.x, y)


def distorted_test_set(train: Split, test: Split) -> Split:
    """The paper's distorted test set: as many images as ``test``, half of them from ``train``
    (so test and training data are no longer independent), half from ``test``."""
    half = min(len(test) // 2, len(train))
    return Split(torch.cat([train.x[:half], test.x[:half]]), torch.cat([train.y[:half], test.y[:half]]))


def load_data(
    name: str,
    data_dir: str | os.PathLike | None = None,
    download: bool = False,
    train_size: int | None = None,
    test_size: int | None = None,
    distorted: bool = False,
    label_noise: float = 0.0,
    verify_md5: bool = True,
) -> Data:
    """Dataset ``name`` (one of :data:`DATASETS`), cut to ``train_size``/``test_size`` images (defaults in
    :data:`DEFAULT_SIZES`), with a ``label_noise`` fraction of wrong training labels and the distorted test
    set (built after the noise: it holds training images as trained on) when ``distorted``. Subsets are fixed (seed 0):
    repeats of a training differ in initialisation and batch order, not in data. ``verify_md5``: see :func:`cifar`."""
    if name == "digits":
        train, test = digits()
    elif name == "fashion-mnist":
        train, test = fashion_mnist(data_dir, download)
    elif name in CIFAR_READERS:
        train, test = cifar(name, data_dir if data_dir is not None else "data", download, verify_md5)
    else:
        raise ValueError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}")
    default_train, default_test = DEFAULT_SIZES[name]
    for size, pool, what in ((train_size, train, "train"), (test_size, test, "test")):
        if size is not None and not 1 <= size <= len(pool):
            raise ValueError(f"{what} size must be in [1, {len(pool)}] for {name}; got {size}")
    train = train.head(train_size if train_size is not None else default_train)
    test = test.head(test_size if test_size is not None else default_test)
    train, test = standardise(train, test)
    if label_noise:
        train = with_label_noise(train, label_noise, CLASSES[name])
    return Data(name, train, test, CLASSES[name], distorted_test_set(train, test) if distorted else None)
