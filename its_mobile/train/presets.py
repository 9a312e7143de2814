"""Training presets: `tiny` (tests, under 2 minutes) and `full` (the shipped default)."""

from __future__ import annotations

from dataclasses import dataclass

from its_mobile.model import dims as D


@dataclass(frozen=True)
class StageSpec:
    steps: int
    batch: int
    lr: float
    warmup: int = 100


@dataclass(frozen=True)
class Preset:
    name: str
    teacher: D.EncoderDims
    student: D.EncoderDims
    acoustic: D.AcousticDims
    vocoder: D.VocoderDims
    speaker: D.SpeakerDims
    stages: dict  # stage name -> StageSpec
    compressed: dict  # stage name -> StageSpec of its ternary all-in-one fine-tuning
    vocoder_crop: int = 32  # mel frames per vocoder training crop (512 ms)
    spelling: D.SpellingDims = D.SpellingDims()  # fitted from the training words when a model is assembled


PRESETS = {
    "tiny": Preset(
        "tiny",
        teacher=D.TINY_TEACHER,
        student=D.TINY,
        acoustic=D.TINY_ACOUSTIC,
        vocoder=D.TINY_VOCODER,
        speaker=D.TINY_SPEAKER,
        stages={
            "acoustic": StageSpec(30, 16, 3e-3, 5),
            "vocoder": StageSpec(20, 4, 2e-3, 5),
            "speaker": StageSpec(30, 64, 3e-3, 5),
            "teacher": StageSpec(40, 32, 3e-3, 5),
            "student": StageSpec(40, 32, 3e-3, 5),
        },
        compressed={
            "acoustic": StageSpec(10, 16, 1e-3, 2),
            "vocoder": StageSpec(6, 4, 1e-3, 2),
            "speaker": StageSpec(10, 64, 1e-3, 2),
            "student": StageSpec(20, 32, 1e-3, 2),
        },
        vocoder_crop=16,
        spelling=D.READING,
    ),
    "full": Preset(
        "full",
        teacher=D.TEACHER,
        student=D.STUDENT,
        acoustic=D.AcousticDims(),
        vocoder=D.VocoderDims(),
        speaker=D.SpeakerDims(),
        stages={
            # The schedule the shipped default was trained with (bench/RESULTS.md has what ran:
            # acoustic stopped at its time budget, step 5383).
            "acoustic": StageSpec(6000, 32, 2e-3, 200),
            "vocoder": StageSpec(8000, 16, 1e-3, 200),
            # Text only, so large batches are cheap (bench/bench_g2p.py's probe trained the same way).
            "speaker": StageSpec(20000, 128, 1e-3, 500),
            "teacher": StageSpec(12000, 32, 2e-3, 200),
            "student": StageSpec(15500, 32, 2e-3, 200),
        },
        compressed={
            "acoustic": StageSpec(1500, 32, 1e-3, 100),
            "vocoder": StageSpec(1500, 16, 5e-4, 100),
            "speaker": StageSpec(4000, 128, 5e-4, 200),
            "student": StageSpec(5000, 32, 2e-3, 200),
        },
        spelling=D.READING,
    ),
}
STAGES = ("acoustic", "vocoder", "speaker", "teacher", "student")
COMPRESSED_STAGES = ("acoustic", "vocoder", "speaker", "student")  # the teacher stays in float; it only teaches
FITTED_STAGES = ("spelling",)  # counted from the data's words whenever a model is assembled, never trained


def trained_stages(chosen: tuple[str, ...], default: tuple[str, ...]) -> list[str]:
    """The stages of `chosen` (all of `default` when none is) that train: not the fitted ones."""
    return [s for s in chosen or default if s not in FITTED_STAGES]
