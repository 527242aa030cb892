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

import tarfile
from pathlib import Path

import numpy as np

from .. import imagenet
from .. import resize as rs
from ..errors import HarnessError
from ..provenance import package_version
from . import weights as W
from .base import Backbone, import_tensorflow
from .iv3_arch import BLOCKS, STEM, Conv, Pool

GRAPH_MEMBER = "classify_image_graph_def.pb"
LABEL_MAP_MEMBER = "imagenet_2012_challenge_label_map_proto.pbtxt"
REQUIRED_NODES = ("ExpandDims", "ResizeBilinear", "pool_3", "softmax/logits/MatMul")
GRAPH_PRODUCER = 8  # < 9: BatchNormWithGlobalNormalization still importable


def read_graph_bytes(path: Path) -> tuple[bytes, str | None]:
    """GraphDef bytes (and the label map text if present) from a .pb or the .tgz."""
    try:
        if path.suffix in (".tgz", ".gz") or tarfile.is_tarfile(path):
            with tarfile.open(path, "r:*") as tf_:
                members = {m.name.split("/")[-1]: m for m in tf_.getmembers() if m.isfile()}
                if GRAPH_MEMBER not in members:
                    raise HarnessError(f"tf2015: {path} has no {GRAPH_MEMBER}; is it inception-2015-12-05.tgz?")
                graph = tf_.extractfile(members[GRAPH_MEMBER]).read()
                lm = members.get(LABEL_MAP_MEMBER)
                label_map = tf_.extractfile(lm).read().decode() if lm else None
                return graph, label_map
        return path.read_bytes(), None
    except HarnessError:
        raise
    except (OSError, tarfile.TarError, EOFError) as exc:
        raise HarnessError(f"tf2015: cannot read {path} ({type(exc).__name__}); the archive is truncated or corrupt") from None


def parse_graphdef(data: bytes, path, tf):
    gd = tf.compat.v1.GraphDef()
    try:
        gd.ParseFromString(data)
    except Exception:
        raise HarnessError(f"tf2015: {path} is not a GraphDef (truncated or corrupt)") from None
    names = {n.name for n in gd.node}
    missing = [n for n in REQUIRED_NODES if n not in names]
    if missing:
        raise HarnessError(f"tf2015: {path} lacks nodes {', '.join(missing)}; not the 2015-12-05 Inception graph")
    return gd


def graph_constants(gd, names=None) -> dict:
    """Const nodes of a GraphDef as numpy arrays (optionally only ``names``)."""
    from tensorflow.python.framework import tensor_util

    out = {}
    for n in gd.node:
        if n.op == "Const" and (names is None or n.name in names):
            out[n.name] = tensor_util.MakeNdarray(n.attr["value"].tensor)
    return out


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
        n.attr["value"].tensor.CopyFrom(self.tf.make_tensor_proto(arr.astype(np.int32 if dt == self.I else np.float32)))
        return name

    def conv(self, c: Conv, x: str, sd: dict, scale_after_normalization: bool, eps: float):
        w = sd[f"{c.torch}.conv.weight"]
        self.const(f"{c.tf}/conv2d_params", np.transpose(w, (2, 3, 1, 0)))
        pad = b"SAME" if c.pad != (0, 0) else b"VALID"
        conv = self.node(f"{c.tf}/Conv2D", "Conv2D", [x, f"{c.tf}/conv2d_params"], T="type:float",
                         strides=[1, c.stride, c.stride, 1], padding=pad, data_format=b"NHWC",
                         use_cudnn_on_gpu=True)
        bn = f"{c.tf}/batchnorm"
        for key, tv in (("beta", "bias"), ("gamma", "weight"), ("moving_mean", "running_mean"),
                        ("moving_variance", "running_var")):
            self.const(f"{bn}/{key}", sd[f"{c.torch}.bn.{tv}"])
        self.node(bn, "BatchNormWithGlobalNormalization",
                  [conv, f"{bn}/moving_mean", f"{bn}/moving_variance", f"{bn}/beta", f"{bn}/gamma"],
                  T="type:float", variance_epsilon=float(eps),
                  scale_after_normalization=bool(scale_after_normalization))
        return self.node(c.tf, "Relu", [bn], T="type:float")

    def pool(self, p: Pool, x: str, kind: str | None = None):
        op = {"max": "MaxPool", "avg": "AvgPool"}[kind or p.kind]
        return self.node(p.tf, op, [x], T="type:float", ksize=[1, p.k, p.k, 1],
                         strides=[1, p.stride, p.stride, 1], padding=b"SAME" if p.pad else b"VALID",
                         data_format=b"NHWC")

    def concat(self, name, inputs):
        axis = self.const(f"{name}/axis", np.array(3, np.int32))
        return self.node(name, "ConcatV2", [*inputs, axis], T="type:float", N=len(inputs), Tidx="type:int32")


def build_graphdef(sd: dict, image_size: int = 299, scale_after_normalization: bool = False,
                   eps: float = 1e-3):
    """A GraphDef with the 2015 graph's names, ops and shapes, from a torchvision-layout state."""
    tf = import_tensorflow()
    g = _GraphWriter(tf)
    g.node("ExpandDims", "Placeholder", dtype="type:float")
    g.gd.node[-1].attr["dtype"].type = g.F
    g.const("ResizeBilinear/size", np.array([image_size, image_size], np.int32))
    x = g.node("ResizeBilinear", "ResizeBilinear", ["ExpandDims", "ResizeBilinear/size"],
               T="type:float", align_corners=False)
    g.const("Sub/y", np.float32(128.0))
    x = g.node("Sub", "Sub", [x, "Sub/y"], T="type:float")
    g.const("Mul/y", np.float32(1 / 128))
    x = g.node("Mul", "Mul", [x, "Mul/y"], T="type:float")
    for item in STEM:
        x = g.conv(item, x, sd, scale_after_normalization, eps) if isinstance(item, Conv) else g.pool(item, x)
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
    x = g.node("pool_3", "AvgPool", [x], T="type:float", ksize=[1, 8, 8, 1], strides=[1, 1, 1, 1],
               padding=b"VALID", data_format=b"NHWC")
    g.const("pool_3/_reshape/shape", np.array([1, 2048], np.int32))
    x = g.node("pool_3/_reshape", "Reshape", [x, "pool_3/_reshape/shape"], T="type:float", Tshape="type:int32")
    g.const("softmax/weights", sd["fc.weight"].T)
    g.const("softmax/biases", sd["fc.bias"])
    mm = g.node("softmax/logits/MatMul", "MatMul", [x, "softmax/weights"], T="type:float",
                transpose_a=False, transpose_b=False)
    lg = g.node("softmax/logits", "BiasAdd", [mm, "softmax/biases"], T="type:float", data_format=b"NHWC")
    g.node("softmax", "Softmax", [lg], T="type:float")
    g.gd.versions.producer = GRAPH_PRODUCER
    return g.gd


def random_graph_path(seed: int) -> Path:
    """Build (once, cached) the canonical random 2015-style graph as a .pb file."""
    from ..results import atomic_write_bytes
    from .random_init import RANDOM_INIT_VERSION, random_iv3_state

    target = W.OFFICIAL["tf2015"].directory() / "random" / f"tf2015_random_{seed}_v{RANDOM_INIT_VERSION}.pb"
    if not target.exists():
        atomic_write_bytes(target, build_graphdef(random_iv3_state(seed, 1008)).SerializeToString())
    return target


class TF2015Graph(Backbone):
    name = "tf2015"
    framework = "tensorflow"
    class_layout = "tf2015_1008"
    raw_outputs = 1008
    default_bias = False
    default_norm = "zero_255"
    native_resize = ("tf1_bilinear", None)  # done inside the graph, from the original resolution
    supports_float64 = False
    fixed_input_size = 299
    has_gradients = True  # tf.gradients inside the imported graph (harness.attack)

    def _load(self) -> None:
        tf = import_tensorflow()
        self.tf = tf
        spec = self.weights_spec
        hashes = None
        if spec.kind == "random":
            path = random_graph_path(spec.seed)
        elif spec.kind in ("pretrained", "file"):
            path, hashes = W.locate("tf2015", spec, self.allow_download, user_sha256=self.weights_sha256)
        elif spec.kind == "ported":
            from ..porting import ported_state_dict, to_1008_layout
            from ..results import atomic_write_bytes

            sd, hashes, _src = ported_state_dict(spec, target="tf2015", allow_download=self.allow_download)
            path = Path(hashes["ported_cache"]).with_suffix(".pb")
            if not path.exists():  # the same graph, other weights: the 2015 implementation on them
                atomic_write_bytes(path, build_graphdef(to_1008_layout(sd)).SerializeToString())
        else:
            raise HarnessError(f"tf2015 backbone: unsupported weights {spec}")
        data, self._label_map = read_graph_bytes(Path(path))
        gd = parse_graphdef(data, path, tf)
        consts = graph_constants(gd, {"softmax/weights", "softmax/biases", "ResizeBilinear/size"})
        mm = next(n for n in gd.node if n.name == "softmax/logits/MatMul")
        wname = mm.input[1].split(":")[0]
        if wname not in consts:
            consts.update(graph_constants(gd, {wname}))
        self._W = consts[wname].astype(np.float32)            # 2048 x 1008
        self._b = consts.get("softmax/biases", np.zeros(self._W.shape[1])).astype(np.float32)
        if self._W.shape != (2048, 1008):
            raise HarnessError(f"tf2015: softmax weights have shape {self._W.shape}, expected (2048, 1008)")
        self.graph_input_size = int(consts.get("ResizeBilinear/size", np.array([299, 299]))[0])
        graph = tf.Graph()
        with graph.as_default():
            inp = tf.compat.v1.placeholder(tf.float32, [None, None, None, 3], name="harness_input")
            try:
                (pool,) = tf.compat.v1.import_graph_def(gd, input_map={"ExpandDims:0": inp},
                                                        return_elements=["pool_3:0"], name="")
            except Exception as exc:
                raise HarnessError(f"tf2015: cannot import {path} ({type(exc).__name__}: {str(exc).splitlines()[0][:160]})") from None
        self._graph, self._inp, self._pool = graph, inp, pool
        self._sess = tf.compat.v1.Session(graph=graph)
        self.weights_info = W.weights_record(spec, Path(path), hashes, W.OFFICIAL["tf2015"])
        if spec.kind == "ported":
            self.weights_info.update({k: hashes[k] for k in ("source_sha256", "port_version", "ported_cache")})

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
        return {"resize_location": "inside the graph (ResizeBilinear)" if self.resize_method == "tf1_bilinear"
                else "harness, before the graph (graph resize is then 299->299, an identity)",
                "label_map": "from the tgz" if self._label_map else "assumed devkit ids (see harness.imagenet)"}

    def framework_versions(self) -> dict:
        return {"tensorflow": package_version("tensorflow")}
