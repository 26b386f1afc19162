"""Real data sets: shipped by packages (scikit-learn digits, the MNIST-1D generator) or read
from local files in standard formats. Nothing is downloaded at run time.

Every loader returns a :class:`Dataset` of float32 inputs ``(n, ...)`` and int64 labels
``(n,)``, split deterministically from ``seed`` (or the files' own train/test split).

- :func:`load_digits`: scikit-learn's 8x8 digits, ``(n, 64)``;
- :func:`load_mnist1d`: MNIST-1D generated locally by the ``mnist1d`` package, ``(n, 40)``;
- :func:`load_idx` / :func:`load_fashion_mnist`: IDX files (MNIST / Fashion-MNIST layout), ``(n, 784)``;
- :func:`load_cifar10`: the CIFAR-10 "python version" batch files, ``(n, 3, 32, 32)``;
- :func:`train_val_split`: carve a validation set out of a training set (stratified);
- :func:`load_task`: a training task's train/val/test tensors from a JSON-able description.

Missing files raise :class:`~nnphys.errors.ConfigError` naming the path.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import json
import pickle
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nnphys.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Dataset:
    """A train/test split. ``x_*``: ``(n, d)`` (images: ``(n, C, H, W)``) float32; ``y_*``: ``(n,)``
    int64 class labels in ``0..n_classes-1``."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    n_classes: int

    @property
    def n_features(self) -> int:
        return int(self.x_train[0].numel())


def _split(name, x: np.ndarray, y: np.ndarray, n_test: int, seed: int, n_classes: int) -> Dataset:
    if not 0 < n_test < len(x):
        raise ConfigError("n_test", f"must lie in [1, {len(x) - 1}] (got {n_test})")
    perm = np.random.default_rng(seed).permutation(len(x))
    te, tr = perm[:n_test], perm[n_test:]
    mu, sd = x[tr].mean(0), x[tr].std(0) + 1e-8  # statistics of the training part only
    x = ((x - mu) / sd).astype(np.float32)
    t = lambda a, dt: torch.from_numpy(np.ascontiguousarray(a)).to(dt)  # noqa: E731
    return Dataset(name, t(x[tr], torch.float32), t(y[tr], torch.int64),
                   t(x[te], torch.float32), t(y[te], torch.int64), n_classes)


def load_digits(n_test: int = 297, seed: int = 0) -> Dataset:
    """scikit-learn's 8x8 digits (1797 images, 64 features, 10 classes), standardised with
    training-set statistics. Needs the ``data`` extra (scikit-learn)."""
    try:
        from sklearn.datasets import load_digits as _ld
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ConfigError("data", "scikit-learn is needed: pip install 'nnphys[data]'") from e
    d = _ld()
    return _split("digits", d.data.astype(np.float64), d.target.astype(np.int64), n_test, seed, 10)


# ------------------------------------------------------------------------------------------------
# MNIST-1D (generated locally; Greydanus 2020, the ``mnist1d`` package)
# ------------------------------------------------------------------------------------------------


def load_mnist1d(n_train: int = 4000, n_test: int = 1000, seed: int = 42) -> Dataset:
    """MNIST-1D generated locally from ``seed`` by ``mnist1d.data.make_dataset``: 10 classes,
    inputs ``(n, 40)`` float32 (the generator's own centring/scaling), labels ``(n,)`` int64.

    ``n_train + n_test`` samples are generated (rounded up to a multiple of 10, the generator
    makes equal counts per class) and split as the package does (first part train). The defaults
    (4000/1000, seed 42) are the package's default data set. Only the generator is called, never
    the package's download helper; it uses numpy's and ``random``'s global RNGs, so their states
    are saved and restored around the call (the caller's global RNG is left untouched).
    Needs the ``data`` extra (``mnist1d``).
    """
    for name, v in (("n_train", n_train), ("n_test", n_test)):
        if not isinstance(v, int) or v < 1:
            raise ConfigError(name, f"must be an integer >= 1 (got {v!r})")
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ConfigError("data", "the mnist1d package is needed: pip install 'nnphys[data]'") from e
    total = n_train + n_test
    num = -(-total // 10) * 10
    args = get_dataset_args()
    args.num_samples = num
    args.train_split = n_train / num
    args.seed = int(seed)
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        d = make_dataset(args)
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    x = np.concatenate([d["x"], d["x_test"]]).astype(np.float32)
    y = np.concatenate([d["y"], d["y_test"]]).astype(np.int64)
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a))  # noqa: E731
    return Dataset("mnist1d", t(x[:n_train]), t(y[:n_train]), t(x[num - n_test:]), t(y[num - n_test:]), 10)


# ------------------------------------------------------------------------------------------------
# local files: IDX (MNIST / Fashion-MNIST) and CIFAR-10 python batches
# ------------------------------------------------------------------------------------------------

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _existing(path: str | Path, field: str = "path") -> Path:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(field, f"file not found: {p}")
    return p


def _read_bytes(p: Path) -> bytes:
    opener = gzip.open if p.suffix == ".gz" else open
    with opener(p, "rb") as f:
        return f.read()


def read_idx(path: str | Path) -> np.ndarray:
    """One IDX file (plain or ``.gz``) as a numpy array of its stored shape and type.

    Format: 2 zero bytes, a type byte (0x08 = uint8, ...), the number of dimensions, then each
    dimension as a big-endian uint32, then the data in C order.
    """
    p = _existing(path)
    raw = _read_bytes(p)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ConfigError("path", f"not an IDX file (bad magic number): {p}")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ConfigError("path", f"truncated IDX header: {p}")
    shape = tuple(int(v) for v in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    dt = np.dtype(_IDX_DTYPES[raw[2]])
    count = int(np.prod(shape)) if shape else 1
    if len(raw) - header != count * dt.itemsize:
        raise ConfigError("path", f"IDX size mismatch: header says {shape}, file has {len(raw) - header} data bytes: {p}")
    return np.frombuffer(raw, dt, count=count, offset=header).reshape(shape).copy()


def load_idx(images_path: str | Path, labels_path: str | Path) -> tuple[torch.Tensor, torch.Tensor]:
    """An IDX image file ``(n, rows, cols)`` and its label file ``(n,)`` as tensors.

    Returns ``x``: ``(n, rows * cols)`` float32 in ``[0, 1]`` (pixel / 255) and ``y``: ``(n,)`` int64.
    """
    imgs = read_idx(images_path)
    labels = read_idx(labels_path)
    if imgs.ndim != 3 or labels.ndim != 1 or len(imgs) != len(labels):
        raise ConfigError("path", f"expected images (n, rows, cols) and labels (n,); got {imgs.shape} "
                                  f"and {labels.shape} ({images_path}, {labels_path})")
    x = torch.from_numpy(imgs.reshape(len(imgs), -1).astype(np.float32) / 255.0)
    return x, torch.from_numpy(labels.astype(np.int64))


def _find(root: Path, names: tuple[str, ...]) -> Path:
    for n in names:
        for cand in (root / n, root / (n + ".gz")):
            if cand.is_file():
                return cand
    raise ConfigError("data_root", f"file not found: {root / names[0]} (or .gz, or {', '.join(names[1:])})")


def _standardise(x_tr: torch.Tensor, x_te: torch.Tensor, dims: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    mu = x_tr.mean(dim=dims, keepdim=True)
    sd = x_tr.std(dim=dims, keepdim=True) + 1e-8
    return (x_tr - mu) / sd, (x_te - mu) / sd


def _fashion_mnist_files(root: str | Path) -> tuple[Path, Path, Path, Path]:
    """The four IDX files of Fashion-MNIST in ``root`` (train images, labels, test images, labels);
    ConfigError naming ``data_root`` when the folder or a file is missing. Reads nothing."""
    r = Path(root)
    if not r.is_dir():
        raise ConfigError("data_root", f"directory not found: {r}")
    return (_find(r, ("train-images-idx3-ubyte", "train-images.idx3-ubyte")),
            _find(r, ("train-labels-idx1-ubyte", "train-labels.idx1-ubyte")),
            _find(r, ("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte")),
            _find(r, ("t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte")))


def _cifar10_files(root: str | Path) -> list[Path]:
    """``data_batch_1`` .. ``data_batch_5`` and ``test_batch`` in ``root`` (or its
    ``cifar-10-batches-py``); ConfigError naming ``data_root`` when missing. Reads nothing."""
    r = Path(root)
    if (r / "cifar-10-batches-py").is_dir():
        r = r / "cifar-10-batches-py"
    if not r.is_dir():
        raise ConfigError("data_root", f"directory not found: {r}")
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    return [_existing(r / n, "data_root") for n in names]


def load_fashion_mnist(root: str | Path) -> Dataset:
    """Fashion-MNIST (or MNIST) from its standard IDX files in ``root``: ``train-images-idx3-ubyte``,
    ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte`` (each may be
    ``.gz``). Inputs ``(n, 784)`` standardised by the training set's pixel mean and std (scalars)."""
    tr_img, tr_lab, te_img, te_lab = _fashion_mnist_files(root)
    xtr, ytr = load_idx(tr_img, tr_lab)
    xte, yte = load_idx(te_img, te_lab)
    xtr, xte = _standardise(xtr, xte, (0, 1))
    return Dataset("fashion_mnist", xtr.contiguous(), ytr, xte.contiguous(), yte, 10)


def _cifar_batch(p: Path) -> tuple[np.ndarray, np.ndarray]:
    with open(p, "rb") as f:
        # the official files are Python pickles; read only from a path the user gave
        d = pickle.load(f, encoding="bytes")
    data = d.get(b"data", d.get("data"))
    labels = d.get(b"labels", d.get("labels"))
    if data is None or labels is None:
        raise ConfigError("data_root", f"not a CIFAR-10 batch file (no data/labels): {p}")
    data = np.asarray(data, dtype=np.uint8)
    if data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise ConfigError("data_root", f"CIFAR-10 batch with unexpected shape {data.shape}: {p}")
    return data, np.asarray(labels, dtype=np.int64)


def load_cifar10(root: str | Path) -> Dataset:
    """CIFAR-10 from its "python version" batch files: ``data_batch_1`` .. ``data_batch_5`` and
    ``test_batch`` in ``root`` or ``root/cifar-10-batches-py``. Inputs ``(n, 3, 32, 32)`` float32
    standardised per channel with training-set statistics; labels ``(n,)`` int64."""
    *train_files, test_file = _cifar10_files(root)
    tr = [_cifar_batch(p) for p in train_files]
    te = _cifar_batch(test_file)
    to_x = lambda a: torch.from_numpy(a.reshape(-1, 3, 32, 32).astype(np.float32) / 255.0)  # noqa: E731
    xtr = to_x(np.concatenate([a for a, _ in tr]))
    ytr = torch.from_numpy(np.concatenate([b for _, b in tr]))
    xte, yte = to_x(te[0]), torch.from_numpy(te[1])
    xtr, xte = _standardise(xtr, xte, (0, 2, 3))
    return Dataset("cifar10", xtr.contiguous(), ytr, xte.contiguous(), yte, 10)


# ------------------------------------------------------------------------------------------------
# validation split
# ------------------------------------------------------------------------------------------------


def train_val_split(
    x: torch.Tensor, y: torch.Tensor, n_val: int, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Split ``(x, y)`` into train and validation parts, stratified by class, from ``seed``.

    Each class gives ``round(n_val * n_c / n)`` validation rows (adjusted so the total is
    exactly ``n_val``). Returns ``(x_train, y_train, x_val, y_val)``; row order is permuted.
    """
    n = len(y)
    if not isinstance(n_val, int) or not 0 <= n_val < n:
        raise ConfigError("n_val", f"must be an integer in [0, {n - 1}] (got {n_val!r})")
    rng = np.random.default_rng(seed)
    yn = y.detach().cpu().numpy()
    classes, counts = np.unique(yn, return_counts=True)
    want = np.floor(n_val * counts / n).astype(int)
    rest = n_val - int(want.sum())
    frac = n_val * counts / n - want
    for i in np.argsort(-frac, kind="stable")[:rest]:
        want[i] += 1
    val_idx, tr_idx = [], []
    for c, k in zip(classes, want):
        idx = rng.permutation(np.flatnonzero(yn == c))
        val_idx.append(idx[:k])
        tr_idx.append(idx[k:])
    vi = rng.permutation(np.concatenate(val_idx)) if val_idx else np.zeros(0, int)
    ti = rng.permutation(np.concatenate(tr_idx)) if tr_idx else np.zeros(0, int)
    vi_t, ti_t = torch.from_numpy(vi).to(x.device), torch.from_numpy(ti).to(x.device)
    return x[ti_t], y[ti_t], x[vi_t], y[vi_t]


# ------------------------------------------------------------------------------------------------
# training tasks (train / validation / test tensors from one JSON-able description)
# ------------------------------------------------------------------------------------------------

TASKS = ("digits", "mnist1d", "depth_locality", "fashion_mnist", "cifar10")


@functools.lru_cache(maxsize=4)
def _load_task_cpu(key: str) -> dict[str, Any]:
    p = json.loads(key)
    task = p["task"]
    if task == "digits":
        ds = load_digits(n_test=p["n_test"], seed=p["data_seed"])
        xtr, ytr, xva, yva = train_val_split(ds.x_train, ds.y_train, p["n_val"], seed=p["data_seed"])
        xte, yte, kind, d_out = ds.x_test, ds.y_test, "classification", 10
    elif task == "mnist1d":
        ds = load_mnist1d(p["n_train"] + p["n_val"], p["n_test"], seed=42 + p["data_seed"])
        xtr, ytr, xva, yva = train_val_split(ds.x_train, ds.y_train, p["n_val"], seed=p["data_seed"])
        xte, yte, kind, d_out = ds.x_test, ds.y_test, "classification", 10
    elif task == "depth_locality":
        from nnphys.targets import make_dataset

        t = make_dataset(p["n_train"], p["n_test"], p["d"], p["k"], target=p["target"], law=p["law"],
                         variant="regression", seed=p["data_seed"], n_val=p["n_val"], dtype=torch.float32)
        xtr, ytr, xva, yva, xte, yte = t.x_train, t.y_train, t.x_val, t.y_val, t.x_test, t.y_test
        kind, d_out = "regression", 1
    elif task in ("fashion_mnist", "cifar10"):
        root = Path(p["root"])
        ds = load_fashion_mnist(root / "fashion_mnist") if task == "fashion_mnist" else load_cifar10(root / "cifar10")
        xtr, ytr, xva, yva = train_val_split(ds.x_train, ds.y_train, p["n_val"], seed=p["data_seed"])
        xte, yte, kind, d_out = ds.x_test, ds.y_test, "classification", 10
    else:
        raise ConfigError("task", f"must be one of {', '.join(TASKS)} (got {task!r})")
    if p.get("n_train_keep") is not None:  # a smaller training set: the first rows of the (shuffled) split
        k = int(p["n_train_keep"])
        if not 1 <= k <= len(xtr):
            raise ConfigError("n_train", f"must lie in [1, {len(xtr)}] for {task} (got {k})")
        xtr, ytr = xtr[:k], ytr[:k]
    return {"x_train": xtr.float(), "y_train": ytr, "x_val": xva.float(), "y_val": yva,
            "x_test": xte.float(), "y_test": yte, "kind": kind, "d_out": d_out}


FILE_TASKS = ("fashion_mnist", "cifar10")  # tasks read from local files under a ``root``


def check_task(params: dict[str, Any]) -> None:
    """Whether the files a :func:`load_task` description needs exist, without reading them: a
    ConfigError naming ``data_root`` (or ``task``) otherwise. The lab calls it on every planned
    job before it opens the store, so a missing data set is refused before anything runs."""
    task = params.get("task")
    if task not in TASKS:
        raise ConfigError("task", f"must be one of {', '.join(TASKS)} (got {task!r})")
    if task in FILE_TASKS:
        if not params.get("root"):
            raise ConfigError("data_root", f"task {task} reads local files; set data_root to their folder")
        root = Path(params["root"])
        if task == "fashion_mnist":
            _fashion_mnist_files(root / "fashion_mnist")
        else:
            _cifar10_files(root / "cifar10")


def load_task(params: dict[str, Any], device: str = "cpu") -> dict[str, Any]:
    """Train/validation/test tensors of a training task, on ``device`` (cached per process).

    ``params``: ``task`` (one of :data:`TASKS`), ``data_seed`` and the task's sizes:
    digits ``n_val``, ``n_test``; mnist1d ``n_train``, ``n_val``, ``n_test`` (generator seed
    ``42 + data_seed``); depth_locality ``d``, ``k``, ``target``, ``law``, ``n_train``, ``n_val``,
    ``n_test`` (:func:`nnphys.targets.make_dataset`, regression); fashion_mnist / cifar10 ``root``
    (local files) and ``n_val``. Optional ``n_train_keep``: keep only that many training rows
    (validation and test unchanged). Returns ``x_train``, ``y_train``, ``x_val``, ``y_val``,
    ``x_test``, ``y_test`` (float32 inputs; int64 labels or float32 regression targets),
    ``kind`` (``classification`` / ``regression``) and ``d_out``.
    """
    d = _load_task_cpu(json.dumps(params, sort_keys=True))
    out = {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in d.items()}
    if out["kind"] == "regression":
        for k in ("y_train", "y_val", "y_test"):
            out[k] = out[k].float()
    return out
