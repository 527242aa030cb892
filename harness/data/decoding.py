"""How one image file becomes uint8 RGB pixels, with no guessing: 16-bit, alpha, CMYK and
EXIF orientation each handled by an explicit setting (:func:`decode_image`), then the optional
preprocessing (:class:`DecodeSpec`).  Used by the file sources (:mod:`.files`) and their decode
processes (:mod:`.decode_pool`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import HarnessError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
PREPROCESS = ("none", "resize", "resize_center_crop")
RESAMPLE = ("bilinear", "bicubic", "lanczos", "nearest")
DECODE_VERSION = 2  # 2: 16-bit, alpha, CMYK and EXIF handled explicitly


def import_pil():
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = None  # trusted local research data; large scans are legitimate
    return Image


def _resample(name: str):
    Image = import_pil()
    if name not in RESAMPLE:
        raise HarnessError(f"unknown resample {name!r}; choose from {', '.join(RESAMPLE)}")
    return {
        "bilinear": Image.BILINEAR,
        "bicubic": Image.BICUBIC,
        "lanczos": Image.LANCZOS,
        "nearest": Image.NEAREST,
    }[name]


ALPHA = ("error", "drop", "white", "black")
CMYK = ("error", "naive")
EXIF = ("apply", "ignore")
_ALPHA_MODES = ("RGBA", "LA", "RGBa", "La", "PA")


def decode_image(im, alpha: str = "error", cmyk: str = "error", exif_orientation: str = "apply"):
    """A PIL image as uint8 H x W x 3 RGB, refusing to guess; returns (array, what was done).

    * 16-bit (``I;16*``, and ``I`` from a 16-bit PNG): high byte, ``v >> 8`` (libpng's
      ``strip_16``; Pillow does the same for 16-bit RGB);
    * grayscale / bilevel / palette / YCbCr: exact conversion to RGB;
    * alpha: dropped when every pixel is opaque; otherwise ``alpha`` decides (``error``,
      ``drop``, composite on ``white`` or ``black``);
    * CMYK: converted through its embedded ICC profile; without one only ``cmyk=naive``
      (Pillow's profile-free formula) converts it;
    * EXIF orientation: applied (``apply``, what image viewers show) or ``ignore``d;
    * float (``F``) and 32-bit integer images: an error (their range is unknown).
    """
    from PIL import ImageOps

    done = []
    if exif_orientation == "apply":
        orient = im.getexif().get(0x0112, 1)
        if orient not in (None, 1):
            im = ImageOps.exif_transpose(im)
            done.append("exif_rotated")
    mode = im.mode
    if mode.startswith("I;16") or mode == "I":
        x = np.asarray(im)
        if mode == "I" and (x.min() < 0 or x.max() > 65535 or im.format != "PNG"):
            raise HarnessError(
                f"{mode} image with values {x.min()}..{x.max()}: not 8 or 16 bit; "
                "convert it to 8-bit RGB"
            )
        g = (x.astype(np.uint32) >> 8).astype(np.uint8)
        return np.repeat(g[..., None], 3, axis=2), done + ["16bit_to_8bit"]
    if mode == "F":
        raise HarnessError("float image (mode F): its value range is unknown; save 8-bit RGB")
    if mode == "P" and "transparency" in im.info:
        im, mode = im.convert("RGBA"), "RGBA"
    if mode in _ALPHA_MODES:
        rgba = np.asarray(im.convert("RGBA"))
        a = rgba[..., 3]
        if a.min() == 255:
            return np.ascontiguousarray(rgba[..., :3]), done + ["alpha_opaque_dropped"]
        if alpha == "error":
            raise HarnessError(
                f"image has transparent pixels (alpha down to {a.min()}); say what they should "
                "be: dataset.alpha=drop, white or black"
            )
        if alpha == "drop":
            return np.ascontiguousarray(rgba[..., :3]), done + ["alpha_dropped"]
        bg = 255.0 if alpha == "white" else 0.0
        w = a[..., None].astype(np.float64) / 255.0
        out = np.rint(rgba[..., :3] * w + bg * (1 - w)).astype(np.uint8)
        return out, done + [f"alpha_on_{alpha}"]
    if mode == "CMYK":
        icc = im.info.get("icc_profile")
        if icc:
            import io

            from PIL import ImageCms

            src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            im = ImageCms.profileToProfile(
                im, src, ImageCms.createProfile("sRGB"), outputMode="RGB"
            )
            return np.asarray(im, dtype=np.uint8), done + ["cmyk_icc"]
        if cmyk != "naive":
            raise HarnessError(
                "CMYK image without a colour profile: the RGB it shows is not "
                "defined; convert it to RGB, or pass dataset.cmyk=naive"
            )
        return np.asarray(im.convert("RGB"), dtype=np.uint8), done + ["cmyk_naive"]
    if mode in ("LAB", "HSV"):
        raise HarnessError(f"{mode} image: convert it to RGB first")
    if mode != "RGB":
        done.append(f"{mode.lower()}_to_rgb")
        im = im.convert("RGB")
    return np.asarray(im, dtype=np.uint8), done


@dataclass(frozen=True)
class DecodeSpec:
    """Everything decoding one file depends on (small and picklable: decode processes get it)."""

    kind: str
    alpha: str
    cmyk: str
    exif_orientation: str
    preprocess: str
    size: int
    crop_fraction: float
    resample: str


def preprocess_image(im, spec: DecodeSpec):
    if spec.preprocess == "none":
        return im
    rs = _resample(spec.resample)
    if spec.preprocess == "resize":
        return im.resize((spec.size, spec.size), rs)
    # resize the shorter side to size / crop_fraction, then center-crop size x size
    w, h = im.size
    short = round(spec.size / spec.crop_fraction)
    scale = short / min(w, h)
    nw, nh = max(spec.size, round(w * scale)), max(spec.size, round(h * scale))
    im = im.resize((nw, nh), rs)
    left, top = (nw - spec.size) // 2, (nh - spec.size) // 2
    return im.crop((left, top, left + spec.size, top + spec.size))


def decode_opened(im, spec: DecodeSpec):
    """(pixels, what decoding did) of an opened PIL image; no shared state (threads, processes)."""
    im.load()
    x, done = decode_image(im, spec.alpha, spec.cmyk, spec.exif_orientation)
    if spec.preprocess != "none":
        x = np.asarray(preprocess_image(import_pil().fromarray(x), spec), dtype=np.uint8)
    return x, done


def decode_file(f, spec: DecodeSpec):
    """(pixels, what decoding did) of one file; every failure is a one-line error naming it."""
    Image = import_pil()
    try:
        with Image.open(f) as im:
            return decode_opened(im, spec)
    except HarnessError as exc:
        raise HarnessError(f"{spec.kind}: image {f}: {exc}") from None
    except Exception as exc:
        raise HarnessError(
            f"{spec.kind}: cannot decode image {f} ({type(exc).__name__}: {exc}); remove or "
            "replace it, or pass skip_bad=true"
        ) from None


#: PNG text chunks from which Pillow's getexif() may also take an orientation
_PNG_ORIENTATION_TEXT = (b"Raw profile type exif", b"XML:com.adobe.xmp")


def _png_exif(raw: bytes) -> tuple[bytes | None, bool]:
    """(the eXIf chunk of a PNG, whether a text chunk may also carry an orientation), found by
    walking the chunk headers (no decompression)."""
    import struct

    pos, found, text = 8, None, False  # after the signature
    while pos + 8 <= len(raw):
        length, kind = struct.unpack(">I4s", raw[pos : pos + 8])
        if kind == b"eXIf" and found is None:
            found = raw[pos + 8 : pos + 8 + length]
        elif kind in (b"tEXt", b"zTXt", b"iTXt"):
            key = raw[pos + 8 : pos + 8 + min(length, 80)].split(b"\0", 1)[0]
            text = text or key in _PNG_ORIENTATION_TEXT
        elif kind == b"IEND":
            break
        pos += 12 + length  # length, type, data, crc
    return found, text


def header_orientation(im, raw: bytes) -> int:
    """EXIF orientation of an opened, not yet decoded image, read from the file's bytes.

    For PNG, Pillow's ``getexif()`` decodes the whole image first (an eXIf chunk may follow the
    pixel data), which made the scan decode every PNG; the chunk walk gives the same tag.
    """
    if im.format == "PNG":
        data, text = _png_exif(raw)
        if not text:  # else (ImageMagick's raw EXIF profile, XMP) ask Pillow, which decodes
            if data is None:
                return 1
            exif = import_pil().Exif()
            exif.load(data)
            return int(exif.get(0x0112, 1) or 1)
    return int(im.getexif().get(0x0112, 1) or 1)
