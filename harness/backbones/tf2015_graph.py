"""``tf2015``: the original ``classify_image_graph_def.pb`` (inception-2015-12-05), as TF1.

This is the network of the original Inception Score code (openai/improved-gan) and the paper's
"IV2 TF" column.  Reproduced exactly:

* the GraphDef is imported with ``tf.compat.v1`` and fed at ``ExpandDims:0`` with float pixels
  in 0..255 at the images' own resolution; the graph itself resizes (TF1 bilinear,
  align_corners=False) to 299 and maps (x - 128) / 128;
* logits = ``pool_3`` (2048) x ``softmax/weights`` (2048 x 1008) **without** bias (the original
  code takes the MatMul's weight input); ``bias=true`` adds ``softmax/biases``;
* 1008 outputs (indices 0 and 1001..1007 are not ImageNet classes; ``classes=imagenet1000``
  keeps 1..1000).

``weights=`` takes the ``.tgz`` or the extracted ``.pb``.  ``random:<seed>`` builds a GraphDef
with the 2015 graph's node names, ops (including the legacy ``BatchNormWithGlobalNormalization``,
so ``versions.producer`` is 8) and tensor shapes, filled with the canonical random weights.
"""

from __future__ import annotations

import hashlib
import tarfile
from pathlib import Path

import numpy as np

from .. import imagenet
from .. import resize as rs
from ..atomic_io import atomic_write_bytes, atomic_write_text
from ..attack import NumpyAttackTarget
from ..errors import HarnessError
from ..provenance import package_version
from . import graphdef as gdr
from . import weights as W
from .base import import_tensorflow
from .inception import InceptionBackbone
from .iv3_arch import BLOCKS, STEM, Conv, Pool, all_convs
from .porting import to_1008_layout as to_1008
from .random_init import random_iv3_state

GRAPH_MEMBER = "classify_image_graph_def.pb"
LABEL_MAP_MEMBER = "imagenet_2012_challenge_label_map_proto.pbtxt"
REQUIRED_NODES = ("ExpandDims", "ResizeBilinear", "pool_3", "softmax/logits/MatMul")
GRAPH_PRODUCER = 8  # < 9: BatchNormWithGlobalNormalization still importable
BN_EPS = 1e-3


def read_graph_bytes(path: Path) -> tuple[bytes, str | None]:
    """GraphDef bytes (and the label map text if present) from a .pb or the .tgz."""
    try:
        if path.suffix in (".tgz", ".gz") or tarfile.is_tarfile(path):
            with tarfile.open(path, "r:*") as tf_:
                members = {m.name.split("/")[-1]: m for m in tf_.getmembers() if m.isfile()}
                if GRAPH_MEMBER not in members:
                    raise HarnessError(
                        f"tf2015: {path} has no {GRAPH_MEMBER}; is it inception-2015-12-05.tgz?"
                    )
                graph = tf_.extractfile(members[GRAPH_MEMBER]).read()
                lm = members.get(LABEL_MAP_MEMBER)
                label_map = tf_.extractfile(lm).read().decode() if lm else None
                return graph, label_map
        return path.read_bytes(), None
    except HarnessError:
        raise
    except (OSError, tarfile.TarError, EOFError) as exc:
        raise HarnessError(
            f"tf2015: cannot read {path} ({type(exc).__name__}); the archive is truncated or "
            "corrupt"
        ) from None


def parse_nodes(data: bytes, path) -> dict:
    """The graph's nodes (pure-python reader), checked to be the 2015 Inception graph."""
    try:
        nodes = gdr.read_nodes(data)
    except gdr.GraphDefError:
        raise HarnessError(f"tf2015: {path} is not a GraphDef (truncated or corrupt)") from None
    missing = [n for n in REQUIRED_NODES if n not in nodes]
    if missing:
        raise HarnessError(
            f"tf2015: {path} lacks nodes {', '.join(missing)}; not the 2015-12-05 Inception graph"
        )
    return nodes


def parse_graphdef(data: bytes, path, tf):
    """The TensorFlow ``GraphDef`` (for importing into a session); check it with parse_nodes."""
    gd = tf.compat.v1.GraphDef()
    try:
        gd.ParseFromString(data)
    except Exception:
        raise HarnessError(f"tf2015: {path} is not a GraphDef (truncated or corrupt)") from None
    return gd


def graph_state(nodes: dict) -> dict:
    """Canonical torchvision-layout numpy state (1008 classes) from the 2015 graph's constants.

    The graph's ``BatchNormWithGlobalNormalization`` uses gamma only when its
    ``scale_after_normalization`` attribute is set; otherwise gamma is 1 in the canonical state.
    """
    consts = gdr.constants(nodes)
    sd, eps_seen = {}, set()
    for c in all_convs():
        try:
            w = consts[f"{c.tf}/conv2d_params"]
            beta = consts[f"{c.tf}/batchnorm/beta"]
            mean = consts[f"{c.tf}/batchnorm/moving_mean"]
            var = consts[f"{c.tf}/batchnorm/moving_variance"]
            gamma = consts[f"{c.tf}/batchnorm/gamma"]
        except KeyError as exc:
            raise HarnessError(f"2015 graph lacks {exc.args[0]}; cannot port it") from None
        node = nodes.get(f"{c.tf}/batchnorm")
        if node is not None and node.op == "BatchNormWithGlobalNormalization":
            eps_seen.add(round(node.attr("variance_epsilon"), 9))
            if not node.attr("scale_after_normalization", False):
                gamma = np.ones_like(gamma)  # the op ignores gamma then
        sd[f"{c.torch}.conv.weight"] = np.transpose(w, (3, 2, 0, 1)).astype(np.float32)
        sd[f"{c.torch}.bn.weight"] = gamma.astype(np.float32)
        sd[f"{c.torch}.bn.bias"] = beta.astype(np.float32)
        sd[f"{c.torch}.bn.running_mean"] = mean.astype(np.float32)
        sd[f"{c.torch}.bn.running_var"] = var.astype(np.float32)
    if eps_seen and eps_seen != {round(BN_EPS, 9)}:
        raise HarnessError(
            f"2015 graph uses BatchNorm epsilon {sorted(eps_seen)}, not {BN_EPS}; port not exact"
        )
    sd["fc.weight"] = consts["softmax/weights"].T.astype(np.float32).copy()
    sd["fc.bias"] = consts["softmax/biases"].astype(np.float32)
    return sd


# ------------------------------------------------------------------------------ builder
class _GraphWriter:
    def __init__(self, tf):
        from tensorflow.core.framework import types_pb2

        self.tf = tf
        self.gd = tf.compat.v1.GraphDef()
        self.F = types_pb2.DT_FLOAT
        self.I = types_pb2.DT_INT32

    def node(self, name, op, inputs=(), **attrs):
        n = self.gd.node.add()
        n.name, n.op = name, op
        n.input.extend(inputs)
        for k, v in attrs.items():
            a = n.attr[k]
            if isinstance(v, bool):
                a.b = v
            elif isinstance(v, float):
                a.f = v
            elif isinstance(v, int) and k in ("N",):
                a.i = v
            elif isinstance(v, (list, tuple)):
                a.list.i.extend(v)
            elif isinstance(v, bytes):
                a.s = v
            elif isinstance(v, str) and v.startswith("type:"):
                a.type = self.I if v == "type:int32" else self.F
            else:
                raise TypeError(k)
        return name

    def const(self, name, arr):
        arr = np.asarray(arr)
        dt = self.I if arr.dtype.kind == "i" else self.F
        n = self.gd.node.add()
        n.name, n.op = name, "Const"
        n.attr["dtype"].type = dt
        n.attr["value"].tensor.CopyFrom(
            self.tf.make_tensor_proto(arr.astype(np.int32 if dt == self.I else np.float32))
        )
        return name

    def conv(self, c: Conv, x: str, sd: dict, scale_after_normalization: bool, eps: float):
        w = sd[f"{c.torch}.conv.weight"]
        self.const(f"{c.tf}/conv2d_params", np.transpose(w, (2, 3, 1, 0)))
        pad = b"SAME" if c.pad != (0, 0) else b"VALID"
        conv = self.node(
            f"{c.tf}/Conv2D",
            "Conv2D",
            [x, f"{c.tf}/conv2d_params"],
            T="type:float",
            strides=[1, c.stride, c.stride, 1],
            padding=pad,
            data_format=b"NHWC",
            use_cudnn_on_gpu=True,
        )
        bn = f"{c.tf}/batchnorm"
        for key, tv in (
            ("beta", "bias"),
            ("gamma", "weight"),
            ("moving_mean", "running_mean"),
            ("moving_variance", "running_var"),
        ):
            self.const(f"{bn}/{key}", sd[f"{c.torch}.bn.{tv}"])
        self.node(
            bn,
            "BatchNormWithGlobalNormalization",
            [conv, f"{bn}/moving_mean", f"{bn}/moving_variance", f"{bn}/beta", f"{bn}/gamma"],
            T="type:float",
            variance_epsilon=float(eps),
            scale_after_normalization=bool(scale_after_normalization),
        )
        return self.node(c.tf, "Relu", [bn], T="type:float")

    def pool(self, p: Pool, x: str, kind: str | None = None):
        op = {"max": "MaxPool", "avg": "AvgPool"}[kind or p.kind]
        return self.node(
            p.tf,
            op,
            [x],
            T="type:float",
            ksize=[1, p.k, p.k, 1],
            strides=[1, p.stride, p.stride, 1],
            padding=b"SAME" if p.pad else b"VALID",
            data_format=b"NHWC",
        )

    def concat(self, name, inputs):
        axis = self.const(f"{name}/axis", np.array(3, np.int32))
        return self.node(
            name, "ConcatV2", [*inputs, axis], T="type:float", N=len(inputs), Tidx="type:int32"
        )


def build_graphdef(
    sd: dict, image_size: int = 299, scale_after_normalization: bool = False, eps: float = 1e-3
):
    """A GraphDef with the 2015 graph's names, ops and shapes, from a torchvision-layout state."""
    tf = import_tensorflow()
    g = _GraphWriter(tf)
    g.node("ExpandDims", "Placeholder", dtype="type:float")
    g.gd.node[-1].attr["dtype"].type = g.F
    g.const("ResizeBilinear/size", np.array([image_size, image_size], np.int32))
    x = g.node(
        "ResizeBilinear",
        "ResizeBilinear",
        ["ExpandDims", "ResizeBilinear/size"],
        T="type:float",
        align_corners=False,
    )
    g.const("Sub/y", np.float32(128.0))
    x = g.node("Sub", "Sub", [x, "Sub/y"], T="type:float")
    g.const("Mul/y", np.float32(1 / 128))
    x = g.node("Mul", "Mul", [x, "Mul/y"], T="type:float")
    for item in STEM:
        x = (
            g.conv(item, x, sd, scale_after_normalization, eps)
            if isinstance(item, Conv)
            else g.pool(item, x)
        )
    for bi, block in enumerate(BLOCKS):
        outs = []
        for branch in block.branches:
            y = x
            for item in branch:
                if isinstance(item, tuple):  # E-block split: two convs side by side, concatenated
                    parts = [g.conv(c, y, sd, scale_after_normalization, eps) for c in item[1]]
                    y = g.concat(item[1][0].tf.rsplit("/", 1)[0], parts)
                elif isinstance(item, Conv):
                    y = g.conv(item, y, sd, scale_after_normalization, eps)
                else:
                    last = bi == len(BLOCKS) - 1 and item.in_block
                    y = g.pool(item, y, "max" if last else None)  # the 2015 graph's mixed_10 quirk
            outs.append(y)
        x = g.concat(f"{block.tf}/join", outs)
    x = g.node(
        "pool_3",
        "AvgPool",
        [x],
        T="type:float",
        ksize=[1, 8, 8, 1],
        strides=[1, 1, 1, 1],
        padding=b"VALID",
        data_format=b"NHWC",
    )
    g.const("pool_3/_reshape/shape", np.array([1, 2048], np.int32))
    x = g.node(
        "pool_3/_reshape",
        "Reshape",
        [x, "pool_3/_reshape/shape"],
        T="type:float",
        Tshape="type:int32",
    )
    g.const("softmax/weights", sd["fc.weight"].T)
    g.const("softmax/biases", sd["fc.bias"])
    mm = g.node(
        "softmax/logits/MatMul",
        "MatMul",
        [x, "softmax/weights"],
        T="type:float",
        transpose_a=False,
        transpose_b=False,
    )
    lg = g.node(
        "softmax/logits", "BiasAdd", [mm, "softmax/biases"], T="type:float", data_format=b"NHWC"
    )
    g.node("softmax", "Softmax", [lg], T="type:float")
    g.gd.versions.producer = GRAPH_PRODUCER
    return g.gd


def graph_for_state(sd: dict, cache_dir=None) -> Path:
    """The 2015-style graph holding canonical state ``sd`` as a ``.pb`` (built once, cached).

    Named by the sha256 of the state; a sidecar holds the sha256 of the ``.pb`` bytes, and a file
    that no longer matches it is rebuilt.
    """
    key = W.state_sha256(sd)
    target = W.cache_root(cache_dir) / "weights" / "graphs" / f"tf2015_{key[:24]}.pb"
    sidecar = target.with_suffix(".sha256")
    if target.exists() and sidecar.exists() and W.sha256_of(target) == sidecar.read_text().strip():
        return target
    data = build_graphdef(to_1008(sd)).SerializeToString()
    atomic_write_bytes(target, data)
    atomic_write_text(sidecar, hashlib.sha256(data).hexdigest() + "\n")
    return target


def random_graph_path(seed: int, cache_dir=None) -> Path:
    """The canonical random 2015-style graph as a ``.pb`` file (``weights=random:<seed>``)."""
    return graph_for_state(random_iv3_state(seed, 1008, cache_dir), cache_dir)


TF2015_ARTIFACT = W.OfficialArtifact(
    "tf2015",
    "inception-2015-12-05.tgz",
    "http://download.tensorflow.org/models/image/imagenet/inception-2015-12-05.tgz",
    "INCEPTION_NOTE_WEIGHTS",
    lambda: W.cache_root() / "weights",
    alternatives=(GRAPH_MEMBER,),
)
#: no hash of the tgz (or of its .pb) is published: a file under this name is UNVERIFIED
#: unless its measured sha256 is added here (hash_kind="sha256")
TF2015_PUBLISHED = W.PublishedWeights.from_artifact(
    TF2015_ARTIFACT,
    "inception-2015-12-05 graph (TensorFlow)",
    "not published",
    "the original IS code's graph; no hash published, so never verified: use tf2015_torch "
    "with the 6726825d .pth for verified 2015 weights",
)


class TF2015Graph(InceptionBackbone):
    name = "tf2015"
    paper_label = "IV2 TF"
    weights_title = "Inception 2015-12-05 graph"
    framework = "tensorflow"
    class_layout = "tf2015_1008"
    raw_outputs = 1008
    default_bias = False
    default_norm = "zero_255"
    native_resize = ("tf1_bilinear", None)  # done inside the graph, from the original resolution
    supports_float64 = False
    fixed_input_size = 299
    has_gradients = True  # tf.gradients inside the imported graph (harness.attack)

    port_sources = ("torchvision", "keras")
    published = (TF2015_PUBLISHED,)
    summary = (
        "The original IS network: classify_image_graph_def.pb of inception-2015-12-05 (paper's "
        '"IV2 TF"), TF1 GraphDef.'
    )
    weights_doc = (
        "pretrained (inception-2015-12-05.tgz or classify_image_graph_def.pb) | "
        "file:<.tgz/.pb> | random:<seed> | ported:<backbone>[:<weights>]"
    )
    download_doc = "fetch the tgz into $INCEPTION_NOTE_WEIGHTS when missing (needs network)"
    native_resize_doc = "the graph's own, from the original resolution"
    bias_doc = "null = no bias (the original code); true adds softmax/biases"
    classes_doc = "all (1008) | imagenet1000 (outputs 1..1000) | first1000 | last1000"
    norm_doc = "auto = 0..255 floats fed at ExpandDims:0 (the graph maps (x-128)/128)"
    ported_keeps_layout = False  # other weights run at the graph's 1008 outputs (devkit ids)

    @classmethod
    def official_artifact(cls, **knobs) -> W.OfficialArtifact:
        return TF2015_ARTIFACT

    @classmethod
    def read_state(cls, path) -> dict:
        data, _ = read_graph_bytes(Path(path))
        return graph_state(parse_nodes(data, path))

    def _load(self, weights) -> None:
        tf = import_tensorflow()
        self.tf = tf
        if weights.state is not None:
            # cache.enabled=false: the graph is written to a temporary dir, read, and removed
            with W.scratch_cache(self.cache_dir) as root:
                path = graph_for_state(weights.state, root)
                data, self._label_map = read_graph_bytes(Path(path))
            if W.disk_cache_off(self.cache_dir):
                path = "(built in memory: cache.enabled=false)"
        else:
            path = weights.path
            data, self._label_map = read_graph_bytes(Path(path))
        self.network_file = Path(path)
        nodes = parse_nodes(data, path)
        gd = parse_graphdef(data, path, tf)
        wname = nodes["softmax/logits/MatMul"].inputs[1].split(":")[0]
        consts = gdr.constants(nodes, {wname, "softmax/biases", "ResizeBilinear/size"})
        self._W = consts[wname].astype(np.float32)  # 2048 x 1008
        self._b = consts.get("softmax/biases", np.zeros(self._W.shape[1])).astype(np.float32)
        if self._W.shape != (2048, 1008):
            raise HarnessError(
                f"tf2015: softmax weights have shape {self._W.shape}, expected (2048, 1008)"
            )
        self.graph_input_size = int(consts.get("ResizeBilinear/size", np.array([299, 299]))[0])
        graph = tf.Graph()
        with graph.as_default():
            inp = tf.compat.v1.placeholder(tf.float32, [None, None, None, 3], name="harness_input")
            try:
                (pool,) = tf.compat.v1.import_graph_def(
                    gd, input_map={"ExpandDims:0": inp}, return_elements=["pool_3:0"], name=""
                )
            except Exception as exc:
                raise HarnessError(
                    f"tf2015: cannot import {path} ({type(exc).__name__}: "
                    f"{str(exc).splitlines()[0][:160] if str(exc) else ''})"
                ) from None
        self._graph, self._inp, self._pool = graph, inp, pool
        self._sess = tf.compat.v1.Session(graph=graph)

    def attack_target(self, settings):
        return TF1GraphAttackTarget(self, settings)

    def _layout_names(self):
        if self._label_map:
            return imagenet.tf2015_names_from_label_map(self._label_map)
        return super()._layout_names()

    def _forward(self, images, want_features):
        if self.resize_method == "tf1_bilinear":
            x = images.astype(np.float32)  # the graph resizes, exactly as the original code
        else:
            s = self.graph_input_size
            x = rs.resize_numpy(images, (s, s), self.resize_method, bool(self.align_corners))
        scale, offset = self.normalize_from_255()
        if self.input_norm != "zero_255":
            x = (x * scale.astype(np.float32) + offset.astype(np.float32)).astype(np.float32)
        pool = self._sess.run(self._pool, {self._inp: x}).reshape(len(x), -1)
        logits = pool @ self._W
        if self.bias:
            logits = logits + self._b
        return logits, pool

    def extra_provenance(self) -> dict:
        return {
            "resize_location": "inside the graph (ResizeBilinear)"
            if self.resize_method == "tf1_bilinear"
            else "harness, before the graph (graph resize is then 299->299, an identity)",
            "network_file": str(self.network_file),
            "label_map": "from the tgz"
            if self._label_map
            else "assumed devkit ids (see harness.imagenet)",
        }

    def framework_versions(self) -> dict:
        return {"tensorflow": package_version("tensorflow")}


class TF1GraphAttackTarget(NumpyAttackTarget):
    """The 2015 graph: logits and their gradient built inside the imported TF1 graph."""

    def __init__(self, net, settings):
        super().__init__(net, settings)
        tf = net.tf
        with net._graph.as_default():
            pool = tf.reshape(net._pool, [-1, 2048])
            w = tf.constant(net._W)
            logits = tf.matmul(pool, w) + (tf.constant(net._b) if net.bias else 0.0)
            logits = tf.gather(logits, tf.constant(net._columns), axis=1)
            self.t_ph = tf.compat.v1.placeholder(tf.int32, [None], name="harness_targets")
            lp = tf.nn.log_softmax(logits, axis=1)
            obj = tf.reduce_sum(tf.gather(lp, self.t_ph, axis=1, batch_dims=1))
            (self.grad,) = tf.compat.v1.gradients(obj, [net._inp])
            self.logits = logits

    def start(self, x_uint8):
        s = self.net.graph_input_size
        # attack the 299x299 image fed at ExpandDims (the graph's resize is then an identity)
        x = rs.resize_numpy(x_uint8, (s, s), self.net.resize_method, bool(self.net.align_corners))
        return (x * self.scale + self.offset).astype(np.float32)

    def step(self, x, t, do_step):
        sess, inp = self.net._sess, self.net._inp
        if not do_step:
            return sess.run(self.logits, {inp: x}), x
        lg, g = sess.run([self.logits, self.grad], {inp: x, self.t_ph: np.asarray(t, np.int32)})
        return lg, self.update(x, g)
