"""Run one training stage with AdamW, warm-up + cosine schedule, progress bar, periodic
checkpoints and exact resume (batches are a pure function of (seed, step)).

Stages: acoustic (phonemes -> mel, ground-truth durations), vocoder (mel -> waveform),
speaker (letters -> phonemes, from text), teacher (image -> letters), student (image -> letters,
distilled from the teacher).

With a Compression, a stage is fine-tuned from its float checkpoint with ternary weights
(quantization-aware, straight-through) and nested tiers trained in one pass: every step trains
the largest tier and one smaller tier in turn, the smaller one also distilled from the largest.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from its_mobile import checkpoint
from its_mobile.constants import EOS, HOP, MAX_FRAMES, MAX_PHONES, N_MELS
from its_mobile.data.dataset import Data
from its_mobile.compress.ternary import ternary_names
from its_mobile.compress.tiers import Tier, fake_quantized, part_dims, run_tier, shared_blocks
from its_mobile.errors import BadInput
from its_mobile.model.acoustic import SILENCE, Acoustic
from its_mobile.model.encoder import Encoder
from its_mobile.model.speaker import N_LETTERS, Speaker, letter_ids
from its_mobile.model.vocoder import Vocoder
from its_mobile.model.grow import grow_encoder
from its_mobile.train import distributed, losses
from its_mobile.train.distributed import Ranks
from its_mobile.train.presets import Preset, StageSpec

CHECKPOINT_EVERY_S = 120
PART = {"acoustic": "acoustic", "vocoder": "vocoder", "speaker": "speaker", "teacher": "encoder",
        "student": "encoder"}
IMAGE_STAGES = ("teacher", "student")


@dataclass(frozen=True)
class Compression:
    # Where the stages start: a run directory of float stages (its float student also teaches
    # the ternary one), or a whole-model checkpoint, packed or float, to continue training
    # (no float teacher then unless float_teacher names one: the tiers' own distillation remains).
    source: Path
    tiers: dict[str, Tier]  # largest first
    ternary: bool = True
    # A run directory whose float student the student stage starts from and is distilled
    # towards instead, when `source` is a whole model (the other stages still come from it):
    # a float continuation of a packed model, then quantization-aware fine-tuning from it.
    float_student: Path | None = None
    # A run directory whose float student teaches the ternary student without being its start
    # (e.g. continuing a packed model while distilling towards a better float student).
    float_teacher: Path | None = None
    # Weight of each smaller tier's own loss; its distillation from the largest always weighs 1.
    # The seed weights the sub-networks' losses. Here 0.5 and 0 cost the smaller tiers and gained
    # `large` nothing beyond noise (bench/results/tier_weight.json), so 1 stays the default.
    tier_weight: float = 1.0
    # Weight of each smaller tier's distillation (KL) from the largest. 0.3 and 0 left `large`
    # within noise of weight 1 and cost `small` about 2 points (bench/results/kl_weight.json),
    # so 1 stays the default.
    kl_weight: float = 1.0
    # How the student is pulled towards its teacher: None for the seed's MSE between scores, a
    # temperature for the KL between the letter posteriors softened by it.
    kd_temperature: float | None = None

    def start(self, stage: str) -> Path:
        """Where `stage` starts: the float_student run when it trained this stage (its student, or
        its speaker: a model without one gets it from there), else source."""
        if self.float_student is not None and (Path(self.float_student) / f"{stage}.safetensors").exists():
            return self.float_student
        return self.source

    def teacher(self, stage: str) -> Path | None:
        """The float stage file that teaches `stage`: float_teacher's teacher (grown from a
        student, it reads better than one), else its student, else the float student of the run
        `stage` starts from."""
        if stage != "student":
            return None
        if self.float_teacher is not None:
            teacher = Path(self.float_teacher) / "teacher.safetensors"
            return teacher if teacher.exists() else teacher.with_name("student.safetensors")
        start = Path(self.start(stage))
        return start / "student.safetensors" if start.is_dir() else None


def phone_mask(phones: torch.Tensor) -> torch.Tensor:
    """1 for the phonemes before the first EOS."""
    return torch.cumprod((phones != EOS).long(), dim=1)


def stage_dims(stage: str, preset: Preset):
    return {"acoustic": preset.acoustic, "vocoder": preset.vocoder, "speaker": preset.speaker,
            "teacher": preset.teacher, "student": preset.student}[stage]


def build(stage: str, preset: Preset, n_phones: int, tier: Tier | None = None) -> nn.Module:
    dims = stage_dims(stage, preset)
    if tier is not None:
        dims = part_dims(dims, tier)
    if stage == "acoustic":
        return Acoustic(dims, n_phones)
    if stage == "vocoder":
        return Vocoder(dims)
    if stage == "speaker":
        return Speaker(dims, n_phones)
    return Encoder(dims, N_LETTERS)


class Batches:
    """Deterministic batches of one stage from a data directory."""

    def __init__(self, data: Data, stage: str, preset: Preset, seed: int):
        self.data, self.stage, self.preset, self.seed = data, stage, preset, seed
        if stage in ("acoustic", "vocoder"):
            self.speech = data.speech()
            self.offsets = np.asarray(self.speech["mel_offsets"])
        elif stage == "speaker":
            self.words = data.training_word_ids()  # the training words' spellings
        else:
            self.images, self.words = data.split("train")
        if stage in IMAGE_STAGES or stage == "speaker":
            self.letters = letter_ids(data.words)

    def __call__(self, step: int, size: int, ranks: Ranks = Ranks()) -> dict[str, torch.Tensor]:
        """Batch `step` of `size` items, or this rank's slice of it: the global batch is drawn
        the same on every rank, and each loads only its own part."""
        rng = np.random.default_rng([self.seed, step])
        make = {"acoustic": self._acoustic, "vocoder": self._vocoder, "speaker": self._speaker}.get(self.stage, self._image)
        return make(rng, size, ranks)

    def _image(self, rng, size, ranks):
        idx = ranks.part(np.sort(rng.integers(len(self.words), size=size)))
        pixels = torch.from_numpy(np.asarray(self.images[idx], np.float32)).unsqueeze(1)
        return {"pixels": pixels, "letters": torch.from_numpy(self.letters[self.words[idx]])}

    def _speaker(self, rng, size, ranks):
        words = self.words[ranks.part(rng.integers(len(self.words), size=size))]
        letters = torch.from_numpy(self.letters[words])
        return {"letters": letters, "mask": (letters != 0).long(),
                "phones": torch.from_numpy(self.data.word_phones[words].astype(np.int64))}

    def _acoustic(self, rng, size, ranks):
        idx = ranks.part(rng.integers(len(self.speech["words"]), size=size))
        size = len(idx)
        phones = torch.from_numpy(self.data.word_phones[self.speech["words"][idx]].astype(np.int64))
        mel = np.full((size, N_MELS, MAX_FRAMES), SILENCE, np.float32)
        for k, i in enumerate(idx):
            m = self.speech["mel"][self.offsets[i] : self.offsets[i + 1]]
            mel[k, :, : len(m)] = m.T
        durations = torch.from_numpy(self.speech["durations"][idx].astype(np.int64))
        return {"phones": phones, "durations": durations, "mel": torch.from_numpy(mel)}

    def _vocoder(self, rng, size, ranks):
        crop = self.preset.vocoder_crop
        n_words = int(self.data.meta["n_audio_words"])
        words, where = ranks.part(rng.integers(n_words, size=size)), ranks.part(rng.random(size))
        mel = np.full((len(words), N_MELS, crop), SILENCE, np.float32)
        wav = np.zeros((len(words), crop * HOP), np.float32)
        for k, (i, u) in enumerate(zip(words, where)):
            a, b = self.offsets[i], self.offsets[i + 1]
            start = int(u * max(1, b - a - crop + 1))
            m = self.speech["mel"][a + start : min(b, a + start + crop)]
            w = self.speech["audio"][(a + start) * HOP : (a + start + len(m)) * HOP]
            mel[k, :, : len(m)] = m.T
            wav[k, : len(w)] = w / 32767.0
        return {"mel": torch.from_numpy(mel), "wav": torch.from_numpy(wav)}


def stage_loss(stage: str, forward: Callable, batch: dict,
               temperature: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, main output) of one stage's network `forward` on a batch; an image stage's
    `forward` reads the batch's "tokens" (the encoder's embedding, see StepLoss), and a
    student's batch carries the teacher's scores as "target" when there is a teacher, which
    pulls it as losses.distill says at `temperature`."""
    if stage == "acoustic":
        mask = phone_mask(batch["phones"])
        mel, log_dur, durations, _ = forward(batch["phones"], mask, batch["durations"])
        frames = (torch.arange(MAX_FRAMES, device=durations.device).view(1, 1, -1) < durations.sum(1).view(-1, 1, 1)).float()
        return losses.mel_loss(mel, batch["mel"], frames) + losses.duration_loss(log_dur, batch["durations"], mask), mel
    if stage == "vocoder":
        wav = forward(batch["mel"])
        return losses.stft_loss(wav, batch["wav"]), wav
    if stage == "speaker":
        logits = forward(batch["letters"], batch["mask"])
        return losses.phoneme_ctc(logits, batch["phones"]), logits
    logits = forward(batch["tokens"])
    if "target" not in batch:
        return losses.letter_ctc(logits, batch["letters"]), logits
    return losses.distill(logits, batch["target"], batch["letters"], temperature), logits


def tier_distill(stage: str, small: torch.Tensor, large: torch.Tensor) -> torch.Tensor:
    """How far a smaller tier's output is from the largest tier's (held fixed)."""
    if stage in ("speaker", "teacher", "student"):
        return losses.tier_kl(small, large)
    if stage == "vocoder":
        return losses.stft_loss(small, large)
    return (small - large).abs().mean()


def step_loss(stage: str, large: Callable, batch: dict, smaller: Callable | None = None,
              weight: float = 1.0, kl_weight: float = 1.0, temperature: float | None = None) -> torch.Tensor:
    """The largest tier's loss, plus a smaller tier's loss (times `weight`) and its distillation
    from the largest (times `kl_weight`); `temperature` as stage_loss."""
    loss, out = stage_loss(stage, large, batch, temperature)
    if smaller is None:
        return loss
    small_loss, small = stage_loss(stage, smaller, batch, temperature)
    return loss + weight * small_loss + kl_weight * tier_distill(stage, small, out.detach())


class StepLoss(nn.Module):
    """One training step's loss as a module, the unit DistributedDataParallel wraps: the tier
    forwards all run on `network`'s weights inside this one forward.

    `tiers` maps each tier's name to a module of its shapes (largest first), whose weights are
    cut from `network`'s, the `ternary` ones fake-quantized once a step; every step trains the
    largest and, in turn, one smaller tier, whose own loss weighs `weight` and its distillation
    from the largest `kl_weight`, and a student's pull towards its teacher follows `temperature`
    (see losses.distill). Without tiers, `network` trains as it is."""

    def __init__(self, stage: str, network: nn.Module, tiers: dict[str, nn.Module], ternary: set[str],
                 weight: float = 1.0, kl_weight: float = 1.0, temperature: float | None = None):
        super().__init__()
        self.stage, self.network, self.ternary = stage, network, ternary
        self.weight, self.kl_weight, self.temperature = weight, kl_weight, temperature
        self.tiers = tiers  # a plain dict: their parameters are shape holders, not trained

    def forward(self, batch: dict, step: int) -> torch.Tensor:
        image = self.stage in IMAGE_STAGES
        if not self.tiers:
            if image:
                return step_loss(self.stage, self.network.read, {**batch, "tokens": self.network.embed(batch["pixels"])},
                                 temperature=self.temperature)
            return step_loss(self.stage, self.network, batch)
        names = list(self.tiers)
        large = self.tiers[names[0]]
        small = self.tiers[names[1 + step % (len(names) - 1)]] if len(names) > 1 else None
        weights = fake_quantized(self.network, self.ternary)
        if not image:
            return step_loss(self.stage, partial(run_tier, large, weights), batch,
                             None if small is None else partial(run_tier, small, weights), self.weight, self.kl_weight,
                             self.temperature)
        # What both tiers compute alike runs once: the stem, and the leading blocks they share.
        k = 0 if small is None else shared_blocks(large, small)
        batch = {**batch, "tokens": run_tier(large, weights, batch["pixels"], k, method="embed")}

        def read(tier: nn.Module) -> Callable:
            return lambda tokens: run_tier(tier, weights, tokens, k, method="read")

        return step_loss(self.stage, read(large), batch, None if small is None else read(small), self.weight,
                         self.kl_weight, self.temperature)


def _lr(spec: StageSpec, step: int) -> float:
    if step < spec.warmup:
        return spec.lr * (step + 1) / spec.warmup
    progress = (step - spec.warmup) / max(1, spec.steps - spec.warmup)
    return spec.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def _save_stage(path: Path, module: nn.Module, opt: torch.optim.Optimizer, info: dict) -> None:
    tensors = {f"model.{k}": v for k, v in module.state_dict().items()}
    state = opt.state_dict()
    for i, s in state["state"].items():
        for k, v in s.items():
            tensors[f"opt.{i}.{k}"] = v if torch.is_tensor(v) else torch.tensor(v)
    info = {**info, "kind": "stage", "param_groups": json.dumps(state["param_groups"])}
    checkpoint.save(path, tensors, info)


def _read_stage(path: Path, module: nn.Module, stage: str, preset: Preset, n_phones: int) -> tuple[dict, dict]:
    """Load a stage file's network weights into `module` (built from the preset) once its
    recorded dims are the preset's; (its tensors, its info)."""
    tensors, info = checkpoint.load(path)
    # The preset builds the network: a file of other sizes or reading settings would load into
    # it silently wherever its tensors happen to fit (a stretch has no tensor at all).
    if not dims_match(info, stage, preset, n_phones):
        raise BadInput(f"{path} is not the {preset.name} preset's {stage} with this data's phonemes "
                       f"(it records {json.dumps(info.get('dims'))})")
    module.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    return tensors, info


def _load_stage(path: Path, module: nn.Module, opt: torch.optim.Optimizer, stage: str, preset: Preset,
                n_phones: int) -> dict:
    tensors, info = _read_stage(path, module, stage, preset, n_phones)
    state: dict = {"state": {}, "param_groups": json.loads(info["param_groups"])}
    for k, v in tensors.items():
        if k.startswith("opt."):
            _, i, name = k.split(".", 2)
            state["state"].setdefault(int(i), {})[name] = v
    opt.load_state_dict(state)
    return info


def dims_match(info: dict, stage: str, preset: Preset, n_phones: int) -> bool:
    """Whether a stage file's recorded "dims" are the preset's for `stage`. A field added since
    the file was written takes its default, as in whole checkpoints (ModelDims.from_json): a
    student from before the contrast stretch read with stretch 0."""
    recorded, wanted = info.get("dims") or {}, stage_dims(stage, preset)
    try:
        return recorded.get("n_phones") == n_phones and type(wanted)(**recorded[stage]) == wanted
    except (KeyError, TypeError):
        return False


def load_stage_module(run_dir: Path, stage: str, preset: Preset, n_phones: int) -> nn.Module:
    module = build(stage, preset, n_phones)
    path = Path(run_dir) / f"{stage}.safetensors"
    if not path.exists():
        raise BadInput(f"stage {stage!r} has not been trained in {run_dir} (no {path.name})")
    _read_stage(path, module, stage, preset, n_phones)
    return module.eval()


def source_part(source: Path, stage: str, preset: Preset, n_phones: int, ternary: bool = True) -> nn.Module:
    """The network of `stage` to start from: a float stage of the run directory `source`, or
    the matching part of the whole-model checkpoint `source` (its largest tier). From a packed
    checkpoint, ternary training starts at latent weights that quantize to its codes, float
    training (`ternary` false) at the weights the model computes with. An encoder
    that the preset's is a whole-number widening or a deepening of grows into it, computing what
    it computed. The encoder of a model without a speaker, which read phonemes, keeps all but
    its head: the letter head starts new."""
    if Path(source).is_dir():
        return load_stage_module(source, stage, preset, n_phones)
    model, info = checkpoint.load_trainable(source) if ternary else checkpoint.load_model(source)
    if not hasattr(model, PART[stage]):
        raise BadInput(f"{source} has no {PART[stage]}: train it in float first and pass that run as --from-float")
    wanted = build(stage, preset, n_phones)
    state = getattr(model, PART[stage]).state_dict()
    if PART[stage] == "encoder" and model.dims.speaker is None:
        state = {**state, **{k: v for k, v in wanted.state_dict().items() if k.startswith("head.")}}
    if PART[stage] == "encoder" and len(info["inventory"]) == n_phones:
        grown = grow_encoder(state, model.dims.encoder, stage_dims(stage, preset), wanted.state_dict())
        if grown is not None:
            state = grown
    shapes = {k: v.shape for k, v in wanted.state_dict().items()}
    if len(info["inventory"]) != n_phones or {k: v.shape for k, v in state.items()} != shapes:
        raise BadInput(f"{source}: its {PART[stage]} is not the {preset.name} preset's with this data's "
                       f"{n_phones} phonemes; continue it with the preset and data it was trained with")
    wanted.load_state_dict(state)
    return wanted


def run_stage(
    stage: str,
    data: Data,
    preset: Preset,
    run_dir: Path,
    seed: int = 0,
    minutes: float | None = None,
    steps: int | None = None,
    progress: bool = True,
    compression: Compression | None = None,
    device: str = "cpu",
    batch: int | None = None,
    lr: float | None = None,
    ranks: Ranks = Ranks(),
) -> dict:
    """Train (or resume) one stage until its step count or the time budget; return its record.

    `steps`, `batch` and `lr` override the preset's (the schedule stretches to `steps`), for a
    run sized to the machine and time at hand. With `compression`, the stage starts from
    compression.source (float stages, or a whole model to continue) and trains ternary nested
    tiers (see the module docstring). On CUDA the forward passes run in bfloat16 autocast.
    Under torchrun (`ranks`) each rank trains on its slice of every global batch (see
    distributed.py).
    """
    # The teacher is never compressed: grown from a packed model's student it keeps its float schedule.
    spec: StageSpec = (preset.compressed if compression is not None and stage in preset.compressed
                       else preset.stages)[stage]
    if steps is not None or batch is not None or lr is not None:
        n = steps or spec.steps
        spec = StageSpec(n, batch or spec.batch, lr or spec.lr, min(spec.warmup, n // 10 + 1))
    if spec.batch % ranks.world:
        raise BadInput(f"batch {spec.batch} does not split evenly over {ranks.world} ranks (use --batch)")
    n_phones = len(data.meta["inventory"])
    torch.manual_seed(seed)
    module = build(stage, preset, n_phones)
    opt = torch.optim.AdamW(module.parameters(), lr=spec.lr, weight_decay=0.01)
    path = Path(run_dir) / f"{stage}.safetensors"
    record = {"stage": stage, "preset": preset.name, "step": 0, "seconds": 0.0, "cpu_seconds": 0.0,
              "samples": 0, "loss_curve": []}
    if path.exists():
        info = _load_stage(path, module, opt, stage, preset, n_phones)
        record = {k: info.get(k, record[k]) for k in record}
    elif compression is not None:
        module.load_state_dict(source_part(compression.start(stage), stage, preset, n_phones,
                                           compression.ternary).state_dict())
    record["schedule"] = asdict(spec)  # what this (resumed) run follows: steps, batch, peak lr, warm-up
    record["device"] = device  # where it ran last: CPU seconds on a GPU machine's many cores mean little
    module.to(device)
    _optimizer_to(opt, device)
    teacher_run = None if compression is None else compression.teacher(stage)
    teacher = None
    if stage == "student" and compression is None:
        teacher = load_stage_module(run_dir, "teacher", preset, n_phones).to(device)
    elif teacher_run is not None:
        teacher = load_stage_module(teacher_run.parent, teacher_run.stem, preset, n_phones).to(device)
    autocast = torch.autocast("cuda", torch.bfloat16, enabled=torch.device(device).type == "cuda")
    weights = ((1.0, 1.0, None) if compression is None
               else (compression.tier_weight, compression.kl_weight, compression.kd_temperature))
    step_loss_of = distributed.wrap(StepLoss(stage, module, *_tiers(stage, module, preset, n_phones, compression, device),
                                             *weights), ranks, device)
    batches = Batches(data, stage, preset, seed)
    module.train()
    start, cpu_start, last_save = time.time(), time.process_time(), time.time()
    base_seconds, base_cpu = record["seconds"], record["cpu_seconds"]
    bar = tqdm(total=spec.steps, initial=record["step"], desc=stage, unit="step", disable=not (progress and ranks.main))
    window: list[float] = []

    def save() -> None:
        if not ranks.main:
            return
        record["seconds"] = base_seconds + time.time() - start
        record["cpu_seconds"] = base_cpu + time.process_time() - cpu_start
        extra = {} if compression is None else {"tiers": {k: t.to_json() for k, t in compression.tiers.items()},
                                                 "ternary": compression.ternary, "tier_weight": compression.tier_weight,
                                                 "kl_weight": compression.kl_weight,
                                                 "kd_temperature": compression.kd_temperature,
                                                 # what it continued: training time before it is not in this record
                                                 "source": str(compression.source)}
        if stage == "student" and compression is not None and compression.float_student is not None:
            extra["float_student"] = str(compression.float_student)
        if teacher_run is not None:
            extra["teacher"] = str(teacher_run)
        # The seed picks the batches: runs that differ only by it tell training noise from effect.
        _save_stage(path, module, opt, {**record, "seed": seed, "dims": dims_json(stage, preset, n_phones), **extra})

    while record["step"] < spec.steps:
        step = record["step"]
        for g in opt.param_groups:
            g["lr"] = _lr(spec, step)
        inputs = {k: v.to(device, non_blocking=True) for k, v in batches(step, spec.batch, ranks).items()}
        with autocast:
            if teacher is not None:
                with torch.no_grad():
                    inputs["target"] = teacher(inputs["pixels"]).float()
            loss = step_loss_of(inputs, step)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(module.parameters(), 1.0)
        opt.step()
        record["step"] += 1
        record["samples"] += spec.batch
        window.append(distributed.mean(loss.item(), ranks, device))
        if len(window) == 10 or record["step"] == spec.steps:
            record["loss_curve"].append([record["step"], float(np.mean(window))])
            bar.set_postfix(loss=f"{np.mean(window):.4f}")
            window = []
        bar.update(1)
        if time.time() - last_save > CHECKPOINT_EVERY_S:
            save()
            last_save = time.time()
        if distributed.any_rank(minutes is not None and time.time() - start > minutes * 60, ranks, device):
            break
    bar.close()
    save()
    distributed.barrier(ranks)  # the next stage may read this checkpoint (the student its teacher)
    return record


def _optimizer_to(opt: torch.optim.Optimizer, device: str) -> None:
    """Move a resumed optimizer's state next to its parameters."""
    for state in opt.state.values():
        for k, v in state.items():
            if torch.is_tensor(v) and k != "step":
                state[k] = v.to(device)


def _tiers(stage: str, module: nn.Module, preset: Preset, n_phones: int, compression: Compression | None,
           device: str) -> tuple[dict[str, nn.Module], set[str]]:
    """(tier name -> a module of its shapes, names of the ternary weights); none without compression."""
    if compression is None:
        return {}, set()
    ternary = set(ternary_names(module, PART[stage] + ".")) if compression.ternary else set()
    # A tier that cuts nothing of this part (the speaker is whole in every tier) has nothing of its own to train.
    tiers, seen = {}, set()
    for name, tier in compression.tiers.items():
        dims = part_dims(stage_dims(stage, preset), tier)
        if dims not in seen:
            seen.add(dims)
            tiers[name] = build(stage, preset, n_phones, tier).to(device)
    return tiers, ternary


def dims_json(stage: str, preset: Preset, n_phones: int) -> dict:
    """The "dims" a stage file records: what a checkpoint must match to continue or teach it."""
    return {"n_phones": n_phones, stage: asdict(stage_dims(stage, preset))}
