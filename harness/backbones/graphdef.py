"""Read a TensorFlow ``GraphDef`` (the 2015 Inception graph) without TensorFlow.

The 2015-12-05 graph's weights are ``Const`` nodes; reading them needs only the protobuf wire
format, so the original network can run in PyTorch (``tf2015_torch``) on machines without
TensorFlow (a GPU box, a core install).  Only what the harness needs is decoded: node names,
ops, inputs, and attributes of type string, int, float, bool, type, shape and tensor (dtypes
float32/float64/int32/int64/uint8, from ``tensor_content`` or the repeated value fields,
including TensorFlow's "splat" of a single value).  Tested against ``tf.make_ndarray`` and
``GraphDef.ParseFromString`` on the harness's own 2015-style graphs.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np

from ..errors import HarnessError

# tensorflow/core/framework/types.proto
_DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 4: np.uint8, 9: np.int64}
# TensorProto value fields: number -> (dtype, wire kind)
_VALUE_FIELDS = {
    5: (np.float32, "f32"),
    6: (np.float64, "f64"),
    7: (np.int32, "varint"),
    10: (np.int64, "varint"),
}


class GraphDefError(HarnessError):
    """The bytes are not a GraphDef this reader understands."""


def _varint(buf, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        try:
            b = buf[pos]
        except IndexError:
            raise GraphDefError("GraphDef is truncated (varint runs past the end)") from None
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7
        if shift > 70:
            raise GraphDefError("GraphDef is corrupt (varint too long)")


def fields(buf):
    """Yield (field number, wire type, value) of one protobuf message (LEN values as memoryview)."""
    buf = memoryview(buf)
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _varint(buf, pos)
        num, wt = key >> 3, key & 7
        if wt == 0:
            val, pos = _varint(buf, pos)
        elif wt == 1:
            val, pos = buf[pos : pos + 8], pos + 8
        elif wt == 2:
            n, pos = _varint(buf, pos)
            val, pos = buf[pos : pos + n], pos + n
        elif wt == 5:
            val, pos = buf[pos : pos + 4], pos + 4
        else:
            raise GraphDefError(f"GraphDef uses protobuf wire type {wt}, which is not supported")
        if pos > end:
            raise GraphDefError("GraphDef is truncated")
        yield num, wt, val


def _signed64(v: int) -> int:
    return v - (1 << 64) if v >= (1 << 63) else v


def _shape(buf) -> tuple:
    dims = []
    for num, _, val in fields(buf):
        if num == 2:  # dim
            size = 0
            for n2, _, v2 in fields(val):
                if n2 == 1:
                    size = _signed64(v2)
            dims.append(size)
    return tuple(dims)


def tensor(buf) -> np.ndarray:
    """A ``TensorProto`` as a numpy array (what ``tf.make_ndarray`` returns)."""
    dtype, shape, content = None, (), None
    values: dict = {}
    for num, wt, val in fields(buf):
        if num == 1:
            if val not in _DTYPES:
                raise GraphDefError(f"tensor dtype enum {val} is not supported")
            dtype = np.dtype(_DTYPES[val])
        elif num == 2:
            shape = _shape(val)
        elif num == 4:
            content = bytes(val)
        elif num in _VALUE_FIELDS:
            vdt, kind = _VALUE_FIELDS[num]
            out = values.setdefault(num, [])
            if kind == "varint":
                if wt == 2:
                    pos, mv = 0, val
                    while pos < len(mv):
                        v, pos = _varint(mv, pos)
                        out.append(_signed64(v))
                else:
                    out.append(_signed64(val))
            else:
                code = "<f" if kind == "f32" else "<d"
                if wt == 2:
                    out.extend(np.frombuffer(bytes(val), dtype=code).tolist())
                else:
                    out.append(struct.unpack(code, bytes(val))[0])
    if dtype is None:
        raise GraphDefError("tensor without dtype")
    count = int(np.prod(shape)) if shape else 1
    if content:
        arr = np.frombuffer(content, dtype=dtype.newbyteorder("<")).astype(dtype)
        return arr.reshape(shape)
    flat = next(iter(values.values()), [])
    if not flat:
        return np.zeros(shape, dtype)
    arr = np.asarray(flat, dtype=dtype)
    if arr.size < count:  # TensorFlow repeats the last value to fill the shape
        arr = np.concatenate([arr, np.full(count - arr.size, arr[-1], dtype)])
    return arr[:count].reshape(shape)


@dataclass
class Node:
    name: str
    op: str
    inputs: list = field(default_factory=list)
    _attrs: dict = field(default_factory=dict)  # name -> raw AttrValue bytes

    def attr(self, name: str, default=None):
        """An attribute as a Python value: str/bytes, int, float, bool, ndarray, shape tuple."""
        raw = self._attrs.get(name)
        if raw is None:
            return default
        for num, _, val in fields(raw):
            if num == 2:
                return bytes(val)
            if num in (3, 6):
                return _signed64(val)
            if num == 4:
                return struct.unpack("<f", bytes(val))[0]
            if num == 5:
                return bool(val)
            if num == 7:
                return _shape(val)
            if num == 8:
                return tensor(val)
        return default


def _node(buf) -> Node:
    node = Node("", "")
    for num, _, val in fields(buf):
        if num == 1:
            node.name = bytes(val).decode()
        elif num == 2:
            node.op = bytes(val).decode()
        elif num == 3:
            node.inputs.append(bytes(val).decode())
        elif num == 5:
            key, value = "", b""
            for n2, _, v2 in fields(val):
                if n2 == 1:
                    key = bytes(v2).decode()
                elif n2 == 2:
                    value = bytes(v2)
            node._attrs[key] = value
    return node


def read_nodes(data: bytes) -> dict[str, Node]:
    """Every node of a serialised ``GraphDef``, by name."""
    nodes = {}
    try:
        for num, wt, val in fields(data):
            if num == 1 and wt == 2:
                n = _node(val)
                nodes[n.name] = n
    except (UnicodeDecodeError, ValueError, struct.error) as exc:
        raise GraphDefError(f"not a GraphDef ({type(exc).__name__})") from None
    return nodes


def constants(nodes: dict, names=None) -> dict:
    """``Const`` nodes as numpy arrays (optionally only ``names``)."""
    return {
        n.name: n.attr("value")
        for n in nodes.values()
        if n.op == "Const" and (names is None or n.name in names)
    }
