import dataclasses

import numpy as np
import pytest
import torch

from its_mobile.constants import EOS, MAX_FRAMES, MAX_PHONES, MAX_SAMPLES, N_MELS, VOC_HOP, VOC_N_FFT
from its_mobile.model import dims as D
from its_mobile.model.encoder import Encoder, ctc_collapse, shift_rows, stretch_contrast
from its_mobile.model.its import ITS, OUTPUT_NAMES, count_params, example_inputs
from its_mobile.model.speaker import ALPHABET, N_LETTERS, Speaker, letter_ids
from its_mobile.model.vocoder import N_BINS, Vocoder, istft_basis, overlap_add_frames

N_PHONES = 40


def tiny_model(speaker: bool = True) -> ITS:
    torch.manual_seed(0)
    return ITS(D.ModelDims(N_PHONES, D.TINY, D.TINY_ACOUSTIC, D.TINY_VOCODER,
                           D.TINY_SPEAKER if speaker else None)).eval()


@pytest.mark.parametrize("speaker", [True, False])
def test_output_shapes(speaker):
    out = tiny_model(speaker)(torch.rand(3, 1, 32, 128) * 255)
    shapes = dict(zip(OUTPUT_NAMES, (o.shape for o in out)))
    assert shapes == {"waveform": (3, MAX_SAMPLES), "n_samples": (3,), "phonemes": (3, MAX_PHONES),
                      "n_phonemes": (3,), "mel": (3, N_MELS, MAX_FRAMES), "n_frames": (3,)}
    wav, n_samples, phones, n_phones, _, _ = out
    for k in range(3):
        assert not wav[k, n_samples[k]:].any()
        assert (phones[k, n_phones[k]:] == EOS).all() and (phones[k, : n_phones[k]] != EOS).all()


@pytest.mark.parametrize("speaker", [True, False])
def test_full_graph_exports_with_static_shapes(speaker):
    model = tiny_model(speaker)
    ep = torch.export.export(model, example_inputs())
    x = torch.rand(1, 1, 32, 128) * 255
    for a, b in zip(ep.module()(x), model(x)):
        torch.testing.assert_close(a, b)


def test_contrast_stretch_spans_each_image_from_0_to_255():
    x = torch.rand(2, 1, 32, 128) * 80 + 100
    x[1] = 7.0  # a blank image has no contrast to stretch
    out = stretch_contrast(x)
    assert out[0].min() == 0 and torch.isclose(out[0].max(), torch.tensor(255.0))
    assert (out[1] == 0).all()
    torch.testing.assert_close(stretch_contrast(out[:1]), out[:1])


@pytest.mark.parametrize("share", [0.0, 0.5, 1.0])
def test_the_encoder_mixes_its_share_of_the_stretched_image_into_what_it_reads(share):
    torch.manual_seed(0)
    encoder = Encoder(dataclasses.replace(D.TINY, stretch=share), N_LETTERS).eval()
    plain = Encoder(D.TINY, N_LETTERS).eval()  # reads grey levels as they are, as models before the stretch
    plain.load_state_dict(encoder.state_dict())
    sharp = stretch_contrast(torch.rand(1, 1, 32, 128) * 255)
    faded = sharp * 0.3 + 120  # grey on grey
    with torch.no_grad():
        torch.testing.assert_close(encoder(faded), plain(faded + share * (sharp - faded)), atol=1e-4, rtol=1e-4)
        gap = (encoder(faded) - encoder(sharp)).abs().max().item()
    # stretched whole, a faded word reads as its full-contrast self; otherwise not
    assert gap < 1e-4 if share == 1.0 else gap > 1e-2


def test_shift_rows_moves_the_image_and_repeats_its_edge_row():
    x = torch.arange(2 * 32 * 4, dtype=torch.float32).reshape(2, 1, 32, 4)
    down, up = shift_rows(x, 1), shift_rows(x, -2)
    assert torch.equal(down[:, :, 1:], x[:, :, :-1]) and torch.equal(down[:, :, 0], x[:, :, 0])
    assert torch.equal(up[:, :, :-2], x[:, :, 2:]) and torch.equal(up[:, :, -2:], x[:, :, -1:].expand(-1, -1, 2, -1))
    assert shift_rows(x, 0) is x


def test_several_shifts_average_the_encoders_log_probabilities_per_image():
    torch.manual_seed(0)
    model = ITS(D.ModelDims(N_PHONES, D.TINY, D.TINY_ACOUSTIC, D.TINY_VOCODER, D.TINY_SPEAKER,
                            D.SpellingDims(shifts=(1, -1)))).eval()
    x = torch.rand(3, 1, 32, 128) * 255
    with torch.no_grad():
        want = torch.stack([torch.log_softmax(model.encoder(shift_rows(x, s)), -1) for s in (1, -1)]).mean(0)
        torch.testing.assert_close(model.letter_scores(x), want)
        # each image is read from its own shifted copies, alone or in a batch
        torch.testing.assert_close(model.letter_scores(x[1:2]), want[1:2])
        one = dataclasses.replace(model.dims, spelling=D.SpellingDims())
        model.dims = one
        torch.testing.assert_close(model.letter_scores(x), model.encoder(x))


def test_a_model_saved_before_the_shifts_reads_once():
    saved = D.ModelDims(N_PHONES, D.TINY, spelling=D.SpellingDims()).to_json()
    del saved["spelling"]["shifts"]
    assert D.ModelDims.from_json(saved).spelling.shifts == (0,)
    shifted = D.ModelDims(N_PHONES, D.TINY, spelling=D.READING)
    assert D.ModelDims.from_json(shifted.to_json()) == shifted  # JSON's list back to a tuple


def test_istft_basis_matches_torch_istft():
    torch.manual_seed(0)
    frames = 2 * MAX_FRAMES
    spec = torch.randn(1, N_BINS, frames, dtype=torch.complex64)
    spec[:, 0].imag = 0
    spec[:, -1].imag = 0
    ref = torch.istft(spec, VOC_N_FFT, VOC_HOP, window=torch.hann_window(VOC_N_FFT), center=True,
                      length=frames * VOC_HOP)
    istft = istft_basis()
    ours = overlap_add_frames(torch.cat([spec.real, spec.imag], 1).transpose(1, 2), istft)
    ours = ours.flatten()[VOC_N_FFT // 2 : VOC_N_FFT // 2 + frames * VOC_HOP] * istft.inv_env
    # The last half window is covered by fewer frames; torch.istft treats it the same way.
    torch.testing.assert_close(ours[: -VOC_N_FFT], ref.flatten()[: -VOC_N_FFT], atol=1e-5, rtol=1e-4)


def test_length_regulator_places_frames():
    model = tiny_model()
    phones = torch.tensor([[5, 6, 7] + [EOS] * (MAX_PHONES - 3)])
    mask = (phones != EOS).long()
    durations = torch.zeros(1, MAX_PHONES)
    durations[0, :3] = torch.tensor([2.0, 0.0, 3.0])
    mel, _, used, n_frames = model.acoustic(phones, mask, durations)
    assert n_frames.item() == 5 and used.sum().item() == 5
    assert (mel[0, :, 5:] == mel[0, 0, -1]).all()  # silence past the end


def test_sizes_of_the_shipped_architecture():
    teacher = count_params(ITS(D.ModelDims(122, D.TEACHER, speaker=D.SpeakerDims(), spelling=D.SpellingDims())))
    student = count_params(ITS(D.ModelDims(122, D.STUDENT, speaker=D.SpeakerDims(), spelling=D.SpellingDims())))
    assert student <= 2_500_000  # the seed's student: 2.46M end to end, its letter model's table included
    assert teacher >= 2.4 * student  # the foundation issue's ratio


def test_vocoder_crop_lengths():
    voc = Vocoder(D.TINY_VOCODER)
    assert voc(torch.zeros(2, N_MELS, 16)).shape == (2, 16 * 256)
    assert np.isfinite(voc(torch.randn(1, N_MELS, MAX_FRAMES)).detach().numpy()).all()


def test_embedded_default_loads_and_speaks():
    from its_mobile.checkpoint import DEFAULT, load_model
    from its_mobile.data.render import find_fonts, render
    from its_mobile.infer import speak_pixels

    model, info = load_model()  # no path: the model shipped in the package
    assert DEFAULT.stat().st_size < 5_000_000
    assert count_params(model) <= 2_500_000
    img = render("reading", find_fonts()[1][0], np.random.default_rng(0), noisy=False)
    (r,) = speak_pixels(model, info["inventory"], img[None])
    assert r.audio.dtype == np.float32 and np.abs(r.audio).max() <= 1.0
    # newest run first: one that only refitted the reading trained no stage, and runs past the
    # newest few are summed into `earlier`
    run = info["training"]
    while "student" not in run.get("stages", {}):
        run = run.get("continued_from") or run["earlier"]
    assert run["stages"]["student"]["samples"] > 0


def test_ctc_collapse_merges_repeats_drops_blanks_and_fills():
    # best ids per step: 3 3 0 3 5 0 0 7 -> 3 3 5 7, then the fill
    best = torch.tensor([[3, 3, 0, 3, 5, 0, 0, 7]])
    ids, mask = ctc_collapse(torch.nn.functional.one_hot(best, 9).float(), 6, fill=1)
    assert ids.tolist() == [[3, 3, 5, 7, 1, 1]] and mask.tolist() == [[1, 1, 1, 1, 0, 0]]
    ids, mask = ctc_collapse(torch.nn.functional.one_hot(best, 9).float(), 2, fill=0)
    assert ids.tolist() == [[3, 3]] and mask.tolist() == [[1, 1]]  # the rest does not fit


def test_letter_ids():
    ids = letter_ids(["Cab", "z" * 20])
    assert ids[0, :4].tolist() == [3, 1, 2, 0] and (ids[1] == len(ALPHABET)).all()
    assert ids.max() < N_LETTERS


def test_speaker_reads_a_word_alike_alone_or_padded_in_a_batch():
    """Padding is hidden from attention and scores only the blank: a short word next to a long
    one gets the same phoneme scores as alone, and its padding slots say nothing."""
    torch.manual_seed(0)
    speaker = Speaker(D.TINY_SPEAKER, N_PHONES).eval()
    letters = torch.from_numpy(letter_ids(["cat", "elephants"]))
    mask = (letters != 0).long()
    with torch.no_grad():
        both, alone = speaker(letters, mask), speaker(letters[:1], mask[:1])
    torch.testing.assert_close(both[:1, :6], alone[:, :6])
    assert (both[0, 6:].argmax(-1) == 0).all()  # 3 letters x 2 slots, then blanks


def test_model_with_a_speaker_reads_letters_then_says_them():
    model = tiny_model()
    out = model.run(torch.rand(2, 1, 32, 128) * 255)
    assert model.encoder.head.out_channels == N_LETTERS
    # the phonemes are the speaker's reading of the letters the encoder read
    letters = out["letters"]
    mask = (torch.arange(letters.shape[1]) < out["n_letters"].unsqueeze(1)).long()
    phones, _ = ctc_collapse(model.speaker(letters, mask), 19, 1)
    assert torch.equal(out["phonemes"][:, :19], phones)
