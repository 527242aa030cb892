"""The digits CNN: one small classifier, trained here in PyTorch and in Keras, reproducibly.

Real trained weights for the paper's network experiments on any machine, offline: the same
architecture in both frameworks, trained on the ``digits`` train split (:mod:`harness.data.digits`)
from identical initial weights and the identical batch order, deterministic on the CPU (the same
call gives byte-identical checkpoints).  Everything they produce is labelled :data:`LABEL`:
real trained weights, not Inception V3 and not random smoke weights.

Architecture (:data:`ARCHITECTURE`), input N x 1 x 8 x 8 float32 in [0, 1] (``uint8 / 255`` of
the grey digit; the harness's RGB images have 3 equal channels, their mean is that grey):
conv 3x3 16 'same' + ReLU -> conv 3x3 32 'same' + ReLU -> maxpool 2 -> flatten in H, W, C order
-> dense 64 + ReLU (the penultimate features) -> dense 10 (logits, no softmax).

* :func:`build_torch` returns the ``nn.Module`` (a state dict from here loads into it); its
  ``forward`` takes N x 1 x 8 x 8 and returns logits; the features are the input of its last
  ``nn.Linear`` (``fc2``), also returned by its ``features`` method (exported in TorchScript).
* :func:`build_keras` returns the ``keras.Model``: N x 8 x 8 x 1 in [0, 1] -> logits; the
  features are the input of its last ``Dense`` (``fc2``), i.e. the output of ``fc1``.

Training (:func:`train`): the initial weights are drawn once in numpy, in PyTorch's layout
(He-uniform kernels, U(-sqrt(6/fan_in), sqrt(6/fan_in)), zero biases, from
``numpy.random.default_rng([seed, 0])``) and loaded into either framework with the kernel
transposes (conv OIHW -> HWIO, dense (out, in) -> (in, out)); the torch model permutes its
activations to N, H, W, C before flattening, so both flatten alike.  Batches: one
``numpy.random.default_rng([seed, 1])`` permutation of the training split per epoch, cut into
``batch_size`` batches in order (the last one smaller).  Loss: mean softmax cross-entropy.
Optimiser: SGD with momentum, the same update in both frameworks (constant learning rate lr,
momentum m, weight decay wd; float32):

* PyTorch ``torch.optim.SGD(lr, momentum=m, dampening=0, nesterov=False, weight_decay=wd)``:
  ``g = grad + wd p``; ``b = m b + g`` (``b = g`` at the first step); ``p = p - lr b``;
* Keras ``keras.optimizers.SGD(lr, momentum=m, nesterov=False)``: ``v = m v - lr g``
  (``v = 0`` before the first step); ``p = p + v``, with ``g = grad + wd p`` added by the
  training step here (Keras's own ``weight_decay`` is decoupled, ``p -= lr wd p``, another
  rule, so it is not used).  With ``v = -lr b`` both are the same recursion; they differ only
  in float32 rounding (measured in the tests).

Both train on the CPU with :data:`TRAIN_THREADS` thread (the results of both frameworks depend
on the thread count): PyTorch in the calling process (``torch.set_num_threads`` for the training,
restored after); Keras in a child process started with :data:`KERAS_CHILD_ENV` (TensorFlow fixes
its thread pools when it starts, so no setting in a running process could pin them; the child
also keeps TensorFlow and its GPU, hidden there, out of the caller).  The Keras run costs the
child's start (importing torch and TensorFlow, ~20 s on 2 busy cores) on top of its training.

Checkpoints (bytes identical on every run of the same configuration, whatever the process has
done before and wherever the checkout lies):

* torch: a state dict ``.pth`` (``torch.save`` to memory: the archive's records are named
  ``archive/``, not after a file) and a TorchScript ``.pt`` of the same model
  (``torch.jit.trace_module`` of ``forward`` and ``features`` in a fresh compilation unit, so its
  type names carry no process-wide ``___torch_mangle_<n>`` counter; rewritten without its
  ``*.debug_pkl`` source-location records, which hold absolute paths of the checkout and the
  virtualenv);
* keras: a ``.keras`` file (its zip rewritten with fixed 1980-01-01 timestamps, ``date_saved``
  fixed to :data:`KERAS_DATE` and the ``shared_object_id`` values, Python ``id()``s, numbered
  1, 2, ...; ``keras.models.load_model`` loads it) and a ``.weights.h5``.

:func:`trained_checkpoints` returns the default (or any) set of checkpoints, training what is
missing and reusing ``<cache.dir>/trained/digits_cnn/<key>/`` entries keyed by everything they
depend on (framework, seed, training config, architecture, this module's source, the data's
bytes and fingerprints, the framework versions); an entry's files are checked against their
recorded sha256 before use (a changed file: warned, moved to ``bad/``, retrained).  With
``cache_dir=NO_DISK_CACHE`` (``cache.enabled=false``) nothing under any cache directory is read
or written.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import os
import shutil
import tempfile
import time
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import HarnessError, ResourceUnavailable

LABEL = "digits classifier (trained here), not Inception V3"
ARCHITECTURE = (
    "input 1x8x8 in [0,1] -> conv3x3 16 same + ReLU -> conv3x3 32 same + ReLU -> maxpool 2 -> "
    "flatten (H, W, C order) -> dense 64 + ReLU (features) -> dense 10 (logits)"
)
#: bump with any change of the architecture, the initialisation or the training recipe
RECIPE_VERSION = 1
FRAMEWORKS = ("torch", "keras")
#: the training defaults (the experiment's schema takes them from here)
DEFAULT_TRAIN = {"epochs": 30, "batch_size": 32, "lr": 0.05, "momentum": 0.9, "weight_decay": 1e-4}
DEFAULT_SEEDS = (0, 1)
DEFAULT_KERAS_SEED = 0
TRAIN_THREADS = 1
KERAS_DATE = "1980-01-01@00:00:00"
ZIP_DATE = (1980, 1, 1, 0, 0, 0)
INPUT_RULE = "grey uint8 / 255 as float32 (the mean of the harness's 3 equal RGB channels)"
INIT_RULE = (
    "He-uniform U(-sqrt(6/fan_in), sqrt(6/fan_in)) kernels, zero biases, drawn in PyTorch's "
    "layout (conv OIHW, dense (out, in); fc1's inputs in H, W, C order) from "
    "numpy.random.default_rng([seed, 0]) in the order conv1, conv2, fc1, fc2; float32"
)
ORDER_RULE = "numpy.random.default_rng([seed, 1]).permutation(n_train) per epoch, batches in order"

#: canonical state: PyTorch's names and layout
SHAPES = {
    "conv1.weight": (16, 1, 3, 3),
    "conv1.bias": (16,),
    "conv2.weight": (32, 16, 3, 3),
    "conv2.bias": (32,),
    "fc1.weight": (64, 4 * 4 * 32),
    "fc1.bias": (64,),
    "fc2.weight": (10, 64),
    "fc2.bias": (10,),
}
LAYERS = ("conv1", "conv2", "fc1", "fc2")
NUM_CLASSES = 10
FEATURE_DIM = 64
CACHE_SUBDIR = Path("trained") / "digits_cnn"
RECORD = "record.json"
LOGITS_FILE = "test_logits.npy"


# ------------------------------------------------------------------------------ models
@functools.lru_cache(maxsize=1)
def _torch_class():
    from .backbones.base import import_torch

    torch = import_torch()
    nn = torch.nn

    class DigitsCNN(nn.Module):
        """N x 1 x 8 x 8 float32 in [0, 1] -> N x 10 logits (see harness.digits_cnn)."""

        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
            self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
            self.pool = nn.MaxPool2d(2)
            self.fc1 = nn.Linear(4 * 4 * 32, FEATURE_DIM)
            self.fc2 = nn.Linear(FEATURE_DIM, NUM_CLASSES)

        def features(self, x):
            """The penultimate features (the input of ``fc2``): N x 64."""
            x = torch.relu(self.conv1(x))
            x = self.pool(torch.relu(self.conv2(x)))
            x = torch.flatten(x.permute(0, 2, 3, 1), 1)  # H, W, C order, as Keras flattens
            return torch.relu(self.fc1(x))

        def forward(self, x):
            return self.fc2(self.features(x))

    DigitsCNN.__module__ = __name__
    DigitsCNN.__qualname__ = "DigitsCNN"
    return DigitsCNN


def build_torch():
    """The digits CNN as a ``torch.nn.Module`` (untrained; load a ``.pth`` state dict into it)."""
    return _torch_class()()


def import_keras():
    """Keras 3 on TensorFlow, with torch imported first (the other order segfaults)."""
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    from .backbones.base import import_tensorflow

    import_tensorflow()
    import keras

    if keras.backend.backend() != "tensorflow":
        raise HarnessError(
            f"the digits CNN trains with Keras on TensorFlow, but KERAS_BACKEND is "
            f"{keras.backend.backend()!r}; unset it or set KERAS_BACKEND=tensorflow"
        )
    return keras


def build_keras():
    """The digits CNN as a ``keras.Model`` (N x 8 x 8 x 1 in [0, 1] -> logits; untrained)."""
    keras = import_keras()
    L = keras.layers
    inp = keras.Input((8, 8, 1), name="digits")
    x = L.Conv2D(16, 3, padding="same", activation="relu", name="conv1")(inp)
    x = L.Conv2D(32, 3, padding="same", activation="relu", name="conv2")(x)
    x = L.MaxPooling2D(2, name="pool")(x)
    x = L.Flatten(name="flatten")(x)
    x = L.Dense(FEATURE_DIM, activation="relu", name="fc1")(x)
    out = L.Dense(NUM_CLASSES, name="fc2")(x)
    return keras.Model(inp, out, name="digits_cnn")


# ------------------------------------------------------------------------------ weights
def init_state(seed: int) -> dict:
    """The initial weights of ``seed`` in the canonical (PyTorch) layout, float32 numpy."""
    rng = np.random.default_rng([int(seed), 0])
    out = {}
    for layer in LAYERS:
        shape = SHAPES[f"{layer}.weight"]
        fan_in = int(np.prod(shape[1:]))
        limit = np.sqrt(6.0 / fan_in)
        out[f"{layer}.weight"] = rng.uniform(-limit, limit, size=shape).astype(np.float32)
        out[f"{layer}.bias"] = np.zeros(SHAPES[f"{layer}.bias"], np.float32)
    return out


def batch_orders(seed: int, n: int, epochs: int) -> list:
    rng = np.random.default_rng([int(seed), 1])
    return [rng.permutation(n) for _ in range(int(epochs))]


def state_sha256(state: dict) -> str:
    """sha256 of the arrays (names, dtypes, shapes, bytes) in the canonical layout."""
    from .backbones.weights import state_sha256 as sha

    return sha(state)


def to_keras(state: dict) -> dict:
    """Canonical state -> ``{layer: [kernel, bias]}`` in Keras's layout (HWIO, (in, out))."""
    out = {}
    for layer in LAYERS:
        w = state[f"{layer}.weight"]
        k = w.transpose(2, 3, 1, 0) if w.ndim == 4 else w.T
        out[layer] = [np.ascontiguousarray(k), np.ascontiguousarray(state[f"{layer}.bias"])]
    return out


def from_keras(model) -> dict:
    """A Keras digits CNN's weights in the canonical layout."""
    out = {}
    for layer in LAYERS:
        k, b = model.get_layer(layer).get_weights()
        w = k.transpose(3, 2, 0, 1) if k.ndim == 4 else k.T
        out[f"{layer}.weight"] = np.ascontiguousarray(w, dtype=np.float32)
        out[f"{layer}.bias"] = np.ascontiguousarray(b, dtype=np.float32)
    return out


def load_keras_state(model, state: dict) -> None:
    for layer, ws in to_keras(state).items():
        model.get_layer(layer).set_weights(ws)


def load_torch_state(model, state: dict) -> None:
    import torch

    model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state.items()})


def torch_state(model) -> dict:
    return {k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()}


# ------------------------------------------------------------------------------ data
@dataclass
class DigitsData:
    """The train and test splits as the networks see them, and what identifies them."""

    x_train: np.ndarray  # N x 1 x 8 x 8 float32 in [0, 1]
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    identity: dict = field(default_factory=dict)


def to_network_input(images: np.ndarray) -> np.ndarray:
    """uint8 N x H x W x 3 (3 equal channels, H = W = 8) -> float32 N x 1 x 8 x 8 in [0, 1]."""
    x = np.asarray(images)
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[1:] != (8, 8, 3):
        raise HarnessError(
            f"the digits CNN takes uint8 N x 8 x 8 x 3 images, got {x.dtype} {x.shape}"
        )
    grey = x.astype(np.float32).mean(axis=-1)  # exact: the channels are equal
    return (grey / np.float32(255))[:, None].astype(np.float32)


def data_provenance() -> dict:
    """The provenance of the two image sources the CNN trains and is tested on."""
    from . import data

    return {
        s: data.load_source("digits", split=s, progress=False).provenance()
        for s in ("train", "test")
    }


@functools.lru_cache(maxsize=1)
def digits_data() -> DigitsData:
    from . import data

    parts, ident = {}, {}
    for split in ("train", "test"):
        src = data.load_source("digits", split=split, progress=False)
        images, labels = src.read_all(), np.asarray(src.labels, dtype=np.int64)
        parts[split] = (to_network_input(images), labels)
        h = hashlib.sha256(images.tobytes())
        h.update(labels.astype("<i8").tobytes())
        ident[split] = {
            "fingerprint": src.fingerprint(),
            "n": len(labels),
            "images_labels_sha256": h.hexdigest(),
        }
    ident["input"] = INPUT_RULE
    return DigitsData(*parts["train"], *parts["test"], identity=ident)


# ------------------------------------------------------------------------------ training
@dataclass
class Trained:
    """One trained checkpoint: its files (name -> bytes) and its record."""

    name: str
    framework: str
    seed: int
    record: dict
    files: dict
    #: float32 logits on the digits test split (N_test x 10), as the training computed them
    test_logits: np.ndarray | None = None
    entry_dir: Path | None = None
    reused: bool = False

    def all_files(self) -> dict:
        """The checkpoint files and the test logits (``test_logits.npy``): name -> bytes."""
        return {**self.files, LOGITS_FILE: npy_bytes(self.test_logits)}


def check_train(train: dict | None) -> dict:
    t = {**DEFAULT_TRAIN, **(train or {})}
    unknown = set(t) - set(DEFAULT_TRAIN)
    if unknown:
        raise HarnessError(
            f"unknown training setting(s) {sorted(unknown)}; valid: {', '.join(DEFAULT_TRAIN)}"
        )
    out = {
        "epochs": int(t["epochs"]),
        "batch_size": int(t["batch_size"]),
        "lr": float(t["lr"]),
        "momentum": float(t["momentum"]),
        "weight_decay": float(t["weight_decay"]),
    }
    if out["epochs"] < 1 or out["batch_size"] < 1 or out["lr"] <= 0:
        raise HarnessError(f"training needs epochs >= 1, batch_size >= 1 and lr > 0, got {out}")
    if not 0 <= out["momentum"] < 1 or out["weight_decay"] < 0:
        raise HarnessError(f"training needs 0 <= momentum < 1 and weight_decay >= 0, got {out}")
    return out


def _framework_versions(framework: str) -> dict:
    from .provenance import package_version

    out = {"numpy": np.__version__, "scikit-learn": package_version("scikit-learn")}
    if framework == "torch":
        out["torch"] = package_version("torch")
    else:
        for name in ("tensorflow", "keras", "h5py"):
            out[name] = package_version(name)
    return out


@functools.lru_cache(maxsize=1)
def code_sha256() -> str:
    """sha256 of this module's source (part of every cache key)."""
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()


def checkpoint_identity(framework: str, seed: int, train: dict, data: DigitsData) -> dict:
    """Everything a checkpoint's bytes depend on (its cache key is the sha256 of this)."""
    if framework not in FRAMEWORKS:
        raise HarnessError(f"unknown framework {framework!r}; valid: {', '.join(FRAMEWORKS)}")
    return {
        "model": "digits_cnn",
        "recipe_version": RECIPE_VERSION,
        "code_sha256": code_sha256(),
        "framework": framework,
        "seed": int(seed),
        "train": check_train(train),
        "threads": TRAIN_THREADS,
        "data": data.identity,
        "versions": _framework_versions(framework),
    }


def checkpoint_key(identity: dict) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:32]


@contextlib.contextmanager
def _torch_threads(n: int):
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def npy_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(a), allow_pickle=False)
    return buf.getvalue()


def npy_from_bytes(b: bytes) -> np.ndarray:
    return np.load(io.BytesIO(b), allow_pickle=False)


def _accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return float((np.argmax(logits, axis=1) == labels).mean())


def torch_logits(model, x: np.ndarray) -> np.ndarray:
    import torch

    model.eval()
    with torch.no_grad():
        return model(torch.from_numpy(np.ascontiguousarray(x))).numpy()


def keras_logits(model, x: np.ndarray) -> np.ndarray:
    """``x`` in the canonical N x 1 x 8 x 8 layout."""
    return np.asarray(model(np.ascontiguousarray(x.transpose(0, 2, 3, 1)), training=False))


def _train_torch(state0: dict, train: dict, data: DigitsData, orders: list):
    import torch
    import torch.nn.functional as F

    model = build_torch()
    load_torch_state(model, state0)
    model.train()
    opt = torch.optim.SGD(
        model.parameters(),
        lr=train["lr"],
        momentum=train["momentum"],
        dampening=0.0,
        weight_decay=train["weight_decay"],
        nesterov=False,
        foreach=False,
    )
    x, y = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train)
    bs, loss = train["batch_size"], None
    with _torch_threads(TRAIN_THREADS):
        for perm in orders:
            perm = torch.from_numpy(perm)
            for s in range(0, len(perm), bs):
                idx = perm[s : s + bs]
                opt.zero_grad(set_to_none=True)
                loss = F.cross_entropy(model(x[idx]), y[idx])
                loss.backward()
                opt.step()
        tr, te = torch_logits(model, data.x_train), torch_logits(model, data.x_test)
    return model, torch_state(model), tr, te, float(loss.detach())


def _train_keras(state0: dict, train: dict, data: DigitsData, orders: list):
    keras = import_keras()
    import tensorflow as tf

    model = build_keras()
    load_keras_state(model, state0)
    variables = model.trainable_variables
    opt = keras.optimizers.SGD(
        learning_rate=train["lr"], momentum=train["momentum"], nesterov=False
    )
    opt.build(variables)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    wd = train["weight_decay"]

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, 8, 8, 1], tf.float32),
            tf.TensorSpec([None], tf.int64),
        ]
    )
    def step(xb, yb):
        with tf.GradientTape() as tape:
            loss = loss_fn(yb, model(xb, training=True))
        grads = tape.gradient(loss, variables)
        if wd:  # coupled L2, as torch.optim.SGD's weight_decay (see the module docstring)
            grads = [g + wd * v for g, v in zip(grads, variables)]
        opt.apply_gradients(zip(grads, variables))
        return loss

    x = np.ascontiguousarray(data.x_train.transpose(0, 2, 3, 1))
    y = data.y_train
    bs, loss = train["batch_size"], None
    for perm in orders:
        for s in range(0, len(perm), bs):
            idx = perm[s : s + bs]
            loss = step(tf.constant(x[idx]), tf.constant(y[idx]))
    tr, te = keras_logits(model, data.x_train), keras_logits(model, data.x_test)
    return model, from_keras(model), tr, te, float(loss)


#: the environment of the Keras training process: one TensorFlow thread (its results depend on
#: the thread count, which is fixed when TensorFlow starts), the CPU only
KERAS_CHILD_ENV = {
    "TF_NUM_INTRAOP_THREADS": str(TRAIN_THREADS),
    "TF_NUM_INTEROP_THREADS": str(TRAIN_THREADS),
    "OMP_NUM_THREADS": str(TRAIN_THREADS),
    "CUDA_VISIBLE_DEVICES": "",
    "KERAS_BACKEND": "tensorflow",
    "TF_CPP_MIN_LOG_LEVEL": "3",
}


def _file_names(framework: str, seed: int) -> dict:
    stem = f"digits_cnn_{framework}_seed{int(seed)}"
    if framework == "torch":
        return {"state_dict": f"{stem}.pth", "torchscript": f"{stem}.pt"}
    return {"keras": f"{stem}.keras", "weights_h5": f"{stem}.weights.h5"}


def train(framework: str, seed: int, train: dict | None = None) -> Trained:
    """Train one checkpoint (no cache): a :class:`Trained` with its files' bytes and record.

    PyTorch trains in this process (intra-op threads set to :data:`TRAIN_THREADS` for the
    training, then restored); Keras in a child process started with :data:`KERAS_CHILD_ENV`,
    because TensorFlow's thread pools (which move the result) are fixed when it starts.
    """
    t = check_train(train)
    if framework not in FRAMEWORKS:
        raise HarnessError(f"unknown framework {framework!r}; valid: {', '.join(FRAMEWORKS)}")
    t0 = time.perf_counter()
    got = _train_here("torch", seed, t) if framework == "torch" else _train_in_child(seed, t)
    got.record["wall_seconds"] = time.perf_counter() - t0
    return got


def _train_here(framework: str, seed: int, t: dict) -> Trained:
    data = digits_data()
    ident = checkpoint_identity(framework, seed, t, data)
    state0 = init_state(seed)
    orders = batch_orders(seed, len(data.y_train), t["epochs"])
    if framework == "torch":
        from .backbones.base import import_torch

        import_torch()
        t0 = time.perf_counter()
        model, state, tr, te, loss = _train_torch(state0, t, data, orders)
        seconds = time.perf_counter() - t0
        blobs = {"state_dict": torch_state_bytes(state), "torchscript": torchscript_bytes(model)}
        threads = {"torch_intra_op": TRAIN_THREADS}
    else:
        import_keras()
        t0 = time.perf_counter()
        model, state, tr, te, loss = _train_keras(state0, t, data, orders)
        seconds = time.perf_counter() - t0
        blobs = {"keras": keras_bytes(model), "weights_h5": keras_weights_bytes(model)}
        threads = {k: os.environ.get(k) for k in KERAS_CHILD_ENV if "THREADS" in k}
    names = _file_names(framework, seed)
    files = {names[k]: b for k, b in blobs.items()}
    record = {
        "name": f"{framework}_seed{int(seed)}",
        "label": LABEL,
        "random_weights": False,
        "framework": framework,
        "seed": int(seed),
        "init_seed": int(seed),
        "architecture": ARCHITECTURE,
        "init": INIT_RULE,
        "batch_order": ORDER_RULE,
        "optimizer": _optimizer_text(framework, t),
        "train": t,
        "input": INPUT_RULE,
        "files": {
            kind: {"file": names[kind], "sha256": hashlib.sha256(b).hexdigest()}
            for kind, b in blobs.items()
        },
        "test_logits": {
            "file": LOGITS_FILE,
            "sha256": hashlib.sha256(npy_bytes(te)).hexdigest(),
            "shape": list(te.shape),
        },
        "weights_sha256": state_sha256(state),
        "init_weights_sha256": state_sha256(state0),
        "weights_layout": "canonical: PyTorch names and layout (conv OIHW, dense (out, in))",
        "train_accuracy": _accuracy(tr, data.y_train),
        "test_accuracy": _accuracy(te, data.y_test),
        "final_batch_loss": loss,
        "seconds": seconds,
        "threads": threads,
        "device": "cpu",
        "cpu_count": os.cpu_count(),
        "versions": ident["versions"],
        "data": data.identity,
        "identity": ident,
        "key": checkpoint_key(ident),
    }
    return Trained(record["name"], framework, int(seed), record, files, te.astype(np.float32))


def _checked_files(folder: Path, record: dict) -> tuple:
    """(checkpoint files name -> bytes, test logits) of ``folder``, each checked against the
    sha256 ``record`` gives it; a ValueError names the first that fails."""
    wanted = [*record["files"].values(), record["test_logits"]]
    blobs = {}
    for info in wanted:
        p = folder / info["file"]
        if not p.is_file():
            raise ValueError(f"{info['file']} is missing")
        b = p.read_bytes()
        got = hashlib.sha256(b).hexdigest()
        if got != info["sha256"]:
            raise ValueError(
                f"{info['file']} has sha256 {got[:16]}..., recorded {info['sha256'][:16]}..."
            )
        blobs[info["file"]] = b
    logits = npy_from_bytes(blobs.pop(record["test_logits"]["file"]))
    return blobs, logits


def _train_in_child(seed: int, t: dict) -> Trained:
    """Keras training in a fresh process (see :func:`train`); its files come back through a
    temporary directory, checked against the record the child wrote."""
    import importlib.util
    import subprocess
    import sys

    if importlib.util.find_spec("tensorflow") is None or importlib.util.find_spec("keras") is None:
        raise ResourceUnavailable(
            "training the Keras digits CNN needs TensorFlow and Keras: pip install -e '.[tf]' "
            "(or leave keras out of frameworks=)"
        )
    data = digits_data()
    root = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, **KERAS_CHILD_ENV}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    with tempfile.TemporaryDirectory(prefix="digits-cnn-keras-") as tmp:
        job = {"seed": int(seed), "train": t, "out": tmp}
        proc = subprocess.run(
            [sys.executable, "-m", "harness.digits_cnn", "--keras-child"],
            input=json.dumps(job),
            env=env,
            cwd=root,
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
            last = lines[-1] if lines else f"exit code {proc.returncode}"
            raise HarnessError(f"training the Keras digits CNN failed in its process: {last}")
        record = json.loads((Path(tmp) / RECORD).read_text(encoding="utf-8"))
        try:
            files, logits = _checked_files(Path(tmp), record)
        except ValueError as exc:
            raise HarnessError(f"Keras training process: {exc}") from None
    if record["data"] != data.identity:
        raise HarnessError(
            "Keras training process saw other digits data than this process (a different "
            "scikit-learn or numpy on its path?); run both from one environment"
        )
    return Trained(record["name"], "keras", int(seed), record, files, logits)


def _keras_child(job: dict) -> None:
    got = _train_here("keras", int(job["seed"]), check_train(job["train"]))
    out = Path(job["out"])
    for name, blob in got.all_files().items():
        (out / name).write_bytes(blob)
    (out / RECORD).write_text(json.dumps(got.record, indent=2, sort_keys=True) + "\n")


def _optimizer_text(framework: str, t: dict) -> str:
    if framework == "torch":
        return (
            f"torch.optim.SGD(lr={t['lr']:g}, momentum={t['momentum']:g}, dampening=0, "
            f"nesterov=False, weight_decay={t['weight_decay']:g}, foreach=False)"
        )
    return (
        f"keras.optimizers.SGD(learning_rate={t['lr']:g}, momentum={t['momentum']:g}, "
        f"nesterov=False) with g += {t['weight_decay']:g} * p added to every gradient "
        "(coupled L2, as torch's weight_decay)"
    )


# ------------------------------------------------------------------------------ files
def torch_state_bytes(state: dict) -> bytes:
    """``torch.save`` of the state dict into memory (no file name in the archive: the bytes
    depend only on the arrays)."""
    import collections

    import torch

    buf = io.BytesIO()
    sd = collections.OrderedDict((k, torch.from_numpy(np.array(state[k]))) for k in SHAPES)
    torch.save(sd, buf)
    return buf.getvalue()


def torchscript_bytes(model) -> bytes:
    """TorchScript of ``model`` (``forward`` and ``features`` traced), without the
    ``*.debug_pkl`` records (source locations with absolute paths): path-independent bytes."""
    import torch

    model.eval()
    example = torch.zeros(2, 1, 8, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated, still works
        import torch.jit._state as jit_state

        saved = jit_state._python_cu
        jit_state._python_cu = torch._C.CompilationUnit()  # type names as in a fresh process
        try:
            traced = torch.jit.trace_module(
                model,
                {"forward": example, "features": example},
                _compilation_unit=jit_state._python_cu,
            )
        finally:
            jit_state._python_cu = saved
        buf = io.BytesIO()
        torch.jit.save(traced, buf)
    reader = torch._C.PyTorchFileReader(io.BytesIO(buf.getvalue()))
    out = io.BytesIO()
    writer = torch._C.PyTorchFileWriter(out)
    for name in reader.get_all_records():
        if name.endswith(".debug_pkl") or name.startswith(".data/"):
            continue  # .data/serialization_id is rewritten by the writer
        data = reader.get_record(name)
        writer.write_record(name, data, len(data))
    writer.write_end_of_file()
    return out.getvalue()


def _deterministic_zip(raw: bytes, rewrite: dict | None = None) -> bytes:
    """The zip ``raw`` with every entry's timestamp set to 1980-01-01 (and some entries'
    contents replaced), entries in the same order, stored uncompressed as Keras stores them."""
    src = zipfile.ZipFile(io.BytesIO(raw))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            data = (rewrite or {}).get(info.filename, src.read(info.filename))
            zi = zipfile.ZipInfo(info.filename, date_time=ZIP_DATE)
            zi.compress_type = zipfile.ZIP_STORED
            zi.create_system = 3
            zi.external_attr = 0o644 << 16
            dst.writestr(zi, data)
    return out.getvalue()


def _renumber_shared_objects(node, ids: dict) -> None:
    """Keras marks objects shared by several layers (the float32 dtype policy) with their
    Python ``id()``, which changes with every process; number them 1, 2, ... in order of
    appearance instead (the loader only matches them with each other)."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "shared_object_id" and isinstance(v, int):
                node[k] = ids.setdefault(v, len(ids) + 1)
            else:
                _renumber_shared_objects(v, ids)
    elif isinstance(node, list):
        for v in node:
            _renumber_shared_objects(v, ids)


def keras_bytes(model) -> bytes:
    """``model.save`` as ``.keras`` bytes, made deterministic: ``date_saved`` fixed to
    :data:`KERAS_DATE`, shared-object ids renumbered, zip timestamps fixed."""
    with tempfile.TemporaryDirectory(prefix="digits-cnn-") as tmp:
        path = Path(tmp) / "model.keras"
        model.save(path)
        raw = path.read_bytes()
    z = zipfile.ZipFile(io.BytesIO(raw))
    meta = json.loads(z.read("metadata.json"))
    meta["date_saved"] = KERAS_DATE
    config = json.loads(z.read("config.json"))
    _renumber_shared_objects(config, {})
    return _deterministic_zip(
        raw,
        {"metadata.json": json.dumps(meta).encode(), "config.json": json.dumps(config).encode()},
    )


def keras_weights_bytes(model) -> bytes:
    with tempfile.TemporaryDirectory(prefix="digits-cnn-") as tmp:
        path = Path(tmp) / "model.weights.h5"
        model.save_weights(path)
        return path.read_bytes()


def load_checkpoint(path):
    """A saved checkpoint as a model: ``.pth`` (into :func:`build_torch`), ``.pt``
    (``torch.jit.load``), ``.keras`` (``keras.models.load_model``) or ``.weights.h5`` (into
    :func:`build_keras`)."""
    path = Path(path)
    name = path.name
    if name.endswith(".pth"):
        import torch

        model = build_torch()
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        return model.eval()
    if name.endswith(".pt"):
        from .backbones.base import import_torch

        torch = import_torch()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            return torch.jit.load(str(path), map_location="cpu").eval()
    if name.endswith(".weights.h5"):
        model = build_keras()
        model.load_weights(path)
        return model
    if name.endswith(".keras"):
        keras = import_keras()
        return keras.models.load_model(path, compile=False)
    raise HarnessError(f"{path}: not a digits CNN checkpoint (.pth, .pt, .keras, .weights.h5)")


def logits_of(model, x: np.ndarray) -> np.ndarray:
    """Logits of a loaded checkpoint (torch, TorchScript or Keras) on canonical N x 1 x 8 x 8."""
    if hasattr(model, "get_layer"):
        return keras_logits(model, x)
    return torch_logits(model, x)


# ------------------------------------------------------------------------------ cache
def cache_dir_root(cache_dir) -> Path:
    from .backbones.weights import cache_root

    return cache_root(cache_dir) / CACHE_SUBDIR


def _verified(entry: Path, key: str) -> Trained | None:
    """The entry as a :class:`Trained` if every file matches its recorded sha256; None when
    absent.  A failed check warns and moves the entry to ``bad/`` (then it is trained again)."""
    if not entry.exists():
        return None
    try:
        rec = json.loads((entry / RECORD).read_text(encoding="utf-8"))
        if rec.get("key") != key:
            raise ValueError(f"its record names key {rec.get('key')!r}")
        files, logits = _checked_files(entry, rec)
        fw, seed = rec["framework"], int(rec["seed"])
        return Trained(rec["name"], fw, seed, rec, files, logits, entry, reused=True)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        warnings.warn(
            f"digits CNN cache: entry {entry} fails its check ({exc}); moved to bad/ and "
            "trained again",
            stacklevel=3,
        )
        bad = entry.parent / "bad"
        bad.mkdir(parents=True, exist_ok=True)
        os.replace(entry, bad / f"{entry.name}.{os.getpid()}.{time.time_ns()}")
        return None


def obtain(
    framework: str,
    seed: int,
    train: dict | None = None,
    cache_dir=None,
) -> Trained:
    """One checkpoint, from the cache when a verified entry exists, else trained (and stored
    under ``<cache.dir>/trained/digits_cnn/<key>/``, atomically).  ``cache_dir``: as for
    :mod:`harness.backbones.weights` (``NO_DISK_CACHE``: trained in memory, nothing read or
    written under any cache directory)."""
    from .backbones.weights import CACHE_FIX, disk_cache_off
    from .results import ensure_dir, write_error

    data = digits_data()
    t = check_train(train)
    if disk_cache_off(cache_dir):
        return train_fn(framework, seed, t)
    ident = checkpoint_identity(framework, seed, t, data)
    key = checkpoint_key(ident)
    root = ensure_dir(cache_dir_root(cache_dir), CACHE_FIX)
    entry = root / key
    from filelock import FileLock

    with FileLock(str(root / f".{key}.lock")):
        hit = _verified(entry, key)
        if hit is not None:
            return hit
        got = train_fn(framework, seed, t)
        if got.record["key"] != key:
            raise HarnessError(
                f"digits CNN: the {framework} training computed cache key {got.record['key']}, "
                f"this process {key} (different package versions in the training process?)"
            )
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=root))
        try:
            for name, blob in got.all_files().items():
                (tmp / name).write_bytes(blob)
            (tmp / RECORD).write_text(json.dumps(got.record, indent=2, sort_keys=True) + "\n")
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes 0700 directories
            os.replace(tmp, entry)
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise write_error(entry, exc, CACHE_FIX) from None
        got.entry_dir = entry
        return got


train_fn = train  # ``obtain`` calls this (the tests count calls through it)


def checkpoint_specs(
    seeds=DEFAULT_SEEDS, frameworks=FRAMEWORKS, keras_seed=DEFAULT_KERAS_SEED
) -> list:
    """(framework, seed) of each checkpoint of a set: torch for every seed, keras for one.
    A framework that is not installed is a one-line error here, before anything trains."""
    import importlib.util

    needs = {"torch": ("torch", "'.[torch]'"), "keras": ("tensorflow", "'.[tf]'")}
    out = []
    for fw in frameworks:
        if fw not in FRAMEWORKS:
            raise HarnessError(f"unknown framework {fw!r}; valid: {', '.join(FRAMEWORKS)}")
        module, extra = needs[fw]
        if importlib.util.find_spec(module) is None or (
            fw == "keras" and importlib.util.find_spec("keras") is None
        ):
            raise ResourceUnavailable(
                f"training the {fw} digits CNN needs {module}: pip install -e {extra}, or leave "
                f"{fw} out of frameworks="
            )
        out += [("torch", int(s)) for s in seeds] if fw == "torch" else [("keras", int(keras_seed))]
    return out


def trained_checkpoints(
    cache_dir=None,
    *,
    train: dict | None = None,
    seeds=DEFAULT_SEEDS,
    frameworks=FRAMEWORKS,
    keras_seed=DEFAULT_KERAS_SEED,
    out_dir=None,
) -> dict:
    """The digits CNN checkpoints (default: torch seeds 0 and 1, keras seed 0, the default
    training), trained where the cache has no verified copy.

    Returns ``{name: record}`` (``torch_seed0``, ``torch_seed1``, ``keras_seed0`` ...); each
    record (see :func:`train`) has ``paths`` (file kind -> absolute path: ``state_dict``,
    ``torchscript``, ``keras``, ``weights_h5``), ``test_logits_path`` (the float32 logits on
    the digits test split, ``.npy``), ``usage`` (:func:`usage_lines`) and ``reused``.  The
    files are the cache entry's, or copies in ``out_dir`` when given (required with
    ``cache_dir=NO_DISK_CACHE``; the logits then as ``digits_cnn_<name>_test_logits.npy``).
    """
    from .backbones.weights import disk_cache_off
    from .results import atomic_write_bytes

    if disk_cache_off(cache_dir) and out_dir is None:
        raise HarnessError(
            "trained_checkpoints: with the disk cache off the files need an out_dir=<directory>"
        )
    out = {}
    for fw, seed in checkpoint_specs(seeds, frameworks, keras_seed):
        got = obtain(fw, seed, train, cache_dir)
        folder = Path(out_dir) if out_dir is not None else got.entry_dir
        logits = folder / LOGITS_FILE
        if out_dir is not None:
            for name, blob in got.files.items():
                atomic_write_bytes(folder / name, blob)
            logits = folder / f"digits_cnn_{got.name}_test_logits.npy"
            atomic_write_bytes(logits, npy_bytes(got.test_logits))
        rec = dict(got.record)
        rec["paths"] = {
            kind: (folder / info["file"]).resolve() for kind, info in rec["files"].items()
        }
        rec["test_logits_path"] = logits.resolve()
        rec["usage"] = usage_lines(rec)
        rec["reused"] = got.reused
        rec["entry_dir"] = None if got.entry_dir is None else str(got.entry_dir)
        out[got.name] = rec
    return out


#: the backbone keys every digits CNN checkpoint needs besides its file
BACKBONE_KEYS = "backbone.input_size=8 backbone.channels=1 backbone.label_space=digits10"


def usage_lines(record: dict) -> list:
    """The command-line overrides that score images with a checkpoint (``backbone=...``)."""
    p = record["paths"]
    if record["framework"] == "torch":
        return [
            f"backbone=torch_model backbone.weights=file:{p['state_dict']} "
            f"backbone.builder=harness.digits_cnn:build_torch {BACKBONE_KEYS}",
            f"backbone=torch_model backbone.weights=file:{p['torchscript']} {BACKBONE_KEYS}",
        ]
    return [f"backbone=keras_model backbone.weights=file:{p['keras']} {BACKBONE_KEYS}"]


if __name__ == "__main__":
    import sys

    if sys.argv[1:] != ["--keras-child"]:
        raise SystemExit("usage: python -m harness.digits_cnn --keras-child < job.json")
    _keras_child(json.loads(sys.stdin.read()))
