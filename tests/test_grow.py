"""Growing a trained encoder wider (Net2WiderNet) or deeper: same scores, every tier, float and ternary."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from its_mobile import checkpoint
from its_mobile.compress.ternary import fake_ternary, latent, ternary_names
from its_mobile.compress.tiers import TIERS, run_tier, tier_dims, tier_forward
from its_mobile.model.dims import TINY, TINY_ACOUSTIC, TINY_SPEAKER, TINY_VOCODER, EncoderDims, ModelDims
from its_mobile.model.encoder import Encoder
from its_mobile.model.its import ITS
from its_mobile.model.grow import (deepen_encoder, deepening, grow_encoder, widen_encoder, widened_dims,
                                    widening_factor)
from its_mobile.train.loop import source_part
from its_mobile.train.presets import PRESETS

N_PHONES = 30
NARROW = EncoderDims(width=16, depth=4, heads=2, last_width=24, stem_width=8)


def _encoder(dims: EncoderDims, seed: int = 0) -> Encoder:
    torch.manual_seed(seed)
    return Encoder(dims, N_PHONES).eval()


def _cut(dims: EncoderDims, tier: str) -> Encoder:
    return Encoder(tier_dims(ModelDims(N_PHONES, dims), TIERS[tier]).encoder, N_PHONES)


def _pixels() -> torch.Tensor:
    return torch.rand(4, 1, 32, 128, generator=torch.Generator().manual_seed(1)) * 255


@pytest.mark.parametrize("tier", list(TIERS))
@pytest.mark.parametrize("ternary", [False, True])
def test_widened_encoder_scores_as_before(tier, ternary):
    narrow = _encoder(NARROW)
    names = set(ternary_names(narrow, "encoder.")) if ternary else set()
    _on_codes(narrow, names)
    wide = _encoder(widened_dims(NARROW, 3), seed=1)
    wide.load_state_dict(widen_encoder(narrow.state_dict(), NARROW, 3))
    with torch.no_grad():
        before = run_tier(_cut(NARROW, tier), _ternary_only(narrow, names), _pixels())
        after = run_tier(_cut(widened_dims(NARROW, 3), tier), _ternary_only(wide, names), _pixels())
        # As training runs it: the head also in 8 bits, whose row scales the split inputs move
        # (the 8-bit rounding differs, not the function).
        trained = tier_forward(wide, _cut(widened_dims(NARROW, 3), tier), names, _pixels())
    assert before.abs().max() > 1.0  # scores, not zeros
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(trained, before, rtol=0, atol=0.02 * float(before.abs().max()))


def _on_codes(model: Encoder, names: set[str]) -> None:
    """As training continues a packed model: the ternary weights sit on their codes."""
    with torch.no_grad():
        for name, w in model.named_parameters():
            if name in names:
                w.copy_(latent(fake_ternary(w)))


def _ternary_only(model: Encoder, names: set[str]) -> dict[str, torch.Tensor]:
    return {n: fake_ternary(w) if n in names else w for n, w in model.named_parameters()}


def test_copies_start_apart():
    """Equal copies would get equal gradients forever and never become new units."""
    narrow = _encoder(NARROW)
    state = widen_encoder(narrow.state_dict(), NARROW, 2)
    fc2 = state["blocks.0.fc2.weight"][0::2]  # columns 2u and 2u+1 read the copies of unit u
    assert not torch.equal(fc2[:, 0::2], fc2[:, 1::2])
    torch.testing.assert_close(fc2[:, 0::2] + fc2[:, 1::2], narrow.state_dict()["blocks.0.fc2.weight"])
    assert torch.equal(torch.sign(fc2[:, 0::2]), torch.sign(fc2[:, 1::2]))


def test_only_whole_widenings_are_recognised():
    assert widening_factor(NARROW, widened_dims(NARROW, 2)) == 2
    assert widening_factor(NARROW, NARROW) is None
    assert widening_factor(NARROW, EncoderDims(width=32, depth=4, heads=2, last_width=48, stem_width=8)) is None
    assert widening_factor(NARROW, EncoderDims(width=24, depth=4, heads=3, last_width=36, stem_width=8)) is None


def test_training_continues_a_narrower_checkpoint_in_the_wider_preset(tmp_path):
    """`train --init` grows a checkpoint whose encoder the preset's is a widening of."""
    narrow_dims = EncoderDims(width=TINY.width // 2, depth=TINY.depth, heads=TINY.heads // 2,
                              last_width=TINY.last_width // 2, stem_width=TINY.stem_width)
    torch.manual_seed(0)
    model = ITS(ModelDims(N_PHONES, narrow_dims, TINY_ACOUSTIC, TINY_VOCODER, TINY_SPEAKER)).eval()
    path = tmp_path / "narrow.safetensors"
    checkpoint.save_model(path, model, [f"p{i}" for i in range(N_PHONES)], {})
    grown = source_part(path, "student", PRESETS["tiny"], N_PHONES).eval()
    assert grown.blocks[0].fc1.in_features == TINY.width
    with torch.no_grad():
        torch.testing.assert_close(grown(_pixels()), model.encoder(_pixels()), rtol=1e-4, atol=1e-4)


DEEPER = replace(NARROW, depth=NARROW.depth + 2)


@pytest.mark.parametrize("ternary", [False, True])
def test_deepened_encoder_scores_as_before(ternary):
    """Every tier of the deeper encoder starts as the old tier two blocks deeper: `large` as
    the old `large`, `base` (which skips one top block) too, since the new blocks are the
    identity."""
    shallow = _encoder(NARROW)
    names = set(ternary_names(shallow, "encoder.")) if ternary else set()
    _on_codes(shallow, names)
    deep = _encoder(DEEPER, seed=1)
    deep.load_state_dict(deepen_encoder(shallow.state_dict(), deep.state_dict(), NARROW, 2))
    with torch.no_grad():
        before = run_tier(_cut(NARROW, "large"), _ternary_only(shallow, names), _pixels())
        after = {t: run_tier(_cut(DEEPER, t), _ternary_only(deep, names), _pixels()) for t in ("large", "base")}
    assert before.abs().max() > 1.0
    for scores in after.values():
        torch.testing.assert_close(scores, before, rtol=1e-5, atol=1e-5)


def test_new_blocks_learn():
    """The new blocks' zero projections get gradients (through the ternary straight-through
    estimator too), so they do not stay the identity."""
    shallow = _encoder(NARROW)
    deep = _encoder(DEEPER, seed=1)
    deep.load_state_dict(deepen_encoder(shallow.state_dict(), deep.state_dict(), NARROW, 2))
    names = set(ternary_names(deep, "encoder."))
    tier_forward(deep, _cut(DEEPER, "large"), names, _pixels()).square().mean().backward()
    new = NARROW.depth - 1
    for name in ("attn.out.weight", "fc2.weight"):
        assert deep.get_parameter(f"blocks.{new}.{name}").grad.abs().sum() > 0


def test_only_deepenings_are_recognised():
    assert deepening(NARROW, DEEPER) == 2
    assert deepening(NARROW, NARROW) is None
    assert deepening(DEEPER, NARROW) is None
    assert deepening(NARROW, replace(DEEPER, width=32)) is None


def test_training_continues_a_shallower_checkpoint_in_the_deeper_preset(tmp_path):
    """`train --init` grows a checkpoint whose encoder the preset's is a deepening of."""
    torch.manual_seed(0)
    model = ITS(ModelDims(N_PHONES, replace(TINY, depth=TINY.depth - 1), TINY_ACOUSTIC, TINY_VOCODER,
                        TINY_SPEAKER)).eval()
    path = tmp_path / "shallow.safetensors"
    checkpoint.save_model(path, model, [f"p{i}" for i in range(N_PHONES)], {})
    grown = source_part(path, "student", PRESETS["tiny"], N_PHONES).eval()
    assert len(grown.blocks) == TINY.depth - 1
    with torch.no_grad():
        torch.testing.assert_close(grown(_pixels()), model.encoder(_pixels()), rtol=1e-5, atol=1e-5)


def test_a_phoneme_reading_checkpoint_continues_as_a_letter_reader(tmp_path):
    """A model from before the speaker (its encoder read phonemes) continues in a preset with
    one: the encoder keeps every weight but its head, which starts new and scores letters; the
    speaker it lacks must come from a float run."""
    from its_mobile.errors import BadInput
    from its_mobile.model.speaker import N_LETTERS

    torch.manual_seed(0)
    model = ITS(ModelDims(N_PHONES, TINY, TINY_ACOUSTIC, TINY_VOCODER)).eval()
    path = tmp_path / "phonemes.safetensors"
    checkpoint.save_model(path, model, [f"p{i}" for i in range(N_PHONES)], {})
    encoder = source_part(path, "student", PRESETS["tiny"], N_PHONES)
    assert encoder.head.out_channels == N_LETTERS
    old = model.encoder.state_dict()
    assert all(torch.equal(v, old[k]) for k, v in encoder.state_dict().items() if not k.startswith("head."))
    with pytest.raises(BadInput, match="has no speaker"):
        source_part(path, "speaker", PRESETS["tiny"], N_PHONES)


def test_teacher_grows_from_the_student():
    """Each preset's teacher is its student widened, then deepened: a teacher starts from a
    trained student computing what it computed, and grow_encoder finds the way."""
    for preset in PRESETS.values():
        student, teacher = preset.student, preset.teacher
        assert widening_factor(student, replace(teacher, depth=student.depth)) is not None
        assert deepening(replace(teacher, depth=student.depth), teacher) is not None
    wider = replace(widened_dims(NARROW, 2), depth=NARROW.depth + 1)
    narrow, grown = _encoder(NARROW), _encoder(wider, seed=1)
    grown.load_state_dict(grow_encoder(narrow.state_dict(), NARROW, wider, grown.state_dict()))
    with torch.no_grad():
        torch.testing.assert_close(grown(_pixels()), narrow(_pixels()), rtol=1e-4, atol=1e-4)
    assert grow_encoder(narrow.state_dict(), wider, NARROW, narrow.state_dict()) is None
