"""The whole image -> waveform network, one graph with static shapes for torch.export."""

from __future__ import annotations

import torch
from torch import nn

from its_mobile.constants import HOP, IMG_H, IMG_W, MAX_FRAMES, MAX_SAMPLES, MAX_WORD_LEN, PAD
from its_mobile.model.acoustic import Acoustic
from its_mobile.model.dims import ModelDims
from its_mobile.model.encoder import Encoder, ctc_collapse, ctc_greedy, shift_rows
from its_mobile.model.speaker import N_LETTERS, Speaker
from its_mobile.model.spelling import Spelling
from its_mobile.model.vocoder import Vocoder

OUTPUT_NAMES = ("waveform", "n_samples", "phonemes", "n_phonemes", "mel", "n_frames")


class ITS(nn.Module):
    def __init__(self, dims: ModelDims):
        super().__init__()
        self.dims = dims
        self.encoder = Encoder(dims.encoder, dims.n_phones if dims.speaker is None else N_LETTERS)
        if dims.speaker is not None:
            self.speaker = Speaker(dims.speaker, dims.n_phones)
        if dims.spelling is not None:
            self.spelling = Spelling(dims.spelling)
        self.acoustic = Acoustic(dims.acoustic, dims.n_phones)
        self.vocoder = Vocoder(dims.vocoder)

    def read(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """The reading half: pixels -> phonemes (B, MAX_PHONES), their mask, and for a model
        with a speaker the letters it read ("letters" (B, MAX_WORD_LEN), "n_letters" (B,))."""
        scores, letters = self.letter_scores(pixels), {}
        if self.dims.speaker is not None:
            ids, letter_mask = (ctc_collapse(scores, MAX_WORD_LEN, PAD) if self.dims.spelling is None
                                else self.spelling(scores))
            letters = {"letters": ids, "n_letters": letter_mask.sum(1)}
            scores = self.speaker(ids, letter_mask)
        phones, mask = ctc_greedy(scores)
        return phones, mask, letters

    def letter_scores(self, pixels: torch.Tensor) -> torch.Tensor:
        """The encoder's scores (B, T, V); with several spelling shifts, the mean of its
        log-probabilities over the image moved by each (all shifts one batch through the encoder)."""
        shifts = (0,) if self.dims.spelling is None else self.dims.spelling.shifts
        if shifts == (0,):
            return self.encoder(pixels)
        lp = torch.log_softmax(self.encoder(torch.cat([shift_rows(pixels, s) for s in shifts])), -1)
        return lp.reshape(len(shifts), pixels.shape[0], *lp.shape[1:]).mean(0)

    def run(self, pixels: torch.Tensor) -> dict[str, torch.Tensor]:
        """The forward pass with every intermediate result (evaluation reads durations, and the
        letters of a model with a speaker, too)."""
        phones, mask, read = self.read(pixels)  # (B, P) each
        mel, _, durations, n_frames = self.acoustic(phones, mask)
        n_samples = n_frames * HOP
        wav = self.vocoder(mel)
        # Built per frame and widened HOP times (n_samples = n_frames * HOP): the same mask as
        # arange(MAX_SAMPLES) < n_samples without a 64 KB index constant in every export.
        frame = torch.arange(MAX_FRAMES, device=wav.device).view(1, MAX_FRAMES, 1)
        keep = (frame < n_frames.view(-1, 1, 1)).float().expand(-1, MAX_FRAMES, HOP).reshape(-1, MAX_SAMPLES)
        return {"waveform": wav.clamp(-1.0, 1.0) * keep, "n_samples": n_samples, "phonemes": phones,
                "n_phonemes": mask.sum(1), "mel": mel, "n_frames": n_frames, "durations": durations, **read}

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """pixels (B, 1, IMG_H, IMG_W) float grey levels in [0, 255] ->

        waveform (B, MAX_SAMPLES) float in [-1, 1], zero past n_samples; n_samples (B,) int64;
        phonemes (B, MAX_PHONES) int64 ids, EOS from n_phonemes on; n_phonemes (B,) int64;
        mel (B, N_MELS, MAX_FRAMES) log-mel; n_frames (B,) int64.
        """
        out = self.run(pixels)
        return tuple(out[k] for k in OUTPUT_NAMES)


def example_inputs(batch: int = 1) -> tuple[torch.Tensor]:
    """The inputs export, parity and profiling all use: a mid-grey image batch."""
    return (torch.full((batch, 1, IMG_H, IMG_W), 128.0),)


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
