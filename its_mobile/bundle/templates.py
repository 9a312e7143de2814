"""Render the sample-app templates in `targets/` and check what comes out.

A template tree is copied file by file; text files have `{{name}}` placeholders filled in,
binary files are copied as they are. Files under `_runtime/<runtime>/` are merged into the
project root only when that runtime is chosen, so an ExecuTorch app carries no LiteRT code
and the other way round. The checks are cheap static ones: this machine has neither the
Android SDK nor Xcode, so they catch what breaks a build before anyone tries one.
"""

from __future__ import annotations

import json
import plistlib
import re
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

from its_mobile.errors import BadInput

RUNTIMES: dict[str, tuple[str, ...]] = {"android": ("executorch", "litert"), "ios": ("coreml",)}
RUNTIME_DIR = "_runtime"

# Build-tool versions live here, once; a caller's values override any of them.
DEFAULT_VALUES: dict[str, str] = {
    "executorch_version": "1.5.1",  # matches the Python executorch pin
    "litert_version": "2.3.0",  # matches the Python ai-edge-litert pin
    "agp_version": "8.7.3",
    "kotlin_version": "2.1.0",
    "gradle_version": "8.11.1",
    "activity_version": "1.9.3",
    "android_api_level": "35",
    "ios_deployment_target": "18.0",
    "xcode_version": "16.0",
}

PLACEHOLDER = re.compile(r"\{\{([a-z_][a-z0-9_]*)\}\}")
# Anything that looks like a placeholder, typos included, must be gone after rendering.
LEFTOVER = re.compile(r"\{\{[^{}\n]*\}\}")

# Top-level manifest reads: Kotlin goes through a JSONObject named `manifest`, Swift through a
# dictionary named `manifest`; nested objects use other names, so the scans are exact.
KOTLIN_KEY = re.compile(r"\bmanifest\.(?:get|opt|has|isNull)\w*\(\"([^\"]*)\"\)")
SWIFT_KEY = re.compile(r"\bmanifest\[\"([^\"]*)\"\]")
# Model outputs are read by name through `outputs.floats("x")` / `outputs.ints("x")` in both.
OUTPUT_READ = re.compile(r"\boutputs\.(?:floats|ints)\(\"([^\"]*)\"\)")
# Fixed model numbers that must come from the manifest instead of the source.
MODEL_NUMBERS = {32, 128, 16000, 16384}
SIZE_KEYS = ("image_height", "image_width", "sample_rate", "max_samples", "max_phonemes", "max_frames")
ID_DEF = re.compile(r"^\s*([0-9A-F]{24})(?:\s*/\*.*?\*/)?\s*=\s*\{", re.MULTILINE)
ID_ANY = re.compile(r"\b[0-9A-F]{24}\b")


def templates_dir(target: str) -> Path:
    """The template tree of `target`: the repo's `targets/`, or the copy installed with the package."""
    for root in (Path(__file__).resolve().parents[2] / "targets", Path(__file__).resolve().parent / "targets"):
        if (root / target).is_dir():
            return root / target
    raise BadInput(f"no templates for target {target!r} next to {Path(__file__).resolve().parent}")


def _template_files(target: str, runtime: str) -> dict[str, Path]:
    """Relative output path -> template file, with the chosen runtime's subtree merged in."""
    if target not in RUNTIMES:
        raise BadInput(f"unknown target {target!r}; expected one of {sorted(RUNTIMES)}")
    if runtime not in RUNTIMES[target]:
        raise BadInput(f"runtime {runtime!r} does not exist for {target}; expected one of {RUNTIMES[target]}")
    root = templates_dir(target)
    files: dict[str, Path] = {}
    runtime_files: dict[str, Path] = {}
    for path in root.rglob("*"):
        if not path.is_file():
            continue
        rel = path.relative_to(root).parts
        if rel[0] != RUNTIME_DIR:
            files["/".join(rel)] = path
        elif rel[1] == runtime:
            runtime_files["/".join(rel[2:])] = path
    clash = files.keys() & runtime_files.keys()
    if clash:
        raise BadInput(f"{target} template: {sorted(clash)} exist both shared and in {RUNTIME_DIR}/{runtime}")
    return dict(sorted((files | runtime_files).items()))


def _text(path: Path) -> str | None:
    """The file as text, or None for a binary file (copied untouched)."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return None


def required_values(target: str, runtime: str) -> set[str]:
    """Placeholder names the caller must give: all those used, less defaults and `runtime`."""
    names: set[str] = set()
    for path in _template_files(target, runtime).values():
        text = _text(path)
        if text is not None:
            names.update(PLACEHOLDER.findall(text))
    return names - DEFAULT_VALUES.keys() - {"runtime"}


def render_project(target: str, runtime: str, values: dict[str, str]) -> dict[str, bytes]:
    """Relative POSIX path -> file bytes of the filled-in project, sorted by path.

    `values` fill the placeholders over DEFAULT_VALUES; `{{runtime}}` is the chosen runtime.
    """
    merged = DEFAULT_VALUES | {key: str(value) for key, value in values.items()} | {"runtime": runtime}
    out: dict[str, bytes] = {}
    for rel, path in _template_files(target, runtime).items():
        text = _text(path)
        if text is None:
            out[rel] = path.read_bytes()
            continue

        def fill(match: re.Match[str], rel: str = rel) -> str:
            name = match.group(1)
            if name not in merged:
                raise BadInput(f"{target} template {rel}: no value for placeholder {{{{{name}}}}}")
            return merged[name]

        out[rel] = PLACEHOLDER.sub(fill, text).encode("utf-8")
    return out


def _check(name: str, failures: list[str], passed_detail: str) -> dict:
    return {"check": name, "passed": not failures, "detail": "; ".join(failures) or passed_detail}


def _parse_all(files: dict[str, bytes], suffixes: tuple[str, ...], parse) -> tuple[list[str], int]:
    """(failures, count) after running `parse` on every file whose name ends with one of `suffixes`."""
    failures, count = [], 0
    for rel, data in files.items():
        if rel.endswith(suffixes):
            count += 1
            try:
                parse(data)
            except Exception as exc:  # any parser error is a failed check, reported by file
                failures.append(f"{rel}: {exc}")
    return failures, count


def pbxproj_problems(text: str) -> list[str]:
    """Unbalanced brackets (outside strings and comments) or object IDs used but never defined."""
    problems = []
    stripped = re.sub(r'"(?:[^"\\]|\\.)*"|/\*.*?\*/', '""', text, flags=re.DOTALL)
    for open_, close in ("{}", "()"):
        depth = 0
        for char in stripped:
            depth += (char == open_) - (char == close)
            if depth < 0:
                break
        if depth:
            problems.append(f"unbalanced {open_}{close}")
    defined = ID_DEF.findall(text)
    duplicated = {i for i in defined if defined.count(i) > 1}
    if duplicated:
        problems.append(f"IDs defined twice: {sorted(duplicated)}")
    undefined = set(ID_ANY.findall(stripped)) - set(defined)
    if undefined:
        problems.append(f"IDs referenced but not defined: {sorted(undefined)}")
    if not defined:
        problems.append("no objects")
    return problems


def _sources(files: dict[str, bytes], suffix: str) -> dict[str, str]:
    return {rel: data.decode("utf-8") for rel, data in files.items() if rel.endswith(suffix)}


def _number_pattern(numbers: set[int]) -> re.Pattern[str]:
    # Not part of a longer number, identifier or float literal (0.128 and x32 are fine).
    return re.compile(r"(?<![\w.])(" + "|".join(sorted(map(str, numbers))) + r")(?![\w.])")


def check_project(target: str, files: dict[str, bytes], manifest: dict) -> list[dict]:
    """Every static check on a rendered project: {"check", "passed", "detail"} each, failures or not."""
    checks = []
    texts = {}
    for rel, data in files.items():
        try:
            texts[rel] = data.decode("utf-8")
        except UnicodeDecodeError:
            pass
    left = [f"{rel}: {m}" for rel, text in texts.items() for m in sorted(set(LEFTOVER.findall(text)))]
    checks.append(_check("no placeholders left", left, f"{len(texts)} text files"))

    parsers = {
        "xml parses": ((".xml", ".xcscheme"), ET.fromstring),
        "json parses": ((".json",), json.loads),
        "plist parses": ((".plist",), plistlib.loads),
        "toml parses": ((".toml",), lambda data: tomllib.loads(data.decode("utf-8"))),
    }
    for name, (suffixes, parse) in parsers.items():
        failures, count = _parse_all(files, suffixes, parse)
        checks.append(_check(name, failures, f"{count} files"))

    pbx = {rel: text for rel, text in texts.items() if rel.endswith(".pbxproj")}
    failures = [f"{rel}: {p}" for rel, text in pbx.items() for p in pbxproj_problems(text)]
    if target == "ios" and not pbx:
        failures.append("no project.pbxproj")
    checks.append(_check("pbxproj structure", failures, f"{len(pbx)} files"))

    build_files = [rel for rel in files if rel.endswith((".kts", ".yml", ".yaml"))]
    empty = [rel for rel in build_files if not files[rel].strip()]
    checks.append(_check("build files non-empty", empty, f"{len(build_files)} files"))

    code = _sources(files, ".kt") | _sources(files, ".swift")
    keys = [(rel, key) for rel, text in _sources(files, ".kt").items() for key in KOTLIN_KEY.findall(text)]
    keys += [(rel, key) for rel, text in _sources(files, ".swift").items() for key in SWIFT_KEY.findall(text)]
    unknown = [f"{rel}: {key!r}" for rel, key in keys if key not in manifest]
    if not keys:
        unknown.append("no source reads the manifest")
    checks.append(_check("manifest keys exist", unknown, f"{len({k for _, k in keys})} keys read"))

    names = set(manifest.get("output_names") or [o["name"] for o in manifest.get("outputs", [])])
    reads = [(rel, name) for rel, text in code.items() for name in OUTPUT_READ.findall(text)]
    unknown = [f"{rel}: {name!r}" for rel, name in reads if name not in names]
    if not reads:
        unknown.append("no source reads a model output")
    checks.append(_check("output names exist", unknown, f"{len({n for _, n in reads})} outputs read"))

    # Sizes from the manifest join the fixed list when large enough not to be a UI constant.
    numbers = MODEL_NUMBERS | {v for k in SIZE_KEYS if isinstance(v := manifest.get(k), int) and v >= 100}
    pattern = _number_pattern(numbers)
    hard = [
        f"{rel}:{line_no}: {m}"
        for rel, text in code.items()
        for line_no, line in enumerate(text.splitlines(), 1)
        for m in pattern.findall(line)
    ]
    checks.append(_check("no hard-coded model numbers", hard, f"{len(code)} sources, none of {sorted(numbers)}"))
    return checks
