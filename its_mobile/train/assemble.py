"""Join trained stages into whole image -> waveform models (teacher and student)."""

from __future__ import annotations

from pathlib import Path

from its_mobile import checkpoint
from its_mobile.data.dataset import Data
from its_mobile.model.dims import ModelDims
from its_mobile.model.its import ITS
from its_mobile.train.loop import load_stage_module
from its_mobile.train.presets import STAGES, Preset


def stage_record(run_dir: Path, stage: str) -> dict:
    _, info = checkpoint.load(Path(run_dir) / f"{stage}.safetensors")
    return {k: info[k] for k in ("step", "samples", "seconds", "cpu_seconds")}


def assemble(run_dir: Path, data: Data, preset: Preset) -> dict[str, Path]:
    """Write run_dir/teacher_its.safetensors, run_dir/student_its.safetensors, and
    run_dir/default.safetensors: the student in float16, as shipped in its_mobile/assets/."""
    inventory = data.meta["inventory"]
    n = len(inventory)
    acoustic = load_stage_module(run_dir, "acoustic", preset, n)
    vocoder = load_stage_module(run_dir, "vocoder", preset, n)
    record = {"preset": preset.name, "data": data.meta["spec"], "stages": {s: stage_record(run_dir, s) for s in STAGES}}
    out = {}
    for role, enc_dims in (("teacher", preset.teacher), ("student", preset.student)):
        model = ITS(ModelDims(n, enc_dims, preset.acoustic, preset.vocoder))
        model.encoder.load_state_dict(load_stage_module(run_dir, role, preset, n).state_dict())
        model.acoustic.load_state_dict(acoustic.state_dict())
        model.vocoder.load_state_dict(vocoder.state_dict())
        out[role] = Path(run_dir) / f"{role}_its.safetensors"
        checkpoint.save_model(out[role], model.eval(), inventory, {**record, "role": role})
        if role == "student":
            out["default"] = Path(run_dir) / "default.safetensors"
            checkpoint.save_model(out["default"], model, inventory, {**record, "role": role}, half=True)
    return out
