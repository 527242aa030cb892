"""Sources generated on the fly, no files needed: ``noise`` and ``synthetic``.

Every sample i is drawn from ``numpy.random.default_rng([seed, i])``, so any sample can be
produced alone (random access, any order) and the same seed gives the same pixels.  numpy only
promises stable streams per version, so its version is part of the fingerprint.
"""

from __future__ import annotations

import numpy as np

from .. import settings as S
from .base import ImageSource

GENERATOR_VERSION = 1


class _PerSampleSource(ImageSource):
    default_count = 50_000

    @classmethod
    def entries(cls) -> list:
        return [
            S.Setting("count", S.Int(lo=1), cls.default_count, "images in the set"),
            S.Setting("size", S.Int(lo=1, hi=4096), 32, "height = width in pixels"),
            S.Setting(
                "seed",
                S.Seed(),
                0,
                "seeds the pixels (a shuffle of the order has its own order_seed)",
                yaml="${seed}",
            ),
            *super().entries(),
        ]

    def __init__(self, *, count, size, seed, **kw):
        # `seed` seeds the pixels; a shuffle of the order has its own `order_seed`
        super().__init__(**kw)
        self.count, self.size, self.pixel_seed = int(count), int(size), int(seed)

    def _total(self) -> int:
        return self.count

    def _read(self, idx):
        out = np.empty((len(idx), self.size, self.size, 3), dtype=np.uint8)
        for k, i in enumerate(idx):
            out[k] = self._sample(np.random.default_rng([self.pixel_seed, int(i)]), int(i))
        return out

    def _sample(self, rng, i):
        raise NotImplementedError

    def _resolution(self):
        return (self.size, self.size)

    def _identity(self) -> dict:
        return {
            "count": self.count,
            "size": self.size,
            "pixel_seed": self.pixel_seed,
            "generator_version": GENERATOR_VERSION,
            "numpy": np.__version__,
            **self._params(),
        }

    def _params(self) -> dict:
        return {}

    def _extra_provenance(self) -> dict:
        return {
            "pixel_seed": self.pixel_seed,
            "count": self.count,
            "size": self.size,
            **self._params(),
        }


class NoiseSource(_PerSampleSource):
    """i.i.d. uniform uint8 pixels (default 32 x 32, the CIFAR size).

    This is an assumption: the paper does not say how its "random noise" images were made
    (../shared/paper-notes.md section 5).
    """

    kind = "noise"
    summary = (
        "i.i.d. uniform uint8 noise images (an assumption: the paper does not say how its noise "
        "was made)."
    )

    def paper_dataset(self) -> str | None:
        return "noise"

    def _sample(self, rng, i):
        return rng.integers(0, 256, size=(self.size, self.size, 3), dtype=np.uint8)

    def _extra_provenance(self) -> dict:
        d = super()._extra_provenance()
        d["assumption"] = "uniform uint8 pixels; the paper does not say how its noise was made"
        return d


FAMILIES = (
    "disk",
    "rectangle",
    "stripes",
    "linear_gradient",
    "checkerboard",
    "ring",
    "triangle",
    "blobs",
    "cross",
    "radial_gradient",
)


def _color(rng):
    return rng.integers(0, 256, size=3).astype(np.float64)


class SyntheticSource(_PerSampleSource):
    """Procedural images in visually distinct families (the label is the family index).

    ``arrangement``: ``interleaved`` (sample i has family i mod F) or ``class_sorted`` (families
    in contiguous runs, like an ImageFolder), for demos of order effects.
    """

    kind = "synthetic"
    summary = (
        "Procedurally generated shapes/gradients/textures in 10 families, at CIFAR size; no "
        "files needed."
    )
    default_count = 1000

    @classmethod
    def entries(cls) -> list:
        base = super().entries()
        return [
            *base[:3],
            S.Setting(
                "families", S.Int(lo=1, hi=len(FAMILIES)), len(FAMILIES), "classes (families)"
            ),
            S.Setting(
                "arrangement",
                S.Choice(("interleaved", "class_sorted")),
                "interleaved",
                "interleaved | class_sorted",
            ),
            *base[3:],
        ]

    def __init__(self, *, families, arrangement, **kw):
        super().__init__(**kw)
        self.families, self.arrangement = int(families), arrangement

    def _params(self) -> dict:
        return {"families": self.families, "arrangement": self.arrangement}

    def family_of(self, i: int) -> int:
        if self.arrangement == "interleaved":
            return i % self.families
        return i * self.families // self.count

    def _all_labels(self):
        return np.array([self.family_of(i) for i in range(self.count)], dtype=np.int64)

    def _sample(self, rng, i):
        s = self.size
        yy, xx = np.mgrid[0:s, 0:s].astype(np.float64) / max(s - 1, 1)
        fam = FAMILIES[self.family_of(i)]
        bg, fg = _color(rng), _color(rng)
        cy, cx = rng.uniform(0.3, 0.7, size=2)
        r = rng.uniform(0.15, 0.35)
        if fam == "disk":
            mask = (yy - cy) ** 2 + (xx - cx) ** 2 < r**2
        elif fam == "rectangle":
            h, w = rng.uniform(0.2, 0.45, size=2)
            mask = (abs(yy - cy) < h) & (abs(xx - cx) < w)
        elif fam == "stripes":
            period = rng.uniform(0.1, 0.3)
            coord = xx if rng.random() < 0.5 else yy
            mask = (coord / period) % 1.0 < 0.5
        elif fam == "checkerboard":
            period = rng.uniform(0.12, 0.3)
            mask = ((xx // period) + (yy // period)) % 2 == 0
        elif fam == "ring":
            d = np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2)
            mask = (d < r) & (d > r * 0.6)
        elif fam == "triangle":
            mask = (yy > cy - r) & (abs(xx - cx) < (yy - (cy - r)) * 0.6) & (yy < cy + r)
        elif fam == "cross":
            t = rng.uniform(0.05, 0.12)
            mask = (
                ((abs(yy - cy) < t) | (abs(xx - cx) < t))
                & (abs(yy - cy) < r + 0.1)
                & (abs(xx - cx) < r + 0.1)
            )
        else:
            mask = None
        if mask is not None:
            img = np.where(mask[..., None], fg, bg)
        elif fam == "linear_gradient":
            ang = rng.uniform(0, 2 * np.pi)
            t = np.clip((np.cos(ang) * (xx - 0.5) + np.sin(ang) * (yy - 0.5)) + 0.5, 0, 1)[
                ..., None
            ]
            img = (1 - t) * bg + t * fg
        elif fam == "radial_gradient":
            t = np.clip(np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2) / 0.7, 0, 1)[..., None]
            img = (1 - t) * fg + t * bg
        else:  # blobs: smooth low-frequency colour texture
            coarse = rng.uniform(0, 255, size=(4, 4, 3))
            gy = np.clip(yy * 3, 0, 3 - 1e-9)
            gx = np.clip(xx * 3, 0, 3 - 1e-9)
            y0, x0 = gy.astype(int), gx.astype(int)
            fy, fx = (gy - y0)[..., None], (gx - x0)[..., None]
            img = (
                (1 - fy) * (1 - fx) * coarse[y0, x0]
                + (1 - fy) * fx * coarse[y0, x0 + 1]
                + fy * (1 - fx) * coarse[y0 + 1, x0]
                + fy * fx * coarse[y0 + 1, x0 + 1]
            )
        img = img + rng.normal(0, 6, size=img.shape)  # mild sensor-like noise
        return np.clip(np.rint(img), 0, 255).astype(np.uint8)
