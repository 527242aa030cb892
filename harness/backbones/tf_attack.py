"""The gradient path the TensorFlow 2 backbones share (Keras on TensorFlow, TF-Hub)."""

from __future__ import annotations

import numpy as np

from .. import resize as rs
from ..attack import NumpyAttackTarget
from .base import import_tensorflow


class TFEagerAttackTarget(NumpyAttackTarget):
    """GradientTape on the network input of an eager TensorFlow model (Keras, TF-Hub).

    ``forward``: network input (float32 N x S x S x 3) -> raw logits with bias; ``bias``: the
    final layer's bias to subtract when the backbone runs with ``bias=false`` (else None);
    ``columns``: the selected classes.
    """

    def __init__(self, net, settings, forward, bias, columns):
        super().__init__(net, settings)
        self.tf = import_tensorflow()
        self.fwd = forward
        self.cols = self.tf.constant(columns)
        self.bias = None if bias is None else self.tf.constant(bias, self.tf.float32)

    def start(self, x_uint8):
        s = self.net.input_size
        x = rs.resize_numpy(x_uint8, (s, s), self.net.resize_method, bool(self.net.align_corners))
        return (x * self.scale + self.offset).astype(np.float32)

    def step(self, x, t, do_step):
        tf = self.tf
        xt = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            logits = self.fwd(xt)
            if self.bias is not None:
                logits = logits - self.bias
            logits = tf.gather(logits, self.cols, axis=1)
            if do_step:
                lp = tf.nn.log_softmax(logits, axis=1)
                obj = tf.reduce_sum(tf.gather(lp, tf.constant(t), axis=1, batch_dims=1))
        lg = logits.numpy()
        if not do_step:
            return lg, x
        grad = tape.gradient(obj, xt).numpy()
        return lg, self.update(x, grad)
