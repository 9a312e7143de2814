"""The model manifest (`its-model.json`): every number an app needs to run the model, written
next to the model from the exported artifact's own interface, so that the app templates never
repeat a size, a rate, a name or the phoneme list by hand.

Pixels are grey levels 0..255 as float32 in a (1, 1, H, W) tensor: the model normalises them
itself, so an app only resizes and converts to grey.
"""

from __future__ import annotations

from its_mobile.constants import EOS, MAX_FRAMES, PAD, SAMPLE_RATE

MANIFEST_FILE = "its-model.json"
SCHEMA_VERSION = 1
INPUT_NAME = "pixels"


def make_manifest(fmt: str, runtime: str, model_file: str, tier: str, io: dict, methods: list[str],
                  inventory: list[str], model_sha256: str) -> dict:
    """The manifest of one artifact. `io` is the backend's `interface(path)`: the tensors as the
    runtime reads them from the file, not as the exporter meant them."""
    inputs = {t["name"]: t for t in io["inputs"]}
    if list(inputs) != [INPUT_NAME]:
        raise ValueError(f"{model_file}: expected one input {INPUT_NAME!r}, the artifact has {list(inputs)}")
    pixels = inputs[INPUT_NAME]
    shapes = {t["name"]: t["shape"] for t in io["outputs"]}
    return {
        "schema_version": SCHEMA_VERSION,
        "format": fmt,
        "runtime": runtime,
        "model_file": model_file,
        "tier": tier,
        "init_method": "init" if "init" in methods else None,
        "input_name": INPUT_NAME,
        "input_shape": pixels["shape"],
        "input_dtype": pixels["dtype"],
        "image_height": pixels["shape"][-2],
        "image_width": pixels["shape"][-1],
        "pixel_min": 0,
        "pixel_max": 255,
        "outputs": [{"name": t["name"], "shape": t["shape"], "dtype": t["dtype"]} for t in io["outputs"]],
        "output_names": [t["name"] for t in io["outputs"]],
        "sample_rate": SAMPLE_RATE,
        "max_samples": shapes["waveform"][-1],
        "max_phonemes": shapes["phonemes"][-1],
        "max_frames": MAX_FRAMES,
        "phonemes": list(inventory),
        "pad_id": PAD,
        "eos_id": EOS,
        "model_sha256": model_sha256,
    }


def manifest_problems(manifest: dict, io: dict) -> list[str]:
    """Where the manifest and an artifact's real interface disagree (empty: they agree)."""
    problems = []
    want_in = [{"name": manifest["input_name"], "shape": manifest["input_shape"], "dtype": manifest["input_dtype"]}]
    if io["inputs"] != want_in:
        problems.append(f"input: manifest {want_in}, artifact {io['inputs']}")
    if io["outputs"] != manifest["outputs"]:
        problems.append(f"outputs: manifest {manifest['outputs']}, artifact {io['outputs']}")
    if manifest["output_names"] != [o["name"] for o in manifest["outputs"]]:
        problems.append("output_names do not follow outputs")
    if manifest["input_shape"][-2:] != [manifest["image_height"], manifest["image_width"]]:
        problems.append("image size differs from the input shape")
    shapes = {o["name"]: o["shape"] for o in manifest["outputs"]}
    if shapes.get("waveform", [None])[-1] != manifest["max_samples"]:
        problems.append("max_samples differs from the waveform output")
    if shapes.get("phonemes", [None])[-1] != manifest["max_phonemes"]:
        problems.append("max_phonemes differs from the phonemes output")
    if manifest["max_frames"] not in shapes.get("mel", []):
        problems.append("max_frames is not a dimension of the mel output")
    return problems
