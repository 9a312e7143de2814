"""What `its-mobile profile` measures, gathered into one report: which artifacts, where they
run (host or a device over adb) and, on request, each tier's accuracy beside its size."""

from __future__ import annotations

import json
from pathlib import Path

from its_mobile.errors import BadInput
from its_mobile.host import describe


def artifact_paths(artifacts: tuple[Path, ...], bundle: Path | None) -> list[Path]:
    """Artifact paths from ARTIFACT arguments (files, or export folders) or a build's folder."""
    from its_mobile.bundle.build import ASSETS, REPORT_JSON
    from its_mobile.export import REPORT

    if bundle is not None:
        if artifacts:
            raise BadInput("give ARTIFACT paths or --bundle, not both")
        try:
            targets = json.loads((bundle / REPORT_JSON).read_text())["targets"]
            return [bundle / t["project"] / ASSETS[t["target"]] / t["model_file"] for t in targets]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise BadInput(f"{bundle} has no readable {REPORT_JSON} (run `its-mobile build -o {bundle}`)") from e
    if not artifacts:
        raise BadInput("give one or more ARTIFACT paths (or an export folder), or --bundle DIR")
    paths: list[Path] = []
    for a in artifacts:
        if a.is_dir() and (a / REPORT).is_file():
            try:
                paths += [a / e["path"] for e in json.loads((a / REPORT).read_text())["artifacts"]]
            except (ValueError, KeyError, TypeError) as e:
                raise BadInput(f"{a / REPORT} is not an export report") from e
        else:
            paths.append(a)
    return paths


def tier_accuracy(checkpoint: Path | None, data_dir: Path, n: int) -> list[dict]:
    """Each tier's exact accuracy and PER on in-vocabulary words in held-out fonts, and its size."""
    from its_mobile.checkpoint import load_model
    from its_mobile.compress.inspect import inspect_checkpoint
    from its_mobile.data.dataset import load
    from its_mobile.evaluate.metrics import evaluate_split

    data = load(data_dir)
    out = []
    for tier in inspect_checkpoint(checkpoint)["tiers"]:
        model, info = load_model(checkpoint, tier["name"])
        split = evaluate_split(model, info["inventory"], data, "eval_iv_clean", n, None)
        out.append({"name": tier["name"], "packed_bytes": tier["packed_bytes"], "params": tier["params"],
                    "exact": split["exact"], "per": split["per"], "n": split["n"]})
    return out


def profile_one(path: Path, runs: int, threads: int, serial: str | None, runner: Path | None) -> dict:
    """One artifact's numbers: in its runtime on this host, or on the adb device `serial`."""
    from its_mobile.profile.host import format_of, profile_artifact, size_breakdown

    if not path.exists():
        raise BadInput(f"artifact not found: {path}")
    if not serial:
        return profile_artifact(path, runs, threads)
    from its_mobile.profile.device import profile_on_device

    fmt = format_of(path)
    return {"artifact": path.name, "format": fmt, "size": size_breakdown(fmt, path),
            **profile_on_device(serial, path, fmt, runner, runs, threads)}


def profile_report(paths: list[Path], runs: int, threads: int, serial: str | None = None, runner: Path | None = None,
                   eval_data: Path | None = None, eval_n: int = 100, checkpoint: Path | None = None) -> dict:
    """The whole report that `profile --json` prints and `--html` draws."""
    if runs < 1 or threads < 1 or eval_n < 1:
        raise BadInput("--runs, --threads and --eval-n must be at least 1")
    results = [profile_one(p, runs, threads, serial, runner) for p in paths]
    return {"machine": serial or describe(), "runs": runs, "threads": threads, "artifacts": results,
            "tiers": tier_accuracy(checkpoint, eval_data, eval_n) if eval_data else None}
