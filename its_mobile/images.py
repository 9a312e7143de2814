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
    return np.asarray(grey.resize((IMG_W, IMG_H), Image.BILINEAR), dtype=np.uint8)
