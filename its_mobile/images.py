"""Load a user's image as the model's input: any common format and mode, bombs refused.

RGBA, LA and palette images are composited on white; 16-bit and CMYK are converted; the
result is the (IMG_H, IMG_W) uint8 grey image that apps and training use alike.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from its_mobile.constants import IMG_H, IMG_W
from its_mobile.errors import BadInput

MAX_PIXELS = 40_000_000  # 40 MP: more than any phone camera photo of a word needs


def to_grey(img: Image.Image) -> Image.Image:
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if arr.max() > 255 else 255.0
        return Image.fromarray((arr / top * 255.0).round().clip(0, 255).astype(np.uint8))
    if img.mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        span = max(arr.max() - arr.min(), 1e-9)
        return Image.fromarray(((arr - arr.min()) / span * 255).round().astype(np.uint8))
    if img.mode == "P" or img.mode == "PA":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "La", "RGBa"):
        white = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, img.convert("RGBA"))
    return img.convert("L")


def load_image(path: Path) -> np.ndarray:
    """(IMG_H, IMG_W) uint8 grey levels of the image at `path`; BadInput if it cannot be one."""
    path = Path(path)
    if not path.is_file():
        raise BadInput(f"image not found: {path}")
    if path.stat().st_size == 0:
        raise BadInput(f"image is empty: {path}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                w, h = img.size
                if w * h > MAX_PIXELS:
                    raise BadInput(f"image too large: {path} is {w}x{h} pixels (limit {MAX_PIXELS:,})")
                img.load()
                grey = to_grey(img)
    except BadInput:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise BadInput(f"not a readable image: {path} ({type(e).__name__})") from e
    except (OSError, ValueError, SyntaxError) as e:
        raise BadInput(f"not a readable image: {path} ({e})") from e
    return model_input(grey)


def model_input(grey: Image.Image, crop: bool = True) -> np.ndarray:
    """(IMG_H, IMG_W) uint8: the grey image stretched to the model's input, cut to its word first."""
    if crop:
        grey = crop_to_text(grey)
    return np.asarray(grey.resize((IMG_W, IMG_H), Image.BILINEAR), dtype=np.uint8)


def text_box(grey: np.ndarray) -> tuple[int, int, int, int] | None:
    """(left, top, right, bottom) around the ink of a grey image, with a margin
    like training images have (MARGIN), or None when no ink stands out from the background.

    The background is the median of the image's outer ring; ink is what differs from it by more
    than half the image's strongest contrast, so light-on-dark text works the same way, and
    speckle or a gradient weaker than the text does not count. The extremes are robust
    percentiles, so a few stray pixels do not stretch the box.
    """
    a = grey.astype(np.float32)
    h, w = a.shape
    bh, bw = max(1, h // 16), max(1, w // 16)
    ring = np.concatenate([a[:bh].ravel(), a[-bh:].ravel(), a[:, :bw].ravel(), a[:, -bw:].ravel()])
    bg = np.median(ring)
    diff = np.abs(a - bg)
    noise = np.percentile(np.abs(ring - bg), 90)
    contrast = np.percentile(diff, 99.5)
    if contrast < max(40.0, 3 * noise):
        return None
    ys, xs = np.nonzero(diff > max((contrast + noise) / 2, 2 * noise))
    top, bottom = np.percentile(ys, [0.2, 99.8])
    left, right = np.percentile(xs, [0.2, 99.8])
    pad = max(1.0, MARGIN * (bottom - top + 1))
    return (max(0, int(left - pad)), max(0, int(top - pad)),
            min(w, int(np.ceil(right + pad)) + 1), min(h, int(np.ceil(bottom + pad)) + 1))


# Measured by bench/bench_margins.py: a margin of 30% of the text height on each side, and
# cropping only below 60%, read framed images exactly as before and photos as well as framed ones.
MARGIN = 0.3  # of the text height, on each side

# Below this share of the image's width or height, the ink box is cropped to; above, the
# image is already framed as training images are and is left whole.
FRAMED = 0.6


def crop_to_text(grey: Image.Image) -> Image.Image:
    """The word cut out of a photo or screenshot with wide margins, framed as training images
    are (the model stretches whatever it gets to IMG_H x IMG_W, so a small word in a wide
    margin would reach it as a few pixels); a tightly framed image comes back unchanged."""
    # The box is found on a copy at most ~512 px wide or high: a 40 MP photo takes ~20 ms so.
    k = max(1, max(grey.size) // 512)
    box = text_box(np.asarray(grey.reduce(k) if k > 1 else grey))
    if box is None:
        return grey
    left, top, right, bottom = (min(v * k, limit) for v, limit in zip(box, grey.size * 2))
    if right - left >= FRAMED * grey.width and bottom - top >= FRAMED * grey.height:
        return grey
    return grey.crop((left, top, right, bottom))
