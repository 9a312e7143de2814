"""The `its-mobile` command line. Each command is a thin shell over the engine's modules;
errors the user can act on print one line and exit with their code (2 for bad input)."""

from __future__ import annotations

import functools
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from its_mobile import __version__
from its_mobile.errors import BadInput, ItsError

if TYPE_CHECKING:  # the commands import their modules lazily, to keep --help fast
    from its_mobile.train.presets import Preset


def _friendly(fn):
    """Print an ItsError as one line and exit with its code; never a traceback for those."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ItsError as e:
            click.echo(f"its-mobile: error: {e}", err=True)
            sys.exit(e.return_code)
        except KeyboardInterrupt:
            click.echo("its-mobile: interrupted; no output was left half-written", err=True)  # Ctrl-C or SIGTERM
            sys.exit(130)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="its-mobile")
def main() -> None:
    """Train, compress, export and bundle a compact image-to-speech model for phones.

    A picture of a printed word goes in, the spoken word comes out.
    """
    from its_mobile.doctor import warn_once

    warn_once(lambda line: click.echo(line, err=True))
    signal.signal(signal.SIGTERM, _interrupt)  # a CI job cancelled mid-build cleans up as on Ctrl-C
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # a background job keeps ignoring it
        signal.signal(signal.SIGINT, _interrupt)
    sys.unraisablehook = _quiet_swallowed_interrupt


_SIGNALLED: list[int] = []  # interrupts received (see _raise_if_interrupted)


def _interrupt(signum, frame) -> None:
    _SIGNALLED.append(signum)
    raise KeyboardInterrupt


def _quiet_swallowed_interrupt(unraisable) -> None:
    """Our interrupt, raised inside a callback that C code runs (jax's gc hook, during an
    export), is "ignored" with a printed traceback; it is raised again at the next stage
    (_raise_if_interrupted), so the user sees only the one-line message."""
    if not (_SIGNALLED and isinstance(unraisable.exc_value, KeyboardInterrupt)):
        sys.__unraisablehook__(unraisable)


def _raise_if_interrupted() -> None:
    """Raise again an interrupt that a library swallowed: a KeyboardInterrupt raised while C code
    runs a Python callback is only printed ("Exception ignored ..."), and the work went on."""
    if _SIGNALLED:
        raise KeyboardInterrupt


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
def doctor(as_json: bool) -> None:
    """Versions against the pins, and espeak-ng, fonts, macOS, CUDA, adb and the on-device
    benchmark binaries: what is here and what each missing piece disables."""
    from its_mobile.doctor import format_report, report

    r = report()
    click.echo(json.dumps(r) if as_json else format_report(r))


@main.command()
@click.option("--n", "n", type=click.IntRange(1), default=160_000, show_default=True, help="Training images.")
@click.option("--n-eval", type=click.IntRange(1), default=200, show_default=True, help="Images per evaluation split.")
@click.option("--n-speech", type=click.IntRange(1), default=12_000, show_default=True,
              help="Words with mel and duration targets.")
@click.option("--n-audio", type=click.IntRange(0), default=4_000, show_default=True,
              help="Of those, words whose audio is kept for the vocoder.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--workers", type=click.IntRange(1), default=1, show_default=True, help="Worker processes.")
@click.option("--shards", type=click.IntRange(1), default=1, show_default=True,
              help="Split the work into this many independent shards (e.g. one per machine).")
@click.option("--shard-index", type=click.IntRange(0), help="With --shards: which shard (0-based) to write into OUT.")
@click.option("--merge", "merge", is_flag=True, help="Join the SHARDS directories into OUT (the bytes of one run).")
@click.option("--out", "out", type=click.Path(path_type=Path), required=True, help="Data directory to write.")
@click.argument("shard_dirs", nargs=-1, type=click.Path(path_type=Path))
@_friendly
def data(n: int, n_eval: int, n_speech: int, n_audio: int, seed: int, workers: int, shards: int,
         shard_index: int | None, merge: bool, out: Path, shard_dirs: tuple[Path, ...]) -> None:
    """Generate word images, phonemes, durations and mel targets (offline, deterministic).

    Sharded: run `its-mobile data --shards K --shard-index I --out S_I` for I = 0..K-1 (on any
    machines), then `its-mobile data --merge --out DATA S_0 ... S_K-1`.
    """
    from its_mobile.data.dataset import DataSpec, generate, merge_shards

    if merge:
        click.echo(f"wrote {merge_shards(list(shard_dirs), out)}")
        return
    if shard_dirs:
        raise BadInput("shard directories are only read with --merge")
    if (shards > 1) != (shard_index is not None):
        raise BadInput("--shards K and --shard-index I go together")
    spec = DataSpec(n=n, n_eval=n_eval, n_speech=n_speech, n_audio=min(n_audio, n_speech), seed=seed)
    path = generate(out, spec, workers=workers, shard=(shard_index or 0, shards))
    click.echo(f"wrote {path}")


@main.command()
@click.option("--preset", type=click.Choice(["tiny", "full"]), default="tiny", show_default=True,
              help="tiny: tests, under 2 minutes; full: the shipped default (hours on 2 cores).")
@click.option("--data", "data_dir", type=click.Path(path_type=Path),
              help="Data directory from `its-mobile data` (default: made in OUT/data for the tiny preset).")
@click.option("--out", "out", type=click.Path(path_type=Path), required=True,
              help="Run directory: stage checkpoints and the assembled models. Re-running resumes.")
@click.option("--stage", "stages", multiple=True,
              type=click.Choice(["acoustic", "vocoder", "speaker", "teacher", "student", "spelling"]),
              help="Train only these stages (repeatable; default: all, in order). spelling trains nothing: "
                   "every assembled model gets its letter model fitted from the data's training words, and "
                   "`--ternary --init M --stage spelling` gives M one, and the preset's reading settings "
                   "(the encoder's contrast stretch, the rows each reading shifts the image by), without changing "
                   "its weights.")
@click.option("--steps", type=click.IntRange(1), help="Override the preset's steps per stage.")
@click.option("--minutes", type=float, help="Stop each stage after this many minutes (resume later).")
@click.option("--threads", type=click.IntRange(1), help="Torch threads (default: all cores).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
              help="auto: CUDA when a GPU is present (bfloat16 autocast), else the CPU.")
@click.option("--batch", type=click.IntRange(1), help="Override the preset's batch size per stage (e.g. 256 on a GPU).")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), help="Override the preset's peak learning rate.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--ternary", is_flag=True,
              help="Compress a trained run: fine-tune its stages with 1.58-bit weights into OUT/ternary-TIERS "
                   "and pack them (packed.safetensors).")
@click.option("--tiers", default="large,base,small", show_default=True,
              help="With --ternary: nested tiers trained together in one pass (large, base, small).")
@click.option("--tier-weight", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="With --ternary: weight of each smaller tier's own loss (its distillation from the "
                   "largest tier weighs --kl-weight).")
@click.option("--kl-weight", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="With --ternary: weight of each smaller tier's distillation (KL) from the largest tier.")
@click.option("--init", "init", metavar="CHECKPOINT|default",
              help="With --ternary: continue this whole model (packed or float; `default`: the embedded one) "
                   "instead of OUT's float stages; stages not named by --stage are taken from it as they are. "
                   "With --stage teacher alone: grow the float teacher from this model's student "
                   "(wider and deeper, computing what it computed) and write OUT/teacher_its.safetensors.")
@click.option("--from-float", "from_float", type=click.Path(path_type=Path), metavar="RUN",
              help="With --ternary: start the ternary student and speaker from those of run directory RUN "
                   "(float training first, then quantization-aware fine-tuning from it) and distil the "
                   "student towards RUN's float student when it has one; other stages come from --init or OUT.")
@click.option("--teacher", "teacher", type=click.Path(path_type=Path), metavar="RUN",
              help="With --ternary: distil the student towards the float teacher of run directory RUN "
                   "(its float student where it has no teacher) while starting where --init or "
                   "--from-float says (default: the --from-float run's student).")
@click.option("--kd-temperature", type=click.FloatRange(min=0, min_open=True), metavar="T",
              help="With --teacher or --from-float: pull the student towards its teacher by the KL between "
                   "their letter posteriors softened by T, instead of the seed's MSE between their scores.")
@_friendly
def train(preset: str, data_dir: Path | None, out: Path, stages: tuple[str, ...], steps: int | None,
          minutes: float | None, threads: int | None, device: str, batch: int | None, lr: float | None,
          seed: int, ternary: bool, tiers: str, tier_weight: float, kl_weight: float, init: str | None,
          from_float: Path | None, teacher: Path | None, kd_temperature: float | None) -> None:
    """Train the acoustic model, vocoder, speaker, teacher and distilled student; assemble both models.

    Under torchrun (`torchrun --nproc_per_node N -m its_mobile train ...`) the ranks split
    every batch and average their gradients (gloo on CPU, NCCL on CUDA); rank 0 writes.

    With --ternary, compress the trained run OUT instead: the acoustic, vocoder, speaker and
    student stages are fine-tuned with ternary weights and all --tiers at once, then packed. With
    --init as well, continue training a model that was already packed (e.g. the shipped default
    on more data): `its-mobile train --preset full --data D --out R --ternary --init default
    --stage student`.
    """
    import torch

    from its_mobile.checkpoint import DEFAULT
    from its_mobile.compress.tiers import TIERS, parse_tiers
    from its_mobile.data.dataset import DataSpec, generate, load
    from its_mobile.train.assemble import assemble, assemble_packed, assemble_teacher
    from its_mobile.train.loop import Compression, run_stage
    from its_mobile.train import distributed
    from its_mobile.train.presets import COMPRESSED_STAGES, PRESETS, STAGES, trained_stages

    if threads:
        torch.set_num_threads(threads)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    elif device == "cuda" and not torch.cuda.is_available():
        raise BadInput("--device cuda: this torch sees no CUDA GPU (use --device cpu or auto)")
    grow_teacher = init is not None and not ternary
    if grow_teacher and stages != ("teacher",):
        raise BadInput("--init continues a whole model's ternary training (add --ternary), "
                       "or grows a float teacher from it (--stage teacher alone)")
    if kd_temperature is not None and not (ternary and (teacher or from_float or init is None)):
        raise BadInput("--kd-temperature: only a ternary student has a teacher to be pulled towards "
                       "(add --ternary, and --teacher RUN or --from-float RUN with --init)")
    source = None if init is None else DEFAULT if init == "default" else Path(init)
    if source is not None and not source.is_file():
        raise BadInput(f"--init: no checkpoint at {source}")
    ranks = distributed.init(device)  # one rank, or those torchrun started
    device = distributed.device_for(device, ranks)
    say = click.echo if ranks.main else (lambda *_: None)
    sizing = {"steps": steps, "minutes": minutes, "device": device, "batch": batch, "lr": lr, "ranks": ranks}
    if data_dir is None:
        if preset != "tiny":
            raise BadInput("--data is required for the full preset (make it with `its-mobile data`)")
        data_dir = out / "data"
        if ranks.main and not (data_dir / "meta.json").exists():
            generate(data_dir, DataSpec(n=2000, n_eval=50, n_speech=400, n_audio=100, seed=seed))
        distributed.barrier(ranks)
    data = load(data_dir)
    p = PRESETS[preset]
    for option, run_path in (("--from-float", from_float), ("--teacher", teacher)):
        if run_path is not None:
            _check_float_run(option, run_path, ternary, p, len(data.meta["inventory"]))
    if ternary:
        chosen = parse_tiers(tiers)
        if "teacher" in stages:
            raise BadInput("the teacher is not compressed; --ternary trains acoustic, vocoder, speaker and student")
        run = out / f"ternary-{'-'.join(chosen)}"
        spec = Compression(source=source or out, tiers=chosen, float_student=from_float, float_teacher=teacher,
                           tier_weight=tier_weight, kl_weight=kl_weight, kd_temperature=kd_temperature)
        for stage in trained_stages(stages, COMPRESSED_STAGES):
            r = run_stage(stage, data, p, run, seed=seed, compression=spec, **sizing)
            say(f"{stage} ({', '.join(chosen)}): step {r['step']}, loss {r['loss_curve'][-1][1]:.4f}, "
                       f"{r['seconds']:.0f} s")
        if ranks.main and (source or all((run / f"{s}.safetensors").exists() for s in COMPRESSED_STAGES)):
            packed = assemble_packed(run, data, p, chosen, fallback=source, float_student=from_float,
                                     teacher=spec.teacher("student"))
            say(f"packed: {packed}")
        return
    # A teacher grown from a whole model trains in float, its one tier whole.
    grown = Compression(source, {"large": TIERS["large"]}, ternary=False) if grow_teacher else None
    for stage in trained_stages(stages, STAGES):
        r = run_stage(stage, data, p, out, seed=seed, compression=grown, **sizing)
        say(f"{stage}: step {r['step']}, loss {r['loss_curve'][-1][1]:.4f}, {r['seconds']:.0f} s")
    if grow_teacher and ranks.main:
        say(f"teacher: {assemble_teacher(out, data, p, source)}")
    if ranks.main and all((out / f"{s}.safetensors").exists() for s in STAGES):
        for role, path in assemble(out, data, p).items():
            say(f"{role}: {path}")


def _check_float_run(option: str, run: Path, ternary: bool, preset: Preset, n_phones: int) -> None:
    from its_mobile import checkpoint
    from its_mobile.train.loop import dims_match

    if not ternary:
        raise BadInput(f"{option} belongs to a ternary fine-tuning: add --ternary")
    stages = ("student", "speaker") if option == "--from-float" else ("teacher", "student")
    paths = [run / f"{s}.safetensors" for s in stages if (run / f"{s}.safetensors").is_file()]
    if not paths:
        raise BadInput(f"{option}: no float {' or '.join(stages)} in {run} (no {stages[0]}.safetensors)")
    for path in paths:
        _, info = checkpoint.load(path)
        if info.get("ternary", False) or info.get("kind") != "stage":
            raise BadInput(f"{option}: {path} is not a float {path.stem} stage")
        if not dims_match(info, path.stem, preset, n_phones):
            raise BadInput(f"{option}: {path} is not the {preset.name} preset's {path.stem} with this data's phonemes")


def _speak_inputs(images: tuple[Path, ...], text: str | None, font: Path | None):
    """(names, pixel arrays) from image files, or from `--text` rendered in a plain font."""
    import numpy as np

    from its_mobile.images import load_image

    if text is not None:
        from its_mobile.data.render import find_fonts, render

        word = text.strip()
        if not word or not word.isalpha() or len(word) > 30:
            raise BadInput("--text takes one word of letters")
        fonts = [font] if font else find_fonts()[1]
        img = render(word.lower(), fonts[0], np.random.default_rng(0), noisy=False)
        return [word], [img]
    if not images:
        raise BadInput("give one or more IMAGE files, or --text WORD")
    return [str(p) for p in images], [load_image(p) for p in images]


@main.command()
@click.argument("images", nargs=-1, type=click.Path(path_type=Path))
@click.option("-o", "--out", "out", type=click.Path(path_type=Path), required=True,
              help="A .wav for one image, a directory for several.")
@click.option("--text", help="Render this word and speak it (instead of IMAGE files).")
@click.option("--font", type=click.Path(exists=True, path_type=Path), help="Font for --text.")
@click.option("--checkpoint", type=click.Path(path_type=Path), help="Model (default: the embedded one).")
@click.option("--tier", help="Nested tier of the model to run (default: its largest; see `its-mobile inspect`).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per image per line.")
@_friendly
def speak(images: tuple[Path, ...], out: Path, text: str | None, font: Path | None, checkpoint: Path | None,
          tier: str | None, as_json: bool) -> None:
    """Read the word in each IMAGE aloud: predicted phonemes and a 16-bit PCM wav."""
    import numpy as np

    from its_mobile.checkpoint import load_model
    from its_mobile.data.audio import write_wav
    from its_mobile.infer import speak_pixels

    names, pixels = _speak_inputs(images, text, font)
    model, info = load_model(checkpoint, tier)
    single = len(names) == 1 and out.suffix.lower() == ".wav"
    if not single and out.suffix.lower() == ".wav":
        raise BadInput(f"{len(names)} images need an output directory, not {out}")
    if single and out.is_dir():
        raise BadInput(f"{out} is a directory")
    if not single and out.exists() and not out.is_dir():
        raise BadInput(f"{out} exists and is not a directory")
    results = speak_pixels(model, info["inventory"], np.stack(pixels))
    if not single:
        out.mkdir(parents=True, exist_ok=True)
    for i, (name, r) in enumerate(zip(names, results)):
        wav = out if single else out / f"{i:03d}_{Path(name).stem}.wav"
        write_wav(wav, r.audio)
        if not r.phonemes:
            click.echo(f"its-mobile: warning: read no phonemes in {name}; {wav} is empty", err=True)
        read = {} if r.letters is None else {"letters": r.letters}
        if as_json:
            click.echo(json.dumps({"image": name, **read, "ipa": r.ipa, "wav": str(wav), "ms": round(r.ms, 2),
                                   "seconds": round(len(r.audio) / 16000, 3)}, ensure_ascii=False))
        else:
            letters = "" if r.letters is None else f'"{r.letters}" '
            click.echo(f"{name}: {letters}/{r.ipa}/ -> {wav} ({r.ms:.1f} ms)")


@main.command(name="eval")
@click.option("--data", "data_dir", type=click.Path(path_type=Path), required=True,
              help="Data directory whose evaluation splits to use.")
@click.option("--checkpoint", type=click.Path(path_type=Path), help="Model (default: the embedded one).")
@click.option("--tier", help="Nested tier of the model to run (default: its largest; see `its-mobile inspect`).")
@click.option("--n", "n", type=click.IntRange(1), help="Use only the first N images of each split.")
@click.option("--asr/--no-asr", default=True, show_default=True, help="ASR round-trip intelligibility.")
@click.option("--json-out", type=click.Path(path_type=Path), help="Write the results as JSON here.")
@_friendly
def evaluate(data_dir: Path, checkpoint: Path | None, tier: str | None, n: int | None, asr: bool,
             json_out: Path | None) -> None:
    """Accuracy, PER, durations, mel error and intelligibility on held-out fonts and OOV words."""
    from its_mobile.checkpoint import load_model
    from its_mobile.data.dataset import load
    from its_mobile.evaluate.metrics import evaluate_model, format_table
    from its_mobile.host import describe

    model, info = load_model(checkpoint, tier)
    results = evaluate_model(model, info["inventory"], load(data_dir), n=n, asr=asr)
    click.echo(format_table(results))
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        tmp = json_out.with_name(json_out.name + ".tmp")
        tmp.write_text(json.dumps({"machine": describe(), **results}, indent=1, ensure_ascii=False))
        os.replace(tmp, json_out)


@main.command()
@click.option("--checkpoint", type=click.Path(path_type=Path), help="Model (default: the embedded one).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
@_friendly
def inspect(checkpoint: Path | None, as_json: bool) -> None:
    """Bits per weight of every tensor, and params, ternary params and bytes of every tier."""
    from its_mobile.compress.inspect import format_report, inspect_checkpoint

    report = inspect_checkpoint(checkpoint)
    click.echo(json.dumps(report) if as_json else format_report(report))


@main.command(name="export")
@click.option("--format", "fmt", type=click.Choice(["executorch", "coreml", "tflite", "all"]), default="all",
              show_default=True, help="Which runtime's artifact to write.")
@click.option("--tier", help="Nested tier to export (default: the checkpoint's largest).")
@click.option("--checkpoint", type=click.Path(path_type=Path), help="Model (default: the embedded one).")
@click.option("--weights", type=click.Choice(["packed", "dense", "both"]), default="packed", show_default=True,
              help="packed: ternary weights in each format's compressed form; dense: the float32 twin.")
@click.option("-o", "--out", "out", type=click.Path(path_type=Path), required=True, help="Output directory.")
@_friendly
def export_cmd(fmt: str, tier: str | None, checkpoint: Path | None, weights: str, out: Path) -> None:
    """Write .pte / .mlpackage / .tflite artifacts and OUT/export-report.json."""
    from tqdm import tqdm

    from conversion import FORMATS
    from its_mobile.export import export

    formats = list(FORMATS) if fmt == "all" else [fmt]
    kinds = ("packed", "dense") if weights == "both" else (weights,)
    with tqdm(total=len(formats) * len(kinds), desc="export", unit="artifact") as bar:
        report = export(formats, out, checkpoint, tier, kinds, progress=lambda name: (bar.set_postfix_str(name),
                                                                                       bar.update(1)))
    for a in report["artifacts"]:
        click.echo(f"{a['path']}: {a['bytes']:,} bytes, {a['bits_per_ternary_weight']:.2f} bits per ternary weight")
    click.echo(f"report: {out / 'export-report.json'}")


@main.command()
@click.option("--target", type=click.Choice(["android", "ios", "all"]), default="android", show_default=True,
              help="Which sample app to build.")
@click.option("--runtime", type=click.Choice(["litert", "executorch", "coreml"]),
              help="Android: litert (default; .tflite with int2 weights) or executorch (.pte). iOS: coreml.")
@click.option("--tier", help="Nested tier to bundle (default: the checkpoint's largest; see `its-mobile inspect`).")
@click.option("--checkpoint", type=click.Path(path_type=Path), help="Model (default: the embedded one).")
@click.option("--allow-parity-failure", is_flag=True,
              help="Bundle an artifact even when it fails parity (recorded in the report).")
@click.option("-o", "--out", "out", type=click.Path(path_type=Path), default=Path("build"), show_default=True,
              help="Output directory: OUT/<target>/, OUT/<target>.zip, OUT/build-report.json and .html.")
@click.option("--force", is_flag=True, help="Write into an existing folder that is not a previous bundle.")
@_friendly
def build(target: str, runtime: str | None, tier: str | None, checkpoint: Path | None, allow_parity_failure: bool,
          out: Path, force: bool) -> None:
    """Export, check parity and bundle the model into a sample Android or iOS app project.

    Writes the project folder, a reproducible zip of it and a build report. An artifact that
    fails parity is not bundled (exit 1) unless --allow-parity-failure.
    """
    from its_mobile.bundle.build import Request, build as build_bundle

    targets = ["android", "ios"] if target == "all" else [target]
    if runtime is not None and len(targets) > 1:
        raise BadInput("--runtime applies to one target; build android and ios separately to choose it")
    total = 6 * len(targets) + 1  # export, parity, manifest, latency, project, write per target; move
    done = iter(range(1, total + 1))
    start = time.perf_counter()

    def step(name: str) -> None:
        _raise_if_interrupted()  # at the latest before "move into place"
        click.echo(f"[{next(done, total)}/{total} {time.perf_counter() - start:4.0f} s] {name}", err=True)

    request = Request(tuple(targets), out, checkpoint, tier, runtime, allow_parity_failure, force)
    report = build_bundle(request, step)
    for t in report["targets"]:
        p = t["parity"]
        lat = t["host_latency"]
        click.echo(f"{t['target']} ({t['runtime']}): {out / t['project']}/ and {out / t['zip']} "
                   f"({t['zip_bytes']:,} bytes); model {t['model_bytes']:,} bytes, "
                   f"{t['bits_per_ternary_weight']:.2f} bits per ternary weight")
        click.echo(f"  parity: {'pass' if p['passed'] else 'FAIL'} ({p['level']})"
                   + (f"; host latency p50 {lat['p50_ms']:.1f} ms" if lat["measured"] else f"; {lat['reason']}"))
        click.echo(f"  not checked here: {'; '.join(t['not_checked'])}")
    click.echo(f"report: {out / 'build-report.html'} ({report['seconds']:.0f} s)")


@main.command()
@click.argument("artifacts", nargs=-1, type=click.Path(path_type=Path))
@click.option("--bundle", type=click.Path(path_type=Path), help="A `build` output folder: profile each target's model.")
@click.option("--runs", type=int, default=50, show_default=True, help="Timed runs after 3 warm-up runs.")
@click.option("--threads", type=int, default=1, show_default=True, help="Runtime threads.")
@click.option("--adb", "serial", help="Profile on this attached Android device or emulator instead of the host.")
@click.option("--runner", type=click.Path(path_type=Path),
              help="With --adb: the device's executor_runner (.pte) or benchmark_model (.tflite) binary.")
@click.option("--eval-data", type=click.Path(path_type=Path),
              help="Data folder: also measure each tier's accuracy, for the accuracy-size plot.")
@click.option("--eval-n", type=int, default=100, show_default=True, help="Images per tier with --eval-data.")
@click.option("--checkpoint", type=click.Path(path_type=Path), help="Model whose tiers --eval-data measures.")
@click.option("--json", "as_json", is_flag=True, help="End with one JSON line (p50_ms, p90_ms, load_ms, peak_rss_mb, ...).")
@click.option("--html", "html_out", type=click.Path(path_type=Path), help="Write the report with plots here.")
@_friendly
def profile(artifacts: tuple[Path, ...], bundle: Path | None, runs: int, threads: int, serial: str | None,
            runner: Path | None, eval_data: Path | None, eval_n: int, checkpoint: Path | None, as_json: bool,
            html_out: Path | None) -> None:
    """Load time, first inference, p50/p90/p99 latency, peak memory and size by tensor group of
    each artifact in its real runtime: on this host, or on a device over adb (--adb)."""
    from its_mobile.profile.collect import artifact_paths, profile_report

    report = profile_report(artifact_paths(artifacts, bundle), runs, threads, serial, runner, eval_data, eval_n,
                            checkpoint)
    results = report["artifacts"]
    for r in results:
        if r.get("measured"):
            click.echo(f"{r['artifact']}: load {r.get('load_ms', float('nan')):.1f} ms, first {r.get('first_ms', float('nan')):.1f} ms, "
                       f"p50 {r.get('p50_ms', r['mean_ms']):.2f} ms, p90 {r.get('p90_ms', float('nan')):.2f} ms, "
                       f"peak RSS {r.get('peak_rss_mb', float('nan')):.0f} MB, {r['size']['total']:,} bytes")
        else:
            click.echo(f"{r['artifact']}: not run here ({r['reason']}); {r['size']['total']:,} bytes")
    if html_out:
        from its_mobile.profile.report import write_html

        write_html(report, html_out)
        click.echo(f"report: {html_out}")
    if as_json:
        first = next((r for r in results if r.get("measured")), {})
        keys = ("p50_ms", "p90_ms", "p99_ms", "load_ms", "first_ms", "peak_rss_mb")
        slim = [{k: v for k, v in r.items() if k != "times_ms"} for r in results]
        click.echo(json.dumps({**{k: first.get(k) for k in keys}, **{**report, "artifacts": slim}}))


@main.command(name="parity")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="End with one JSON line: passed, and per artifact format, "
              "level, passed, phoneme_agreement, max_rel_err.")
@click.option("--junit", type=click.Path(path_type=Path), help="Also write the results as JUnit XML here (for CI).")
@click.option("--n", "n", type=click.IntRange(1, 10_000), help="Check on N held-out word images (unseen fonts, some unseen "
              "words, clean and noisy) instead of the 12 built-in ones.")
@click.option("--images", "folder", type=click.Path(path_type=Path), help="Check on the images in this folder, "
              "read as `speak` reads them.")
@_friendly
def parity_cmd(path: Path, as_json: bool, junit: Path | None, n: int | None, folder: Path | None) -> None:
    """Run the artifacts of an export (PATH = its directory, or one artifact in it) in their
    runtimes and compare with PyTorch.

    Exits 1 when an artifact fails. Level "numeric": it ran in its real runtime. Where that
    runtime cannot run (Core ML off macOS), the package's own MIL program runs in a NumPy
    interpreter instead, level "interpreted" (plus static checks of its weights); "structural"
    when not even that could run.
    """
    from its_mobile.parity import parity, write_junit

    if n is not None and folder is not None:
        raise BadInput("give --n or --images, not both")
    report = parity(path, n, folder)
    if junit:
        write_junit(report, junit)
    for r in report["artifacts"]:
        numbers = "phoneme_agreement" in r and (f"phonemes {100 * r['phoneme_agreement']:.0f}% agree, mel rel err "
                                                f"{r['max_rel_err']:.1e}, waveform SNR {r['min_waveform_snr_db']:.0f} dB")
        detail = "; ".join(x for x in (numbers, r.get("reason")) if x)
        click.echo(f"{r['status']:8} {r['level']:11} {r['path']}: {detail}")
    if as_json:
        keys = ("format", "weights", "path", "level", "passed", "phoneme_agreement", "max_rel_err")
        click.echo(json.dumps({"passed": report["passed"],
                               "artifacts": [{k: r.get(k) for k in keys} for r in report["artifacts"]]}))
    if not report["passed"]:
        raise SystemExit(1)
