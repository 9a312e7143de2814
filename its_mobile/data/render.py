"""Word images as a screen reader or a phone camera sees them: many fonts, sizes, weights,
colours, inverted text, textured backgrounds, blur, noise, small rotation and perspective.

Fonts are split by family into training and evaluation sets, so evaluation reads fonts that
training never saw. Every render is a pure function of (word, font, rng).
"""

from __future__ import annotations

import functools
import hashlib
import io
import re
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from its_mobile.constants import IMG_H, IMG_W

FONT_DIRS = (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"), Path.home() / ".fonts")
# Decorative and symbol faces that do not draw Latin letters as letters.
_SKIP = ("dingbat", "d050000l", "symbol", "music", "math", "keyboard", "initials", "emoji", "z003", "cmsy", "cmex", "stixsize", "lastresort", "nushu")
_STYLE_WORDS = re.compile(
    r"\b(regular|bold|italic|oblique|light|thin|medium|semibold|black|heavy|hairline|condensed|narrow|"
    r"extra|ultra|demi|book|display|mono|ps|text|\d+)\b"
)
EVAL_FONT_PERCENT = 20  # families held out for evaluation


def _matplotlib_fonts() -> list[Path]:
    try:
        import matplotlib
    except ImportError:
        return []
    return sorted((Path(matplotlib.get_data_path()) / "fonts" / "ttf").glob("*.ttf"))


def _inspect(path: Path) -> str | None:
    """The font's family key if it draws every Latin letter, else None.

    The key is the family name with style words removed, so that "DejaVu Sans Condensed" and
    "DejaVu Sans Mono" land with "DejaVu Sans" and a held-out family is held out whole.
    """
    try:
        from fontTools.ttLib import TTFont

        with TTFont(str(path), fontNumber=0, lazy=True) as f:
            cmap = f.getBestCmap() or {}
            name = f["name"].getDebugName(16) or f["name"].getDebugName(1) or path.stem
    except Exception:
        return None
    if not all(ord(c) in cmap for c in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"):
        return None
    return " ".join(_STYLE_WORDS.sub(" ", name.lower()).split()) or name.lower()


@functools.cache
def find_fonts() -> tuple[tuple[Path, ...], tuple[Path, ...]]:
    """(training fonts, evaluation fonts), each sorted; evaluation families never train.

    With a single family on the machine (a bare CI box) both sets hold it, which is only
    good enough for tests.
    """
    files = {p for d in FONT_DIRS if d.is_dir() for p in d.rglob("*") if p.suffix.lower() in (".ttf", ".otf")}
    files |= set(_matplotlib_fonts())
    family = {p: _inspect(p) for p in sorted(files) if not any(s in p.name.lower() for s in _SKIP)}
    fonts = [p for p, fam in family.items() if fam]
    if not fonts:
        raise RuntimeError("no font that draws Latin letters was found (install fonts-dejavu or matplotlib)")

    def held(p: Path) -> bool:
        return int(hashlib.sha1(family[p].encode()).hexdigest()[:8], 16) % 100 < EVAL_FONT_PERCENT

    train = tuple(p for p in fonts if not held(p))
    evaluation = tuple(p for p in fonts if held(p))
    if not train or not evaluation:
        return tuple(fonts), tuple(fonts)
    return train, evaluation


@functools.cache
def _font(path: Path, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(path), size)


def _case(word: str, rng: np.random.Generator) -> str:
    r = rng.random()
    return word.upper() if r < 0.2 else word.capitalize() if r < 0.45 else word


def _colours(rng: np.random.Generator, noisy: bool) -> tuple[int, int]:
    """(text, background) grey levels with enough contrast to read; sometimes inverted."""
    contrast = rng.uniform(90, 255) if noisy else rng.uniform(180, 255)
    dark = rng.uniform(0, 255 - contrast)
    light = dark + contrast
    return (int(light), int(dark)) if rng.random() < 0.25 else (int(dark), int(light))


def render(word: str, font: Path, rng: np.random.Generator, noisy: bool) -> np.ndarray:
    """A (IMG_H, IMG_W) uint8 grayscale image of `word`.

    clean: plain text, varied case, size, margins and contrast.
    noisy: also colour backgrounds, gradients, rotation, perspective, blur, noise and JPEG.
    """
    text = _case(word, rng)
    size = int(rng.integers(28, 56))
    f = _font(font, size)
    left, top, right, bottom = f.getbbox(text)
    pad_x, pad_y = rng.integers(2, 14, size=2) if noisy else rng.integers(2, 8, size=2)
    w, h = right - left + 2 * pad_x, bottom - top + 2 * pad_y
    fg, bg = _colours(rng, noisy)
    img = Image.new("L", (int(w), int(h)), bg)
    if noisy and rng.random() < 0.5:
        # A linear gradient across the background, as lighting on paper or a screen does.
        ramp = np.linspace(0, rng.uniform(-60, 60), int(w))[None, :] + np.zeros((int(h), 1))
        img = Image.fromarray(np.clip(np.asarray(img, np.float32) + ramp, 0, 255).astype(np.uint8))
    ImageDraw.Draw(img).text((pad_x - left, pad_y - top), text, fill=fg, font=f)
    if noisy:
        img = _distort(img, rng, bg)
    arr = np.asarray(img.resize((IMG_W, IMG_H), Image.BILINEAR), dtype=np.float32)
    if noisy:
        arr += rng.normal(0, rng.uniform(0, 14), arr.shape)
    arr = np.clip(arr, 0, 255).astype(np.uint8)
    if noisy and rng.random() < 0.3:
        arr = _jpeg(arr, int(rng.integers(20, 70)))
    return arr


def _distort(img: Image.Image, rng: np.random.Generator, bg: int) -> Image.Image:
    w, h = img.size
    if rng.random() < 0.7:
        img = img.rotate(float(rng.uniform(-5, 5)), resample=Image.BILINEAR, expand=True, fillcolor=bg)
        w, h = img.size
    if rng.random() < 0.5:
        # Perspective: move each corner by up to 8% of the height, as a hand-held camera does.
        d = rng.uniform(-0.08, 0.08, size=8) * h
        quad = (d[0], d[1], d[2], h + d[3], w + d[4], h + d[5], w + d[6], d[7])
        img = img.transform((w, h), Image.QUAD, quad, resample=Image.BILINEAR, fillcolor=bg)
    if rng.random() < 0.5:
        img = img.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.3, 1.6)) * h / 48))
    return img


def _jpeg(arr: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("L"))
