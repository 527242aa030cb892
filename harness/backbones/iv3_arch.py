"""Inception V3, described once, with each conv's name in every ecosystem.

The same network appears as torchvision's ``Inception3`` (module names ``Mixed_5b.branch5x5_2``),
the 2015-12-05 TF graph (node prefixes ``mixed/tower/conv_1``, weights in
``<prefix>/conv2d_params`` and ``<prefix>/batchnorm/{beta,gamma,moving_mean,moving_variance}``)
and Keras' ``InceptionV3`` (``conv2d_<k>`` / ``batch_normalization_<k>`` in creation order, which
is this list's order).  Branch order inside every block is the concatenation order in all three.

What differs between them is not here but in the ``PoolSemantics`` of each implementation:
torchvision's in-block 3x3 average pools count padded zeros (``count_include_pad=True``); TF
and Keras ``SAME`` average pools do not; and the 2015 graph's last block (``mixed_10``) uses a
max pool in its pool branch.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Conv:
    torch: str  # torchvision module path (BasicConv2d)
    tf: str  # 2015 graph node prefix
    cin: int
    cout: int
    k: tuple  # (kh, kw)
    stride: int = 1
    pad: tuple = (0, 0)  # symmetric (ph, pw); TF 'SAME' when nonzero (stride 1), else 'VALID'


@dataclass(frozen=True)
class Pool:
    kind: str  # "max" | "avg"
    k: int
    stride: int
    pad: int
    tf: str  # 2015 graph node name
    in_block: bool = False  # 3x3 stride-1 pool inside an Inception block (padding semantics differ)


@dataclass
class Block:
    torch: str
    tf: str
    branches: list = field(
        default_factory=list
    )  # list of lists (Conv | Pool | ("split", [Conv, Conv]))


def _a(t, m, cin, pf):
    return Block(
        t,
        m,
        [
            [Conv(f"{t}.branch1x1", f"{m}/conv", cin, 64, (1, 1))],
            [
                Conv(f"{t}.branch5x5_1", f"{m}/tower/conv", cin, 48, (1, 1)),
                Conv(f"{t}.branch5x5_2", f"{m}/tower/conv_1", 48, 64, (5, 5), 1, (2, 2)),
            ],
            [
                Conv(f"{t}.branch3x3dbl_1", f"{m}/tower_1/conv", cin, 64, (1, 1)),
                Conv(f"{t}.branch3x3dbl_2", f"{m}/tower_1/conv_1", 64, 96, (3, 3), 1, (1, 1)),
                Conv(f"{t}.branch3x3dbl_3", f"{m}/tower_1/conv_2", 96, 96, (3, 3), 1, (1, 1)),
            ],
            [
                Pool("avg", 3, 1, 1, f"{m}/tower_2/pool", in_block=True),
                Conv(f"{t}.branch_pool", f"{m}/tower_2/conv", cin, pf, (1, 1)),
            ],
        ],
    )


def _b(t, m, cin):
    return Block(
        t,
        m,
        [
            [Conv(f"{t}.branch3x3", f"{m}/conv", cin, 384, (3, 3), 2)],
            [
                Conv(f"{t}.branch3x3dbl_1", f"{m}/tower/conv", cin, 64, (1, 1)),
                Conv(f"{t}.branch3x3dbl_2", f"{m}/tower/conv_1", 64, 96, (3, 3), 1, (1, 1)),
                Conv(f"{t}.branch3x3dbl_3", f"{m}/tower/conv_2", 96, 96, (3, 3), 2),
            ],
            [Pool("max", 3, 2, 0, f"{m}/pool")],
        ],
    )


def _c(t, m, c7):
    r, c = (1, 7), (7, 1)
    pr, pc = (0, 3), (3, 0)
    return Block(
        t,
        m,
        [
            [Conv(f"{t}.branch1x1", f"{m}/conv", 768, 192, (1, 1))],
            [
                Conv(f"{t}.branch7x7_1", f"{m}/tower/conv", 768, c7, (1, 1)),
                Conv(f"{t}.branch7x7_2", f"{m}/tower/conv_1", c7, c7, r, 1, pr),
                Conv(f"{t}.branch7x7_3", f"{m}/tower/conv_2", c7, 192, c, 1, pc),
            ],
            [
                Conv(f"{t}.branch7x7dbl_1", f"{m}/tower_1/conv", 768, c7, (1, 1)),
                Conv(f"{t}.branch7x7dbl_2", f"{m}/tower_1/conv_1", c7, c7, c, 1, pc),
                Conv(f"{t}.branch7x7dbl_3", f"{m}/tower_1/conv_2", c7, c7, r, 1, pr),
                Conv(f"{t}.branch7x7dbl_4", f"{m}/tower_1/conv_3", c7, c7, c, 1, pc),
                Conv(f"{t}.branch7x7dbl_5", f"{m}/tower_1/conv_4", c7, 192, r, 1, pr),
            ],
            [
                Pool("avg", 3, 1, 1, f"{m}/tower_2/pool", in_block=True),
                Conv(f"{t}.branch_pool", f"{m}/tower_2/conv", 768, 192, (1, 1)),
            ],
        ],
    )


def _d(t, m):
    return Block(
        t,
        m,
        [
            [
                Conv(f"{t}.branch3x3_1", f"{m}/tower/conv", 768, 192, (1, 1)),
                Conv(f"{t}.branch3x3_2", f"{m}/tower/conv_1", 192, 320, (3, 3), 2),
            ],
            [
                Conv(f"{t}.branch7x7x3_1", f"{m}/tower_1/conv", 768, 192, (1, 1)),
                Conv(f"{t}.branch7x7x3_2", f"{m}/tower_1/conv_1", 192, 192, (1, 7), 1, (0, 3)),
                Conv(f"{t}.branch7x7x3_3", f"{m}/tower_1/conv_2", 192, 192, (7, 1), 1, (3, 0)),
                Conv(f"{t}.branch7x7x3_4", f"{m}/tower_1/conv_3", 192, 192, (3, 3), 2),
            ],
            [Pool("max", 3, 2, 0, f"{m}/pool")],
        ],
    )


def _e(t, m, cin):
    return Block(
        t,
        m,
        [
            [Conv(f"{t}.branch1x1", f"{m}/conv", cin, 320, (1, 1))],
            [
                Conv(f"{t}.branch3x3_1", f"{m}/tower/conv", cin, 384, (1, 1)),
                (
                    "split",
                    [
                        Conv(
                            f"{t}.branch3x3_2a",
                            f"{m}/tower/mixed/conv",
                            384,
                            384,
                            (1, 3),
                            1,
                            (0, 1),
                        ),
                        Conv(
                            f"{t}.branch3x3_2b",
                            f"{m}/tower/mixed/conv_1",
                            384,
                            384,
                            (3, 1),
                            1,
                            (1, 0),
                        ),
                    ],
                ),
            ],
            [
                Conv(f"{t}.branch3x3dbl_1", f"{m}/tower_1/conv", cin, 448, (1, 1)),
                Conv(f"{t}.branch3x3dbl_2", f"{m}/tower_1/conv_1", 448, 384, (3, 3), 1, (1, 1)),
                (
                    "split",
                    [
                        Conv(
                            f"{t}.branch3x3dbl_3a",
                            f"{m}/tower_1/mixed/conv",
                            384,
                            384,
                            (1, 3),
                            1,
                            (0, 1),
                        ),
                        Conv(
                            f"{t}.branch3x3dbl_3b",
                            f"{m}/tower_1/mixed/conv_1",
                            384,
                            384,
                            (3, 1),
                            1,
                            (1, 0),
                        ),
                    ],
                ),
            ],
            [
                Pool("avg", 3, 1, 1, f"{m}/tower_2/pool", in_block=True),
                Conv(f"{t}.branch_pool", f"{m}/tower_2/conv", cin, 192, (1, 1)),
            ],
        ],
    )


STEM = [
    Conv("Conv2d_1a_3x3", "conv", 3, 32, (3, 3), 2),
    Conv("Conv2d_2a_3x3", "conv_1", 32, 32, (3, 3)),
    Conv("Conv2d_2b_3x3", "conv_2", 32, 64, (3, 3), 1, (1, 1)),
    Pool("max", 3, 2, 0, "pool"),
    Conv("Conv2d_3b_1x1", "conv_3", 64, 80, (1, 1)),
    Conv("Conv2d_4a_3x3", "conv_4", 80, 192, (3, 3)),
    Pool("max", 3, 2, 0, "pool_1"),
]

BLOCKS = [
    _a("Mixed_5b", "mixed", 192, 32),
    _a("Mixed_5c", "mixed_1", 256, 64),
    _a("Mixed_5d", "mixed_2", 288, 64),
    _b("Mixed_6a", "mixed_3", 288),
    _c("Mixed_6b", "mixed_4", 128),
    _c("Mixed_6c", "mixed_5", 160),
    _c("Mixed_6d", "mixed_6", 160),
    _c("Mixed_6e", "mixed_7", 192),
    _d("Mixed_7a", "mixed_8"),
    _e("Mixed_7b", "mixed_9", 1280),
    _e("Mixed_7c", "mixed_10", 2048),
]

POOL_FEATURES = 2048


def _walk(branch):
    for item in branch:
        if isinstance(item, tuple):
            yield from item[1]
        else:
            yield item


def all_convs() -> list[Conv]:
    """Every conv in creation order (= Keras conv2d_<k> order, torchvision state-dict order)."""
    out = [c for c in STEM if isinstance(c, Conv)]
    for b in BLOCKS:
        for br in b.branches:
            out += [c for c in _walk(br) if isinstance(c, Conv)]
    return out


@dataclass(frozen=True)
class PoolSemantics:
    """How an implementation pads its in-block average pools and pools its last block."""

    count_include_pad: bool = True  # torchvision True; TF / Keras 'SAME' False
    last_block_pool: str = "avg"  # the 2015 graph: "max" in mixed_10's pool branch

    @classmethod
    def of(cls, implementation: str) -> PoolSemantics:
        return {
            "torchvision": cls(True, "avg"),
            "keras": cls(False, "avg"),
            "tf2015": cls(False, "max"),
        }[implementation]
