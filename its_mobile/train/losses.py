"""Losses of the seed papers: phoneme CE + MSE distillation (0.5 / 0.5), mel L1 + SSIM,
duration MSE, and a multi-resolution STFT loss for the vocoder."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from its_mobile.constants import BLANK, EOS, PAD
from its_mobile.data.mel import log_mel

KD_ALPHA = 0.5  # seed 2312.00174: CE and MSE to the teacher weighted equally


def ctc(logits: torch.Tensor, targets: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """CTC loss of logits (B, T, V) against targets (B, P) ids, of which the first `lengths` count.

    The seed trains its phoneme head with cross-entropy; CTC is cross-entropy summed over every
    alignment of the phonemes (or letters) to the image columns.
    """
    log_probs = F.log_softmax(logits.float(), dim=-1).transpose(0, 1)  # (T, B, V)
    steps = torch.full((logits.shape[0],), logits.shape[1], dtype=torch.long, device=logits.device)
    return F.ctc_loss(log_probs, targets.long(), steps, lengths, blank=BLANK, zero_infinity=True)


def phoneme_ctc(logits: torch.Tensor, phones: torch.Tensor) -> torch.Tensor:
    """CTC loss against phonemes (B, P), EOS filling the slots after the word."""
    return ctc(logits, phones, (phones != EOS).long().cumprod(1).sum(1))


def letter_ctc(logits: torch.Tensor, letters: torch.Tensor) -> torch.Tensor:
    """CTC loss against letters (B, L), PAD filling the slots after the word."""
    return ctc(logits, letters, (letters != PAD).long().sum(1))


def distill(student: torch.Tensor, teacher: torch.Tensor, letters: torch.Tensor,
            temperature: float | None = None) -> torch.Tensor:
    """CTC against the letters plus the pull towards the teacher, 0.5 / 0.5: MSE between the
    scores (the seed's), or with a `temperature` the KL between the per-column letter
    posteriors softened by it (scaled by its square, so the gradients keep their size)."""
    if temperature is None:
        pull = F.mse_loss(student, teacher)
    else:
        pull = tier_kl(student / temperature, teacher / temperature) * temperature**2
    return (1 - KD_ALPHA) * letter_ctc(student, letters) + KD_ALPHA * pull


def tier_kl(small: torch.Tensor, large: torch.Tensor) -> torch.Tensor:
    """KL(large || small) of per-token phoneme distributions: the all-in-one seed's term that
    distils the largest tier into each smaller one."""
    return F.kl_div(F.log_softmax(small, -1), F.log_softmax(large, -1), log_target=True, reduction="batchmean") / small.shape[1]


def ssim(a: torch.Tensor, b: torch.Tensor, window: int = 7) -> torch.Tensor:
    """Mean SSIM of two (B, C, T) spectrogram images, scaled by their joint range."""
    lo, hi = torch.minimum(a.min(), b.min()), torch.maximum(a.max(), b.max())
    a, b = ((a - lo) / (hi - lo + 1e-6)).unsqueeze(1), ((b - lo) / (hi - lo + 1e-6)).unsqueeze(1)
    pool = lambda x: F.avg_pool2d(x, window, 1, window // 2, count_include_pad=False)  # noqa: E731
    mu_a, mu_b = pool(a), pool(b)
    var_a, var_b = pool(a * a) - mu_a**2, pool(b * b) - mu_b**2
    cov = pool(a * b) - mu_a * mu_b
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return s.mean()


def mel_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Masked L1 + (1 - SSIM) over (B, N_MELS, F) log-mels; mask (B, 1, F)."""
    l1 = ((pred - target).abs() * mask).sum() / (mask.sum() * pred.shape[1])
    return l1 + (1 - ssim(pred * mask, target * mask))


def duration_loss(log_dur: torch.Tensor, durations: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (((log_dur - torch.log1p(durations.float())) ** 2) * mask).sum() / mask.sum()


def stft_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Multi-resolution STFT (spectral convergence + log magnitude) plus log-mel L1 of waveforms."""
    loss = 0.0
    for n_fft, hop in ((256, 64), (512, 128), (1024, 256)):
        win = torch.hann_window(n_fft, device=pred.device)
        p = torch.stft(pred, n_fft, hop, window=win, return_complex=True).abs().clamp(min=1e-5)
        t = torch.stft(target, n_fft, hop, window=win, return_complex=True).abs().clamp(min=1e-5)
        loss = loss + torch.linalg.norm(t - p) / torch.linalg.norm(t) + (p.log() - t.log()).abs().mean()
    return loss / 3 + (log_mel(pred) - log_mel(target)).abs().mean()
