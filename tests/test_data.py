"""training/data: the embedded digits, the Fashion-MNIST idx reader and CIFAR-10/100 through torchvision,
each on files the tests write themselves (nothing is downloaded)."""
import gzip
import hashlib
import io
import pickle
import struct

import numpy as np
import pytest
import torch

from training import data
from training.data import Split, distorted_test_set, fashion_mnist, load_data, read_idx, standardise


def write_idx(path, array: np.ndarray) -> None:
    """The MNIST idx format: 0, 0, type 0x08 (uint8), ndim, big-endian uint32 sizes, then the bytes."""
    raw = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.astype(np.uint8).tobytes()
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(raw)


def write_fashion_mnist(folder, n_train=6, n_test=4, gz=True):
    """Tiny Fashion-MNIST files whose image i is uniformly 20 * label_i."""
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = np.arange(n) % 10
        images = np.broadcast_to((20 * labels)[:, None, None], (n, 28, 28))
        write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", labels)


def test_digits_are_real_disjoint_and_cut_to_the_default_sizes():
    d = load_data("digits")
    assert d.train.x.shape == (1297, 1, 8, 8) and d.test.x.shape == (500, 1, 8, 8)
    assert (d.in_channels, d.image_size, d.classes) == (1, 8, 10)
    assert set(d.train.y.tolist()) == set(range(10))
    # standardised with the training subset's statistics
    assert abs(d.train.x.mean().item()) < 1e-5 and abs(d.train.x.std().item() - 1) < 1e-3
    train = {tuple(x.flatten().tolist()) for x in d.train.x}
    assert len(train) > 1250 and not train & {tuple(x.flatten().tolist()) for x in d.test.x} - {()}


def test_subset_sizes_are_checked():
    assert len(load_data("digits", train_size=50, test_size=20).train) == 50
    with pytest.raises(ValueError, match=r"train size must be in \[1, 1297\] for digits; got 5000"):
        load_data("digits", train_size=5000)
    with pytest.raises(ValueError, match="unknown dataset 'mnist'; choose from digits, fashion-mnist, cifar10, cifar100"):
        load_data("mnist")


def test_distorted_test_set_is_half_training_half_test():
    train = Split(torch.zeros(10, 1, 4, 4), torch.zeros(10, dtype=torch.long))
    test = Split(torch.ones(6, 1, 4, 4), torch.ones(6, dtype=torch.long))
    mixed = distorted_test_set(train, test)
    assert len(mixed) == 6
    assert mixed.y.tolist() == [0, 0, 0, 1, 1, 1]
    d = load_data("digits", distorted=True)
    assert torch.equal(d.distorted.x[:250], d.train.x[:250]) and torch.equal(d.distorted.x[250:], d.test.x[:250])


def test_standardise_uses_the_training_statistics_per_channel():
    train = Split(torch.tensor([0.0, 2.0]).view(2, 1, 1, 1).expand(2, 1, 2, 2), torch.zeros(2, dtype=torch.long))
    other = Split(torch.full((1, 1, 2, 2), 3.0), torch.zeros(1, dtype=torch.long))
    _, out = standardise(train, other)
    std = torch.tensor([0.0, 0, 0, 0, 2, 2, 2, 2]).std()
    assert torch.allclose(out.x, (3.0 - 1.0) / std)


@pytest.mark.parametrize("gz", [True, False])
def test_read_idx_reads_what_was_written(tmp_path, gz):
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    path = tmp_path / ("a.idx.gz" if gz else "a.idx")
    write_idx(path, array)
    assert np.array_equal(read_idx(path), array)


def test_read_idx_rejects_a_file_that_is_not_idx_or_is_cut(tmp_path):
    (tmp_path / "bad").write_bytes(b"PK\x03\x04rest")
    with pytest.raises(ValueError, match="not an idx file"):
        read_idx(tmp_path / "bad")
    write_idx(tmp_path / "cut", np.zeros((3, 2, 2)))
    (tmp_path / "cut").write_bytes((tmp_path / "cut").read_bytes()[:-1])
    with pytest.raises(ValueError, match=r"shape \(3, 2, 2\).*11 data bytes"):
        read_idx(tmp_path / "cut")


@pytest.mark.parametrize("gz", [True, False])
def test_fashion_mnist_reads_idx_files_from_data_dir(tmp_path, gz):
    write_fashion_mnist(tmp_path / "fashion-mnist", gz=gz)
    train, test = fashion_mnist(tmp_path)
    assert train.x.shape == (6, 1, 28, 28) and test.x.shape == (4, 1, 28, 28)
    assert sorted(train.y.tolist()) == [0, 1, 2, 3, 4, 5] and sorted(test.y.tolist()) == [0, 1, 2, 3]
    for split in (train, test):  # shuffled together: each image still carries its own label
        assert torch.allclose(split.x * 255, (20 * split.y).float().view(-1, 1, 1, 1).expand_as(split.x), atol=1e-4)


def test_missing_fashion_mnist_says_where_it_looked_and_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST", tmp_path / "not-installed")
    with pytest.raises(FileNotFoundError) as e:
        fashion_mnist(tmp_path)
    message = str(e.value)
    assert "train-images-idx3-ubyte[.gz]" in message and str(tmp_path / "not-installed") in message
    assert "dataset-fashion-mnist" in message and "--download" in message


# --- CIFAR-10 and CIFAR-100 in torchvision's format ----------------------------------------------------


def _cifar_entry(name, labels, key):
    """A pickled batch as in the official archives: ``data`` rows of 3072 uint8 (1024 red, 1024 green, 1024
    blue, row-major). Red is the label, green the row, blue the column."""
    rows, cols = np.meshgrid(np.arange(32), np.arange(32), indexing="ij")
    planes = [np.stack([np.full((32, 32), y), rows, cols]) for y in labels]
    return {"data": np.stack(planes).reshape(len(labels), 3072).astype(np.uint8), key: labels,
            "filenames": [f"{name}_{i}.png" for i in range(len(labels))], "batch_label": name}


def write_cifar(root, dataset, n_train=5, n_test=3, protocol=pickle.DEFAULT_PROTOCOL):
    """Tiny files in torchvision's layout: ``cifar-100-python/{train,test,meta}`` or
    ``cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}`` (n_train images per batch for CIFAR-10),
    pickled with ``protocol``."""
    if dataset == "cifar100":
        folder = root / "cifar-100-python"
        folder.mkdir(parents=True)
        for name, n in (("train", n_train), ("test", n_test)):
            labels = [(7 * i) % 100 for i in range(n)]
            entry = {**_cifar_entry(name, labels, "fine_labels"), "coarse_labels": [y // 5 for y in labels]}
            (folder / name).write_bytes(pickle.dumps(entry, protocol))
        meta = {"fine_label_names": [f"class{i}" for i in range(100)], "coarse_label_names": [f"super{i}" for i in range(20)]}
        (folder / "meta").write_bytes(pickle.dumps(meta, protocol))
        return folder
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for b in range(1, 6):
        labels = [(3 * i + b) % 10 for i in range(n_train)]
        (folder / f"data_batch_{b}").write_bytes(pickle.dumps(_cifar_entry(f"batch{b}", labels, "labels"), protocol))
    labels = [(3 * i) % 10 for i in range(n_test)]
    (folder / "test_batch").write_bytes(pickle.dumps(_cifar_entry("test", labels, "labels"), protocol))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": [f"class{i}" for i in range(10)]}, protocol))
    return folder


@pytest.mark.parametrize("dataset, n_train, train_labels", [
    ("cifar100", 5, [0, 7, 14, 21, 28]),
    ("cifar10", 5 * 2, sorted((3 * i + b) % 10 for b in range(1, 6) for i in range(2))),
])
@pytest.mark.parametrize("protocol", [4, 5])  # numpy arrays pickle differently in each
def test_cifar_loads_torchvisions_format_channels_first(tmp_path, dataset, n_train, train_labels, protocol):
    write_cifar(tmp_path, dataset, n_train=2 if dataset == "cifar10" else 5, protocol=protocol)
    train, test = data.cifar(dataset, tmp_path, verify_md5=False)
    assert train.x.shape == (n_train, 3, 32, 32) and test.x.shape == (3, 3, 32, 32)
    assert sorted(train.y.tolist()) == train_labels
    for split in (train, test):
        pixels = (split.x * 255).round().long()
        assert torch.equal(pixels[:, 0], split.y.view(-1, 1, 1).expand(-1, 32, 32))
        assert torch.equal(pixels[0, 1], torch.arange(32).view(32, 1).expand(32, 32))  # green = row
        assert torch.equal(pixels[0, 2], torch.arange(32).view(1, 32).expand(32, 32))  # blue = column


def official_md5s(monkeypatch, reader, folder):
    """Make the files in ``folder`` the official ones: torchvision's md5 list patched to their sums."""
    md5 = {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in folder.iterdir()}
    monkeypatch.setattr(reader, "train_list", [[n, md5[n]] for n, _ in reader.train_list])
    monkeypatch.setattr(reader, "test_list", [[n, md5[n]] for n, _ in reader.test_list])
    monkeypatch.setattr(reader, "meta", {**reader.meta, "md5": md5[reader.meta["filename"]]})


class _Payload:
    """Unpickling this runs ``open(marker, "w")``: what a crafted data file would do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


@pytest.mark.parametrize("dataset", ["cifar10", "cifar100"])
def test_cifar_files_whose_md5_differs_from_the_official_are_refused_before_they_are_read(tmp_path, dataset,
                                                                                          monkeypatch):
    """Any file count: a wrong md5 is an error naming the file, raised before anything is unpickled (a
    payload in the file does not run); the files with the official md5 (patched here) load."""
    folder = write_cifar(tmp_path, dataset)
    reader = data.CIFAR_READERS[dataset]
    official_md5s(monkeypatch, reader, folder)
    train, _ = data.cifar(dataset, tmp_path)
    assert len(train) == (25 if dataset == "cifar10" else 5)
    first = folder / reader.train_list[0][0]
    marker = tmp_path / "payload-ran"
    entry = pickle.loads(first.read_bytes())
    first.write_bytes(pickle.dumps({**entry, "extra": _Payload(marker)}))
    with pytest.raises(data.UntrustedData, match=rf"{first}: md5 differs from the official .*not read.*--no-md5-check"):
        data.cifar(dataset, tmp_path)
    assert not marker.exists()
    entry["data"][0, 0] ^= 1  # one pixel changed, same image count
    first.write_bytes(pickle.dumps(entry))
    with pytest.raises(data.UntrustedData, match="md5 differs"):
        data.cifar(dataset, tmp_path)
    with pytest.raises(data.UntrustedData, match="md5 differs"):
        load_data(dataset, data_dir=tmp_path)


@pytest.mark.parametrize("dataset", ["cifar10", "cifar100"])
@pytest.mark.parametrize("verify_md5", [True, False])
def test_a_crafted_cifar_batch_never_runs_its_payload(tmp_path, dataset, verify_md5, monkeypatch):
    """A batch whose pickle calls a function, even with an md5 that matches (a patched list stands for a
    list that someone fooled) or with the md5 check off: refused by the unpickler, naming the file."""
    folder = write_cifar(tmp_path, dataset)
    reader = data.CIFAR_READERS[dataset]
    first = folder / reader.train_list[0][0]
    marker = tmp_path / "payload-ran"
    entry = pickle.loads(first.read_bytes())
    first.write_bytes(pickle.dumps({**entry, "extra": _Payload(marker)}))
    official_md5s(monkeypatch, reader, folder)
    with pytest.raises(data.UntrustedData, match=rf"{first}: not a CIFAR batch, refused: it asks for io.open, which a CIFAR file never holds"):
        data.cifar(dataset, tmp_path, verify_md5=verify_md5)
    assert not marker.exists()


def test_the_unpickler_admits_numpys_array_reconstruction_under_the_names_numpy_1_and_2_write():
    """The official files, pickled under numpy 1, name ``numpy.core.multiarray._reconstruct``."""
    unpickler = data._CifarUnpickler(io.BytesIO(b""))
    reconstruct = unpickler.find_class("numpy._core.multiarray", "_reconstruct")
    assert unpickler.find_class("numpy.core.multiarray", "_reconstruct") is reconstruct
    assert isinstance(reconstruct(np.ndarray, (0,), b"b"), np.ndarray)
    assert unpickler.find_class("numpy", "dtype") is np.dtype
    for module, name in (("numpy", "load"), ("builtins", "eval"), ("os", "system"), ("numpy.core.multiarray", "eval")):
        with pytest.raises(pickle.UnpicklingError, match=f"asks for {module}.{name}"):
            unpickler.find_class(module, name)


@pytest.mark.parametrize("bad, message", [
    ({"data": [1, 2, 3], "labels": []}, r"'data' is an \(N, 3072\) uint8 array"),
    ({"data": np.zeros((2, 3072), np.float32), "labels": [0, 1]}, "uint8"),
    ({"data": np.zeros((2, 3072), np.uint8), "labels": [0]}, r"a list of 2 labels in \[0, 10\)"),
    ({"data": np.zeros((2, 3072), np.uint8), "labels": [0, 10]}, r"labels in \[0, 10\)"),
    ([1, 2], "'data' is an"),
])
def test_a_cifar_batch_that_holds_other_data_is_an_error_naming_the_file(tmp_path, bad, message):
    folder = write_cifar(tmp_path, "cifar10")
    (folder / "data_batch_3").write_bytes(pickle.dumps(bad))
    with pytest.raises(data.UntrustedData, match=rf"{folder / 'data_batch_3'}: not a CIFAR batch.*{message}"):
        data.cifar("cifar10", tmp_path, verify_md5=False)
    (folder / "data_batch_3").write_bytes(b"\x80\x04truncated")
    with pytest.raises(data.UntrustedData, match=rf"{folder / 'data_batch_3'}: not a CIFAR batch, refused"):
        data.cifar("cifar10", tmp_path, verify_md5=False)


@pytest.mark.parametrize("dataset, url, first", [
    ("cifar100", "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz", "cifar-100-python/train"),
    ("cifar10", "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", "cifar-10-batches-py/data_batch_1"),
])
def test_missing_cifar_says_what_to_download_and_where(tmp_path, dataset, url, first):
    with pytest.raises(FileNotFoundError) as e:
        load_data(dataset, data_dir=tmp_path)
    message = str(e.value)
    assert url in message and str(tmp_path / first) in message and "--download" in message


def test_cifar10_through_load_data_is_standardised_with_a_distorted_test_set(tmp_path):
    write_cifar(tmp_path, "cifar10", n_train=4, n_test=6)
    d = load_data("cifar10", data_dir=tmp_path, distorted=True, verify_md5=False)
    assert (d.name, d.classes, d.in_channels, d.image_size) == ("cifar10", 10, 3, 32)
    assert len(d.train) == 20 and len(d.test) == 6
    assert torch.allclose(d.train.x.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5)
    assert torch.equal(d.distorted.x[:3], d.train.x[:3]) and torch.equal(d.distorted.x[3:], d.test.x[:3])
    assert torch.equal(d.distorted.y, torch.cat([d.train.y[:3], d.test.y[:3]]))


def test_label_noise_moves_the_given_fraction_to_other_classes_and_keeps_test_clean():
    clean = load_data("digits")
    noisy = load_data("digits", label_noise=0.4, distorted=True)
    changed = noisy.train.y != clean.train.y
    assert changed.sum().item() == round(0.4 * 1297)
    assert torch.equal(noisy.train.x, clean.train.x) and torch.equal(noisy.test.y, clean.test.y)
    assert noisy.train.y.min() >= 0 and noisy.train.y.max() <= 9
    assert torch.equal(noisy.distorted.y[:250], noisy.train.y[:250])  # trained-on labels
    with pytest.raises(ValueError, match=r"label noise must be a fraction in \[0, 1\); got 1.5"):
        load_data("digits", label_noise=1.5)


@pytest.mark.skipif(not (data.DEBIAN_FASHION_MNIST / "t10k-labels-idx1-ubyte.gz").exists(),
                    reason="Debian's dataset-fashion-mnist is not installed")
def test_the_installed_fashion_mnist_loads_as_the_standard_splits():
    d = load_data("fashion-mnist", data_dir=None)
    assert d.train.x.shape == (2000, 1, 28, 28) and d.test.x.shape == (2000, 1, 28, 28)
    assert set(d.test.y.tolist()) == set(range(10))
