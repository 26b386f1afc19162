"""Tests of nnphys.data: MNIST-1D generated locally, IDX and CIFAR-10 readers on small files written
here in the official formats, the stratified validation split, and errors naming missing paths."""

from __future__ import annotations

import gzip
import pickle
import random
import socket
import struct

import numpy as np
import pytest
import torch

from nnphys.data import (
    load_cifar10,
    load_digits,
    load_fashion_mnist,
    load_idx,
    load_mnist1d,
    read_idx,
    train_val_split,
)
from nnphys.errors import ConfigError

# ------------------------------------------------------------------------------------------------
# MNIST-1D
# ------------------------------------------------------------------------------------------------


def test_mnist1d_shapes_determinism_and_no_global_rng(monkeypatch):
    def no_network(*a, **k):
        raise AssertionError("MNIST-1D must be generated locally, not downloaded")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    np.random.seed(123)
    random.seed(123)
    want_np, want_py = np.random.rand(), random.random()
    np.random.seed(123)
    random.seed(123)
    d = load_mnist1d(95, 33, seed=5)  # 128 rows, rounded up to 130 by the generator
    assert (np.random.rand(), random.random()) == (want_np, want_py)  # caller's RNG untouched
    assert d.x_train.shape == (95, 40) and d.x_test.shape == (33, 40)
    assert d.x_train.dtype == torch.float32 and d.y_train.dtype == torch.int64
    assert int(d.y_train.min()) >= 0 and int(d.y_train.max()) <= 9 and d.n_classes == 10
    d2 = load_mnist1d(95, 33, seed=5)
    assert torch.equal(d.x_train, d2.x_train) and torch.equal(d.y_test, d2.y_test)
    d3 = load_mnist1d(95, 33, seed=6)
    assert not torch.equal(d.x_train, d3.x_train)
    # train and test rows are disjoint draws (no row shared)
    assert not (d.x_test[:, None, :] == d.x_train[None, :, :]).all(-1).any()


def test_mnist1d_matches_package_generator():
    """Our loader is the package's generator (same args -> same rows); at the defaults
    (4000/1000, seed 42) it is the package's default data set. Checked at 150/50 for speed."""
    from mnist1d.data import get_dataset_args, make_dataset

    st = np.random.get_state()
    args = get_dataset_args()
    args.num_samples, args.train_split = 200, 0.75
    ref = make_dataset(args)
    np.random.set_state(st)
    d = load_mnist1d(150, 50, seed=42)
    assert np.array_equal(d.x_train.numpy(), ref["x"].astype(np.float32))
    assert np.array_equal(d.y_test.numpy(), ref["y_test"])


def test_mnist1d_bad_sizes():
    with pytest.raises(ConfigError):
        load_mnist1d(0, 10)


def test_digits_still_works():
    d = load_digits(n_test=297, seed=0)
    assert d.x_train.shape == (1500, 64) and d.x_test.shape == (297, 64)


# ------------------------------------------------------------------------------------------------
# IDX (MNIST / Fashion-MNIST layout)
# ------------------------------------------------------------------------------------------------


def _write_idx(path, arr: np.ndarray, gz: bool = False) -> None:
    code = {np.uint8: 0x08, np.int32: 0x0C}[arr.dtype.type]
    head = bytes([0, 0, code, arr.ndim]) + b"".join(struct.pack(">I", s) for s in arr.shape)
    body = arr.astype(arr.dtype.newbyteorder(">")).tobytes()
    opener = gzip.open if gz else open
    with opener(path, "wb") as f:
        f.write(head + body)


def test_read_idx_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, size=(5, 4, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, size=5).astype(np.uint8)
    _write_idx(tmp_path / "i", imgs)
    _write_idx(tmp_path / "l.gz", labels, gz=True)
    assert np.array_equal(read_idx(tmp_path / "i"), imgs)
    x, y = load_idx(tmp_path / "i", tmp_path / "l.gz")
    assert x.shape == (5, 12) and x.dtype == torch.float32
    assert torch.allclose(x, torch.from_numpy(imgs.reshape(5, 12).astype(np.float32) / 255))
    assert torch.equal(y, torch.from_numpy(labels.astype(np.int64)))
    ints = rng.integers(-5, 5, size=(2, 3)).astype(np.int32)  # a big-endian int32 file
    _write_idx(tmp_path / "ints", ints)
    assert np.array_equal(read_idx(tmp_path / "ints"), ints)


def test_idx_errors_name_the_path(tmp_path):
    with pytest.raises(ConfigError, match="nope"):
        read_idx(tmp_path / "nope")
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ConfigError, match="magic"):
        read_idx(tmp_path / "bad")
    _write_idx(tmp_path / "short", np.zeros((3, 2, 2), np.uint8))
    raw = (tmp_path / "short").read_bytes()
    (tmp_path / "short").write_bytes(raw[:-1])
    with pytest.raises(ConfigError, match="size mismatch"):
        read_idx(tmp_path / "short")
    _write_idx(tmp_path / "im", np.zeros((3, 2, 2), np.uint8))
    _write_idx(tmp_path / "lb", np.zeros(4, np.uint8))
    with pytest.raises(ConfigError):
        load_idx(tmp_path / "im", tmp_path / "lb")


def test_load_fashion_mnist_from_idx_files(tmp_path):
    rng = np.random.default_rng(1)
    tr = rng.integers(0, 256, size=(12, 28, 28), dtype=np.uint8)
    te = rng.integers(0, 256, size=(4, 28, 28), dtype=np.uint8)
    _write_idx(tmp_path / "train-images-idx3-ubyte.gz", tr, gz=True)
    _write_idx(tmp_path / "train-labels-idx1-ubyte.gz", rng.integers(0, 10, 12).astype(np.uint8), gz=True)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte", te)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte", rng.integers(0, 10, 4).astype(np.uint8))
    d = load_fashion_mnist(tmp_path)
    assert d.x_train.shape == (12, 784) and d.x_test.shape == (4, 784)
    mu, sd = tr.mean() / 255, (tr / 255).std(ddof=1)
    expect = (te.reshape(4, -1) / 255 - mu) / (sd + 1e-8)
    np.testing.assert_allclose(d.x_test.numpy(), expect, rtol=1e-4, atol=1e-4)
    with pytest.raises(ConfigError, match="t10k-images"):
        (tmp_path / "t10k-images-idx3-ubyte").unlink()
        load_fashion_mnist(tmp_path)
    with pytest.raises(ConfigError, match="missing_dir"):
        load_fashion_mnist(tmp_path / "missing_dir")


# ------------------------------------------------------------------------------------------------
# CIFAR-10 python batches
# ------------------------------------------------------------------------------------------------


def _write_cifar(root, n_per=3, seed=0):
    rng = np.random.default_rng(seed)
    d = root / "cifar-10-batches-py"
    d.mkdir()
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, size=(n_per, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, n_per).tolist()
        with open(d / name, "wb") as f:
            pickle.dump({b"data": data, b"labels": labels, b"batch_label": name.encode()}, f)
        batches[name] = (data, labels)
    return batches


def test_load_cifar10_layout_and_standardisation(tmp_path):
    b = _write_cifar(tmp_path)
    d = load_cifar10(tmp_path)
    assert d.x_train.shape == (15, 3, 32, 32) and d.x_test.shape == (3, 3, 32, 32)
    tr = np.concatenate([b[f"data_batch_{i}"][0] for i in range(1, 6)]).reshape(-1, 3, 32, 32) / 255.0
    mu = tr.mean(axis=(0, 2, 3), keepdims=True)
    sd = tr.std(axis=(0, 2, 3), ddof=1, keepdims=True)
    te = b["test_batch"][0].reshape(-1, 3, 32, 32) / 255.0
    np.testing.assert_allclose(d.x_test.numpy(), (te - mu) / (sd + 1e-8), rtol=1e-4, atol=1e-4)
    # channel-major rows: byte c*1024 + h*32 + w is pixel (c, h, w)
    raw = b["data_batch_1"][0][0]
    c, h, w = 2, 5, 7
    assert d.x_train[0, c, h, w].item() == pytest.approx((raw[c * 1024 + h * 32 + w] / 255 - mu[0, c, 0, 0]) / (sd[0, c, 0, 0] + 1e-8), abs=1e-4)
    assert d.y_train.tolist() == sum((b[f"data_batch_{i}"][1] for i in range(1, 6)), [])
    assert torch.allclose(d.x_train.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5)


def test_load_cifar10_missing_file_named(tmp_path):
    _write_cifar(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(ConfigError, match="data_batch_3"):
        load_cifar10(tmp_path)
    with pytest.raises(ConfigError, match="nowhere"):
        load_cifar10(tmp_path / "nowhere")


# ------------------------------------------------------------------------------------------------
# stratified validation split
# ------------------------------------------------------------------------------------------------


def test_train_val_split_stratified_and_disjoint():
    y = torch.tensor([0] * 50 + [1] * 30 + [2] * 20)
    x = torch.arange(100, dtype=torch.float32)[:, None]
    xtr, ytr, xva, yva = train_val_split(x, y, 20, seed=3)
    assert len(xva) == 20 and len(xtr) == 80
    assert torch.bincount(yva).tolist() == [10, 6, 4]
    rows = torch.cat([xtr, xva])[:, 0].long().sort().values
    assert torch.equal(rows, torch.arange(100))
    assert torch.equal(y[xva[:, 0].long()], yva)  # labels travel with their rows
    again = train_val_split(x, y, 20, seed=3)
    assert torch.equal(again[2], xva)
    with pytest.raises(ConfigError):
        train_val_split(x, y, 100)


def test_load_task_digits_sizes_keep_and_errors():
    from nnphys.data import load_task

    p = {"task": "digits", "data_seed": 0, "n_val": 297, "n_test": 300}
    d = load_task(p)
    assert (len(d["x_train"]), len(d["x_val"]), len(d["x_test"])) == (1200, 297, 300)
    assert d["kind"] == "classification" and d["d_out"] == 10 and d["x_train"].dtype == torch.float32
    small = load_task({**p, "n_train_keep": 100})
    assert torch.equal(small["x_train"], d["x_train"][:100]) and torch.equal(small["x_test"], d["x_test"])
    with pytest.raises(ConfigError):
        load_task({**p, "n_train_keep": 5000})
    with pytest.raises(ConfigError):
        load_task({"task": "nope", "data_seed": 0})
