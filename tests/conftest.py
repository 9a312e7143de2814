"""Shared fixtures: one tiny data directory and one tiny trained model per test session."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from its_mobile.data.dataset import DataSpec, generate, load
from its_mobile.compress.tiers import TIERS
from its_mobile.train.assemble import assemble, assemble_packed
from its_mobile.train.loop import Compression, run_stage
from its_mobile.train.presets import COMPRESSED_STAGES, PRESETS, STAGES

TINY_SPEC = DataSpec(n=256, n_eval=16, n_speech=96, n_audio=24, seed=7)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    return generate(tmp_path_factory.mktemp("data") / "tiny", TINY_SPEC, progress=False)


@pytest.fixture(scope="session")
def tiny_run(tiny_data, tmp_path_factory) -> dict:
    """Every stage of the tiny preset, trained briefly; records and the assembled models."""
    run = tmp_path_factory.mktemp("run")
    data = load(tiny_data)
    records = {s: run_stage(s, data, PRESETS["tiny"], run, seed=1, progress=False) for s in STAGES}
    models = assemble(run, data, PRESETS["tiny"])
    return {"dir": run, "records": records, **models}


@pytest.fixture(scope="session")
def tiny_packed(tiny_data, tiny_run) -> Path:
    """The tiny run compressed: ternary all-in-one fine-tuning of each stage, then packed."""
    run = tiny_run["dir"] / "ternary"
    spec = Compression(source=tiny_run["dir"], tiers=TIERS)
    for stage in COMPRESSED_STAGES:
        run_stage(stage, load(tiny_data), PRESETS["tiny"], run, seed=1, progress=False, compression=spec)
    return assemble_packed(run, load(tiny_data), PRESETS["tiny"], TIERS)


@pytest.fixture(scope="session")
def exported(tmp_path_factory) -> Path:
    """The embedded default in every format, packed and dense: a tiny model reads nothing, so
    its outputs would agree whatever the weights; the default's do not."""
    out = tmp_path_factory.mktemp("export")
    r = subprocess.run([sys.executable, "-m", "its_mobile", "export", "--weights", "both", "-o", str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return out
