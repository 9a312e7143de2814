"""Join trained stages into whole image -> waveform models: the float teacher and student,
and the packed ternary model of a compressed run."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import torch

from its_mobile import checkpoint
from its_mobile.compress.ternary import HIGH_PRECISION
from its_mobile.compress.tiers import Tier
from its_mobile.data.dataset import Data
from its_mobile.model.dims import ModelDims
from its_mobile.model.its import ITS
from its_mobile.model.spelling import fit_letter_model, set_letter_model
from its_mobile.train.loop import load_stage_module, source_part
from its_mobile.train.presets import COMPRESSED_STAGES, STAGES, Preset


def stage_record(run_dir: Path, stage: str) -> dict:
    _, info = checkpoint.load(Path(run_dir) / f"{stage}.safetensors")
    return {k: info[k] for k in ("step", "samples", "seconds", "cpu_seconds", "schedule", "seed", "device",
                                   "kd_temperature") if k in info}


SUMMED = ("step", "samples", "seconds", "cpu_seconds")


def history(training: dict, keep: int = 2) -> dict:
    """A model's training record, to become `continued_from` in the record of a run that
    continues it: its newest `keep` runs as they are, each holding the one before in
    `continued_from`, and the runs before them summed per stage into `earlier` (runs, and per
    stage steps, samples, seconds and CPU seconds). A default continued many times so keeps
    a header of a few KB: whole, 14 runs took 8 KB of the shipped file."""
    runs, run = [], training
    while run:
        runs.append(run)
        run = run.get("continued_from")
    earlier = {"runs": 0, "stages": {}}
    for old in runs[keep:] + [r["earlier"] for r in runs if "earlier" in r]:
        earlier["runs"] += old.get("runs", 1)
        for stage, rec in old.get("stages", {}).items():
            total = earlier["stages"].setdefault(stage, dict.fromkeys(SUMMED, 0))
            for k in SUMMED:
                total[k] += rec.get(k, 0)
    kept = [{k: v for k, v in r.items() if k not in ("continued_from", "earlier")} for r in runs[:keep]]
    if kept and earlier["runs"]:
        kept[-1]["earlier"] = earlier
    for newer, older in zip(kept, kept[1:]):
        newer["continued_from"] = older
    return kept[0] if kept else {}


LetterModel = tuple[torch.Tensor, torch.Tensor]  # fit_letter_model's (table, classes)


def letter_model(data: Data, preset: Preset) -> LetterModel:
    """The letter model of the data's training words (a second's counting, no training)."""
    words = [data.words[i] for i in data.training_word_ids()]
    return fit_letter_model(words, preset.spelling.classes)


def _whole(run_dir: Path, preset: Preset, data: Data, encoder_stage: str, letters: LetterModel,
           fallback: Path | None = None, ternary: bool = True) -> ITS:
    """The whole model from the run's stages and the fitted `letters`; a stage the run lacks
    comes from the whole-model checkpoint `fallback` when given (a run that continued only some
    stages of it), as latent weights to pack again (`ternary`) or as the weights it computes with."""
    enc_dims = preset.teacher if encoder_stage == "teacher" else preset.student
    n = len(data.meta["inventory"])
    model = ITS(ModelDims(n, enc_dims, preset.acoustic, preset.vocoder, preset.speaker, preset.spelling))
    set_letter_model(model.spelling, *letters)
    for part, stage in (("encoder", encoder_stage), ("speaker", "speaker"), ("acoustic", "acoustic"),
                        ("vocoder", "vocoder")):
        if fallback is None or (Path(run_dir) / f"{stage}.safetensors").exists():
            source = load_stage_module(run_dir, stage, preset, n)
        else:
            source = source_part(fallback, stage, preset, n, ternary)
        getattr(model, part).load_state_dict(source.state_dict())
    return model.eval()


def assemble_packed(run_dir: Path, data: Data, preset: Preset, tiers: dict[str, Tier],
                    fallback: Path | None = None, float_student: Path | None = None,
                    teacher: Path | None = None) -> Path:
    """Write run_dir/packed.safetensors from a compressed run: ternary weights 5 per byte, with
    every tier in it (the shipped default). Stages the run lacks come from `fallback`; the
    record names the training (steps, time, seed) of each stage, of the float student the
    ternary one started from, if any, and of the float student that taught it, if another, and
    the layers kept in high precision."""
    trained = [s for s in COMPRESSED_STAGES if (Path(run_dir) / f"{s}.safetensors").exists()]
    record = {"preset": preset.name, "data": data.meta["spec"], "tiers": list(tiers),
              "spelling_words": len(data.training_word_ids()),
              "encoder": asdict(preset.student), "stages": {s: stage_record(run_dir, s) for s in trained}}
    if fallback is not None:
        _, info = checkpoint.load(fallback)
        record["continued_from"] = history(info.get("training", {}))
    for stage in ("student", "speaker"):  # the float stages the ternary ones started from
        if float_student is not None and (Path(float_student) / f"{stage}.safetensors").exists():
            record[f"float_{stage}"] = stage_record(float_student, stage)
    if teacher is not None and teacher.parent != float_student:
        record["teacher"] = stage_record(teacher.parent, teacher.stem) | {"stage": teacher.stem}
    path = Path(run_dir) / "packed.safetensors"
    model = _whole(run_dir, preset, data, "student", letter_model(data, preset), fallback)
    # Which layers trained in high precision is a choice of the code that trained them (ternary.py)
    present = dict(model.named_modules())
    record["high_precision"] = sorted(n for n in HIGH_PRECISION if n in present)
    checkpoint.save_packed(path, model, data.meta["inventory"], record, tiers)
    return path


def assemble_teacher(run_dir: Path, data: Data, preset: Preset, source: Path) -> Path:
    """Write run_dir/teacher_its.safetensors: the run's teacher encoder with the speaker,
    acoustic model and vocoder of the whole model `source` it grew from (in float)."""
    path = Path(run_dir) / "teacher_its.safetensors"
    _, info = checkpoint.load(source)
    record = {"preset": preset.name, "data": data.meta["spec"], "role": "teacher",
              "stages": {"teacher": stage_record(run_dir, "teacher")},
              "continued_from": history(info.get("training", {}))}
    model = _whole(run_dir, preset, data, "teacher", letter_model(data, preset), source, ternary=False)
    checkpoint.save_model(path, model, data.meta["inventory"], record)
    return path


def assemble(run_dir: Path, data: Data, preset: Preset) -> dict[str, Path]:
    """Write run_dir/teacher_its.safetensors, run_dir/student_its.safetensors, and
    run_dir/default.safetensors: the student in float16, as shipped in its_mobile/assets/."""
    inventory = data.meta["inventory"]
    record = {"preset": preset.name, "data": data.meta["spec"], "stages": {s: stage_record(run_dir, s) for s in STAGES}}
    out, letters = {}, letter_model(data, preset)
    for role in ("teacher", "student"):
        model = _whole(run_dir, preset, data, role, letters)
        out[role] = Path(run_dir) / f"{role}_its.safetensors"
        checkpoint.save_model(out[role], model, inventory, {**record, "role": role})
        if role == "student":
            out["default"] = Path(run_dir) / "default.safetensors"
            checkpoint.save_model(out["default"], model, inventory, {**record, "role": role}, half=True)
    return out
