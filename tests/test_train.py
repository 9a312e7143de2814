import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch

from its_mobile import checkpoint
from its_mobile.compress.ternary import HIGH_PRECISION
from its_mobile.data.dataset import load
from its_mobile.infer import speak_pixels
from its_mobile.train.assemble import history
from its_mobile.train.loop import Batches, run_stage
from its_mobile.train.presets import PRESETS, StageSpec
from tests.test_cli import cli


def test_tiny_preset_lowers_every_loss(tiny_run):
    for stage, rec in tiny_run["records"].items():
        first, last = rec["loss_curve"][0][1], rec["loss_curve"][-1][1]
        assert last < first, (stage, first, last)


def test_checkpoint_round_trip_is_exact(tiny_run, tiny_data):
    model, info = checkpoint.load_model(tiny_run["student"])
    images, _ = load(tiny_data).split("eval_iv_clean")
    a = speak_pixels(model, info["inventory"], np.asarray(images[:4]))
    again, _ = checkpoint.load_model(tiny_run["student"])
    b = speak_pixels(again, info["inventory"], np.asarray(images[:4]))
    for x, y in zip(a, b):
        assert x.phonemes == y.phonemes and np.array_equal(x.audio, y.audio)
    assert info["training"]["stages"]["student"]["samples"] > 0


def test_resume_continues_where_it_stopped(tiny_data, tmp_path):
    """Two halves with a stop between them give the weights of one uninterrupted run."""
    data = load(tiny_data)
    preset = PRESETS["tiny"]
    half = PRESETS["tiny"].__class__(**{**preset.__dict__, "stages": {"acoustic": StageSpec(6, 8, 3e-3, 2)}})
    run_stage("acoustic", data, half, tmp_path / "whole", seed=3, progress=False)
    run_stage("acoustic", data, half, tmp_path / "halves", seed=3, minutes=0.0, progress=False)
    rec = run_stage("acoustic", data, half, tmp_path / "halves", seed=3, progress=False)
    assert rec["step"] == 6
    whole, _ = checkpoint.load(tmp_path / "whole" / "acoustic.safetensors")
    halves, _ = checkpoint.load(tmp_path / "halves" / "acoustic.safetensors")
    for k, v in whole.items():
        if k.startswith("model."):
            torch.testing.assert_close(v, halves[k], rtol=1e-5, atol=1e-6)


def test_train_command_takes_device_batch_and_lr(tiny_data, tmp_path):
    """`--batch` and `--steps` size the run (samples = steps x batch); `--device cuda` without a
    GPU is a one-line error."""
    args = ["train", "--preset", "tiny", "--data", str(tiny_data), "--out", str(tmp_path), "--stage", "acoustic",
            "--steps", "2", "--batch", "5", "--lr", "1e-3"]
    done = cli(*args, "--device", "cpu")
    assert done.returncode == 0, done.stderr
    _, info = checkpoint.load(tmp_path / "acoustic.safetensors")
    assert (info["step"], info["samples"]) == (2, 10)
    if not torch.cuda.is_available():
        refused = cli(*args, "--device", "cuda")
        assert refused.returncode == 2 and "no CUDA" in refused.stderr and "Traceback" not in refused.stderr


def torchrun(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           "-m", "its_mobile", *args], capture_output=True, text=True)


@pytest.mark.parametrize("kind", ["float", "ternary tiers"])
def test_two_gloo_ranks_follow_one_process_and_resume_alone(kind, tiny_data, tiny_packed, tmp_path):
    """Same global batch over 2 ranks: the loss curve of 1 process within 1% after 50 steps; the
    checkpoint then resumes in a single process. Also for the all-in-one step, where two tiers
    share the weights in one backward."""
    args = ["train", "--preset", "tiny", "--data", str(tiny_data), "--batch", "16", "--threads", "1"]
    if kind == "float":
        stage, args, stage_dir = "teacher", [*args, "--stage", "teacher"], Path()
    else:
        stage, stage_dir = "student", Path("ternary-large-base-small")
        args = [*args, "--stage", "student", "--ternary", "--init", str(tiny_packed)]
    one = cli(*args, "--steps", "50", "--out", str(tmp_path / "one"))
    two = torchrun(*args, "--steps", "50", "--out", str(tmp_path / "two"))
    assert one.returncode == 0 and two.returncode == 0, two.stderr[-2000:]
    assert two.stdout.count("step 50,") == 1  # only rank 0 reports
    _, a = checkpoint.load(tmp_path / "one" / stage_dir / f"{stage}.safetensors")
    _, b = checkpoint.load(tmp_path / "two" / stage_dir / f"{stage}.safetensors")
    assert [s for s, _ in a["loss_curve"]] == [s for s, _ in b["loss_curve"]] and b["samples"] == 50 * 16
    for (_, x), (_, y) in zip(a["loss_curve"], b["loss_curve"]):
        assert abs(x - y) <= 0.01 * abs(x), (x, y)
    again = cli(*args, "--steps", "60", "--out", str(tmp_path / "two"))
    assert again.returncode == 0, again.stderr[-2000:]
    assert checkpoint.load(tmp_path / "two" / stage_dir / f"{stage}.safetensors")[1]["step"] == 60


def test_uneven_batch_over_ranks_is_refused(tiny_data, tmp_path):
    r = torchrun("train", "--preset", "tiny", "--data", str(tiny_data), "--stage", "teacher", "--steps", "2",
                 "--batch", "15", "--out", str(tmp_path))
    assert r.returncode != 0 and "does not split evenly over 2 ranks" in r.stderr


def test_a_rank_that_dies_stops_the_run_and_keeps_the_checkpoint(tiny_data, tmp_path):
    args = ["train", "--preset", "tiny", "--data", str(tiny_data), "--stage", "teacher", "--batch", "16", "--threads", "1",
            "--out", str(tmp_path)]
    assert torchrun(*args, "--steps", "20").returncode == 0
    run = subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                            "-m", "its_mobile", *args, "--steps", "1000000"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    time.sleep(10)
    workers = subprocess.run(["pgrep", "-P", str(run.pid)], capture_output=True, text=True).stdout.split()
    assert len(workers) == 2
    os.kill(int(workers[-1]), signal.SIGKILL)
    _, err = run.communicate(timeout=300)
    assert run.returncode != 0 and "Root Cause" in err and "SIGKILL" in err  # torchrun names the rank that died
    assert checkpoint.load(tmp_path / "teacher.safetensors")[1]["step"] >= 20


def test_continue_a_packed_model(tiny_data, tiny_packed, tmp_path):
    """`train --ternary --init PACKED --stage student` starts exactly where the packed model stands
    (its latent weights quantize back to the same codes and scales), trains the student only and
    packs a model whose acoustic model and vocoder are the init's, bit for bit."""
    from its_mobile.compress.ternary import quantize

    before, info = checkpoint.load_model(tiny_packed)
    trainable, _ = checkpoint.load_trainable(tiny_packed)
    params = dict(trainable.named_parameters())
    for name in info["ternary"]:
        codes, scale = quantize(params[name])
        torch.testing.assert_close(codes.float() * scale, before.state_dict()[name], rtol=1e-6, atol=0)

    done = cli("train", "--preset", "tiny", "--data", str(tiny_data), "--out", str(tmp_path), "--ternary",
               "--init", str(tiny_packed), "--stage", "student", "--steps", "3")
    assert done.returncode == 0, done.stderr
    after, after_info = checkpoint.load_model(tmp_path / "ternary-large-base-small" / "packed.safetensors")
    old, new = before.state_dict(), after.state_dict()
    for name in old:
        if name.startswith(("acoustic.", "vocoder.")):
            torch.testing.assert_close(new[name], old[name], rtol=1e-6, atol=1e-7)
    assert any(not torch.equal(new[n], old[n]) for n in old if n.startswith("encoder."))
    assert after_info["training"]["continued_from"] == info["training"]
    assert list(after_info["training"]["stages"]) == ["student"]


def test_history_keeps_the_newest_runs_and_sums_the_rest():
    def run(k, older=None):
        rec = {"data": {"n": k}, "stages": {"student": {"step": k, "samples": 10 * k, "seconds": 1.0, "cpu_seconds": 2.0}}}
        return rec | ({"continued_from": older} if older else {})

    def totals(rec):
        runs = steps = 0
        while rec:
            runs, steps = runs + 1 + rec.get("earlier", {}).get("runs", 0), steps + rec["stages"]["student"]["step"] + \
                rec.get("earlier", {}).get("stages", {}).get("student", {}).get("step", 0)
            rec = rec.get("continued_from")
        return runs, steps

    chain = None
    for k in range(1, 7):
        chain = run(k, chain)
    short = history(chain)
    assert short["data"] == {"n": 6} and short["continued_from"]["data"] == {"n": 5}
    assert "continued_from" not in short["continued_from"] and short["continued_from"]["earlier"]["runs"] == 4
    assert totals(short) == totals(chain) == (6, 21)
    again = history(run(7, short))  # a summary folds into the next one
    assert again["continued_from"]["earlier"]["runs"] == 5 and totals(again) == (7, 28)
    assert history(run(1, run(2))) == run(1, run(2))  # short records stay as they are


def test_init_and_kd_temperature_are_refused_where_they_cannot_apply(tiny_data, tmp_path):
    base = ["train", "--preset", "tiny", "--data", str(tiny_data), "--out", str(tmp_path), "--stage", "student"]
    for extra, message in ((["--init", "default"], "add --ternary"),
                           (["--ternary", "--init", "default"], "not the tiny preset's"),
                           (["--ternary", "--init", str(tmp_path / "nothing.safetensors")], "no checkpoint"),
                           (["--ternary", "--init", "default", "--kd-temperature", "2"], "--kd-temperature: ")):
        done = cli(*base, *extra)
        assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_ternary_student_from_a_float_student(tiny_data, tiny_run, tiny_packed, tmp_path):
    """`--from-float RUN` starts the ternary student at RUN's float student (its codes are that
    student's, quantized) and distils it towards that student's scores; the other stages stay
    the init's, and the packed record names the float student's training."""
    from its_mobile.compress.ternary import quantize
    from its_mobile.train.loop import Batches, load_stage_module
    from its_mobile.train.losses import distill

    preset = PRESETS["tiny"]
    data = load(tiny_data)
    done = cli("train", "--preset", "tiny", "--data", str(tiny_data), "--out", str(tmp_path), "--ternary",
               "--tiers", "large", "--init", str(tiny_packed), "--stage", "student", "--from-float",
               str(tiny_run["dir"]), "--steps", "1", "--lr", "1e-9", "--batch", "8", "--tier-weight", "0.5",
               "--kl-weight", "0.3", "--seed", "3")
    assert done.returncode == 0, done.stderr
    after, info = checkpoint.load_model(tmp_path / "ternary-large" / "packed.safetensors")
    float_student = load_stage_module(tiny_run["dir"], "student", preset, len(data.meta["inventory"]))
    params = dict(float_student.named_parameters())
    for name in info["ternary"]:
        if name.startswith("encoder."):
            codes, scale = quantize(params[name[len("encoder."):]])
            torch.testing.assert_close(after.state_dict()[name], codes.float() * scale, rtol=1e-5, atol=0)
    before = checkpoint.load_model(tiny_packed)[0].state_dict()
    for name, value in after.state_dict().items():
        if name.startswith(("acoustic.", "vocoder.")):
            torch.testing.assert_close(value, before[name], rtol=1e-6, atol=1e-7)
    assert info["training"]["float_student"]["step"] == tiny_run["records"]["student"]["step"]

    batch = Batches(data, "student", preset, seed=3)(0, 8)
    with torch.no_grad():
        expected = distill(after.encoder(batch["pixels"]), float_student(batch["pixels"]), batch["letters"])
    _, stage = checkpoint.load(tmp_path / "ternary-large" / "student.safetensors")
    assert stage["loss_curve"][0][1] == pytest.approx(float(expected), rel=2e-2)
    # recorded, though one tier has no smaller one to weigh
    assert (stage["tier_weight"], stage["kl_weight"]) == (0.5, 0.3)
    assert stage["seed"] == 3


def test_plain_ternary_is_taught_by_its_own_float_student(tiny_data, tiny_run, tmp_path):
    """`--ternary` without `--init` compresses OUT's float run, whose student teaches the
    ternary one: the stage file and the packed record name that training, and the record its
    seed and high-precision layers."""
    out = tmp_path / "run"
    out.mkdir()
    for f in tiny_run["dir"].iterdir():  # the float run's files, not its compressed runs
        if f.is_file():
            shutil.copy(f, out / f.name)
    done = cli("train", "--preset", "tiny", "--data", str(tiny_data), "--out", str(out), "--ternary",
               "--tiers", "large", "--steps", "1", "--batch", "8", "--seed", "5")
    assert done.returncode == 0, done.stderr
    model, info = checkpoint.load_model(out / "ternary-large" / "packed.safetensors")
    assert info["training"]["teacher"]["step"] == tiny_run["records"]["student"]["step"]
    assert "float_student" not in info["training"]  # it started from OUT, not from --from-float
    # The record also says how it was trained: the seed of each stage, the high-precision layers
    assert {s["seed"] for s in info["training"]["stages"].values()} == {5}
    high = set(info["training"]["high_precision"])
    assert high and high <= HIGH_PRECISION and high == HIGH_PRECISION & set(dict(model.named_modules()))
    _, stage = checkpoint.load(out / "ternary-large" / "student.safetensors")
    assert stage["teacher"] == str(out / "student.safetensors")


@pytest.mark.parametrize("option", ["--from-float", "--teacher"])
def test_float_run_options_are_refused_without_a_float_student(tiny_data, tiny_packed, tmp_path, option):
    base = ["train", "--preset", "tiny", "--data", str(tiny_data), "--out", str(tmp_path), "--stage", "student",
            "--init", str(tiny_packed)]
    stage_dir = tmp_path / "ternary-large"
    for extra, message in (([option, str(tmp_path)], "add --ternary"),
                           (["--ternary", option, str(tmp_path)], "no float "),
                           (["--ternary", option, str(stage_dir)], "not a float student")):
        if "not a float" in message:  # a ternary stage is no float student
            assert cli(*base, "--ternary", "--tiers", "large", "--steps", "1").returncode == 0
        done = cli(*base, *extra)
        assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr, done.stderr
        if "float" in message:  # names the option at fault
            assert done.stderr.startswith(f"its-mobile: error: {option}: "), done.stderr


@pytest.mark.parametrize("temperature", [None, 2.0])
def test_ternary_student_continued_with_a_float_teacher(tiny_data, tiny_run, tiny_packed, tmp_path, temperature):
    """`--teacher RUN` with `--init`: the student starts at the init's ternary weights, not at
    RUN's float student, and is distilled towards RUN's teacher's scores (or, with
    --kd-temperature, its softened letter posteriors); the record names both."""
    from its_mobile.train.loop import Batches, load_stage_module
    from its_mobile.train.losses import distill

    preset = PRESETS["tiny"]
    data = load(tiny_data)
    done = cli("train", "--preset", "tiny", "--data", str(tiny_data), "--out", str(tmp_path), "--ternary",
               "--tiers", "large", "--init", str(tiny_packed), "--stage", "student", "--teacher",
               str(tiny_run["dir"]), "--steps", "1", "--lr", "1e-9", "--batch", "8", "--seed", "3",
               *([] if temperature is None else ["--kd-temperature", str(temperature)]))
    assert done.returncode == 0, done.stderr
    after, info = checkpoint.load_model(tmp_path / "ternary-large" / "packed.safetensors")
    before = checkpoint.load_model(tiny_packed)[0].state_dict()
    for name in info["ternary"]:
        torch.testing.assert_close(after.state_dict()[name], before[name], rtol=1e-5, atol=1e-7)
    assert info["training"]["teacher"]["step"] == tiny_run["records"]["teacher"]["step"]
    assert info["training"]["teacher"]["stage"] == "teacher"
    assert "float_student" not in info["training"]

    teacher = load_stage_module(tiny_run["dir"], "teacher", preset, len(data.meta["inventory"]))
    batch = Batches(data, "student", preset, seed=3)(0, 8)
    with torch.no_grad():
        expected = distill(after.encoder(batch["pixels"]), teacher(batch["pixels"]), batch["letters"], temperature)
    _, stage = checkpoint.load(tmp_path / "ternary-large" / "student.safetensors")
    assert stage["loss_curve"][0][1] == pytest.approx(float(expected), rel=2e-2)
    assert stage["teacher"] == str(tiny_run["dir"] / "teacher.safetensors")
    assert stage["kd_temperature"] == temperature


def test_softened_posteriors_pull_only_where_student_and_teacher_differ():
    """The KL pull is zero for a student that scores like its teacher, or whose scores differ only
    by a constant per column (the same posteriors), unlike MSE; it grows as they part."""
    from its_mobile.train.losses import distill, letter_ctc

    torch.manual_seed(0)
    scores = torch.randn(4, 16, 30)
    letters = torch.randint(3, 30, (4, 5))
    ctc_half = 0.5 * letter_ctc(scores, letters)
    for shifted in (scores, scores + torch.randn(4, 16, 1)):
        assert distill(scores, shifted, letters, 2.0) == pytest.approx(float(ctc_half), abs=1e-5)
    assert distill(scores, scores + torch.randn(4, 16, 1), letters) > ctc_half + 0.1
    pulls = [float(distill(scores, scores + s * torch.randn(4, 16, 30), letters, 2.0) - ctc_half) for s in (0.5, 2.0)]
    assert 0 < pulls[0] < pulls[1]


def test_teacher_grows_from_a_packed_model(tiny_data, tiny_packed, tmp_path):
    """`--stage teacher --init MODEL` (no --ternary): the float teacher starts as MODEL's student
    grown wider and deeper, computing what it computed, and is written as a whole model with
    MODEL's speaker, acoustic model and vocoder."""
    base = ["train", "--preset", "tiny", "--data", str(tiny_data), "--out", str(tmp_path), "--init", str(tiny_packed)]
    refused = cli(*base, "--stage", "student")
    assert refused.returncode == 2 and "--stage teacher alone" in refused.stderr, refused.stderr
    done = cli(*base, "--stage", "teacher", "--steps", "1", "--lr", "1e-9", "--batch", "8")
    assert done.returncode == 0, done.stderr
    teacher, info = checkpoint.load_model(tmp_path / "teacher_its.safetensors")
    student = checkpoint.load_model(tiny_packed)[0]
    assert info["dims"]["encoder"] == asdict(PRESETS["tiny"].teacher) and info["training"]["role"] == "teacher"
    pixels = Batches(load(tiny_data), "student", PRESETS["tiny"], seed=0)(0, 4)["pixels"]
    with torch.no_grad():
        torch.testing.assert_close(teacher.encoder(pixels), student.encoder(pixels), rtol=1e-3, atol=1e-3)
        for part in ("speaker", "acoustic", "vocoder"):
            for name, w in getattr(student, part).state_dict().items():
                torch.testing.assert_close(getattr(teacher, part).state_dict()[name], w)


def test_a_stage_file_of_other_reading_settings_is_refused(tiny_run, tmp_path):
    """A stage file loads only into the preset's own network: a student recorded with another
    contrast stretch would fit every tensor and read differently, so it is refused; one written
    before the field existed reads as stretch 0, which the tiny preset has."""
    from its_mobile.errors import BadInput
    from its_mobile.train.loop import load_stage_module

    tensors, info = checkpoint.load(tiny_run["dir"] / "student.safetensors")
    n = info["dims"]["n_phones"]
    for stretch, loads in ((None, True), (0.5, False)):
        encoder = {k: v for k, v in info["dims"]["student"].items() if k != "stretch"}
        if stretch is not None:
            encoder["stretch"] = stretch
        checkpoint.save(tmp_path / "student.safetensors", tensors, {**info, "dims": {**info["dims"], "student": encoder}})
        if loads:
            load_stage_module(tmp_path, "student", PRESETS["tiny"], n)
        else:
            with pytest.raises(BadInput, match="not the tiny preset's student"):
                load_stage_module(tmp_path, "student", PRESETS["tiny"], n)
