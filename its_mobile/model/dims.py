"""Every size of the model in one dataclass, saved as JSON beside the weights (as whisper's
ModelDimensions), so a checkpoint rebuilds its own network."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace


@dataclass(frozen=True)
class EncoderDims:
    width: int  # token width of the ViT
    depth: int  # transformer blocks, the last one at last_width
    heads: int
    last_width: int  # the seed's student widens its last layer (48 -> 96)
    mlp_ratio: float = 4  # FFN hidden units per token channel (tiers cut it down)
    stem_width: int = 16  # channels of the first stem conv; the second has twice as many
    # Share of each image's contrast stretch (darkest pixel to 0, lightest to 255) mixed into
    # what the stem sees: 0 reads grey levels as they are (every model trained before it).
    stretch: float = 0.0


@dataclass(frozen=True)
class AcousticDims:
    width: int = 128
    phone_layers: int = 3  # residual conv blocks over phonemes
    mel_layers: int = 4  # residual conv blocks over frames
    kernel: int = 5


@dataclass(frozen=True)
class VocoderDims:
    width: int = 128
    layers: int = 4  # ConvNeXt blocks
    mlp_ratio: float = 3


@dataclass(frozen=True)
class SpeakerDims:
    # The size that keeps the student within 2.5M parameters end to end (2.49M).
    width: int = 64
    depth: int = 3
    heads: int = 4
    mlp_ratio: float = 3.5


@dataclass(frozen=True)
class SpellingDims:
    # A trigram whose oldest letter is one of 10 classes: 7,317 numbers, which keep the student
    # within 2.5M parameters. Weight and bonus were chosen on a third fresh set (seed 13), not on
    # the two sets results are reported on.
    classes: int = 10
    weight: float = 0.6  # of the letter model's log-probabilities against the encoder's
    bonus: float = 0.5  # added for each letter entered: the letter model's costs favour short readings
    # Rows the image is moved down (up when negative) for each reading of it the encoder makes;
    # their letter log-probabilities are averaged before spelling. (0,): one reading, as before.
    shifts: tuple[int, ...] = (0,)

    def __post_init__(self):
        object.__setattr__(self, "shifts", tuple(self.shifts))  # JSON gives a list


@dataclass(frozen=True)
class ModelDims:
    n_phones: int  # phoneme inventory incl. PAD and EOS
    encoder: EncoderDims
    acoustic: AcousticDims = AcousticDims()
    vocoder: VocoderDims = VocoderDims()
    # With a speaker the encoder reads letters and the speaker says them (model/speaker.py);
    # without one (models trained before it) the encoder reads phonemes.
    speaker: SpeakerDims | None = None
    # With a spelling, the letters are the likeliest under a letter model of the lexicon
    # (model/spelling.py) instead of CTC's greedy path.
    spelling: SpellingDims | None = None

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> "ModelDims":
        parts = {"encoder": EncoderDims, "acoustic": AcousticDims, "vocoder": VocoderDims, "speaker": SpeakerDims,
                 "spelling": SpellingDims}
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown model dims {sorted(unknown)}")
        return cls(**{k: parts[k](**v) if k in parts and v is not None else v for k, v in d.items()})


# How the student's letters are read: the image moved a row down and a row up, two readings
# averaged. On the tuning set (seed 13) the shipped default read 98.32% of words' letters exactly
# (the mean of the four splits) from one reading, 98.98% from these two, 99.00% from these and
# the image as it is, 98.97% from five (0, +-1, +-2); moving it 2 columns sideways lost words
# (97.70%; bench/bench_shifts.py). Each reading costs one more pass of the encoder.
READING = SpellingDims(shifts=(1, -1))

# Encoder sizes. The teacher is the student widened twice over and two blocks deeper, so that it
# grows from a trained student (model/grow.py) and starts where the student stands instead of
# from nothing: 6.15M parameters end to end, 2.47x the student (the issue asks for 2.4x). The
# student began as the seed's (2312.00174: width 48, last layer 96) and was then widened twice
# over (model/grow.py): at 48 it fitted its own training images no better than held-out ones.
# At 96 and 4 blocks `large` levelled off; one more 96-wide block (grown in, 2.43M parameters
# end to end) gives the tiers, which skip top blocks, one more step: `base` is now the old
# `large`.
# Its contrast stretch is half mixed in: on the tuning set (seed 13) 0.5 read best of 0, 0.25,
# 0.5, 0.75 and 1 (bench/RESULTS.md: the default, continued). Each teacher is its student with
# other sizes, so it reads as the student does (stretch, stem) and grows from it computing what
# it computed; the teacher trained before the stretch read without it (its teacher_its.safetensors
# keeps its own dims, and so reads as it trained).
STUDENT = EncoderDims(width=96, depth=5, heads=6, last_width=192, stretch=0.5)
TEACHER = replace(STUDENT, width=192, depth=7, heads=12, last_width=384)
TINY = EncoderDims(width=32, depth=2, heads=2, last_width=32, stem_width=8)
TINY_TEACHER = replace(TINY, width=64, depth=3, heads=4, last_width=64)
TINY_ACOUSTIC = AcousticDims(width=32, phone_layers=1, mel_layers=1)
TINY_VOCODER = VocoderDims(width=32, layers=1)
TINY_SPEAKER = SpeakerDims(width=32, depth=1, heads=2)
