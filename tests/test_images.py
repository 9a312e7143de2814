"""A user's image becomes the model's input: photos with wide margins are cut to their word,
images framed as training images are left as they are."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from its_mobile.constants import IMG_H, IMG_W
from its_mobile.data.render import find_fonts, render
from its_mobile.images import crop_to_text, load_image, model_input


def framed(word: str, seed: int, noisy: bool = False) -> np.ndarray:
    return render(word, find_fonts()[1][0], np.random.default_rng(seed), noisy=noisy)


def in_margin(img: np.ndarray, height: int, width: int, at: tuple[int, int]) -> np.ndarray:
    """`img` enlarged 4x and pasted at `at` (y, x) on a canvas of its own background level."""
    big = np.asarray(Image.fromarray(img).resize((img.shape[1] * 4, img.shape[0] * 4), Image.BICUBIC))
    canvas = np.full((height, width), np.median(np.concatenate([big[0], big[-1]])), np.uint8)
    canvas[at[0] : at[0] + big.shape[0], at[1] : at[1] + big.shape[1]] = big
    return canvas


@pytest.mark.parametrize("word", ["reading", "a", "xylophone"])
@pytest.mark.parametrize("at", [(40, 60), (300, 700)])
def test_a_word_in_a_wide_margin_is_cut_out_with_the_word_whole(word, at):
    img = framed(word, seed=3)
    canvas = in_margin(img, 600, 1400, at)
    cut = crop_to_text(Image.fromarray(canvas))
    assert cut.width < 0.7 * canvas.shape[1] and cut.height < 0.6 * canvas.shape[0]
    # Every ink pixel of the word is inside the cut: the same ink, counted in both.
    ink = lambda a: int((np.abs(a.astype(int) - int(np.median(a))) > 60).sum())  # noqa: E731
    assert ink(np.asarray(cut)) == ink(canvas)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("noisy", [False, True])
def test_images_framed_as_in_training_are_left_whole(seed, noisy):
    img = framed("strength", seed, noisy)
    assert np.array_equal(model_input(Image.fromarray(img)), img)


def test_light_text_on_dark_is_found_too():
    img = 255 - framed("phone", seed=1)
    cut = crop_to_text(Image.fromarray(in_margin(img, 500, 1600, (200, 500))))
    assert cut.width < 800 and cut.height < 250


@pytest.mark.parametrize("fill", [0, 128, 255])
def test_an_image_without_ink_is_left_whole(fill):
    blank = Image.fromarray(np.full((300, 900), fill, np.uint8))
    assert crop_to_text(blank).size == blank.size


def test_load_image_crops_a_photo_to_the_models_input(tmp_path):
    img = framed("reading", seed=5)
    path = tmp_path / "photo.png"
    Image.fromarray(in_margin(img, 700, 1800, (250, 400))).save(path)
    got = load_image(path)
    assert got.shape == (IMG_H, IMG_W)
    # The word fills the input as it does in training, not a few pixels in the middle of it.
    ink_cols = np.flatnonzero((np.abs(got.astype(int) - int(np.median(got))) > 60).any(0))
    assert ink_cols[-1] - ink_cols[0] > 0.7 * IMG_W
