"""Checkpoints as safetensors with a JSON header: no pickle, ever.

The safetensors metadata holds `its_mobile` (JSON: format, kind, model dims, phoneme inventory,
training record) and `sha256` (JSON: tensor name -> sha256 of its bytes), checked on load.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from its_mobile.errors import BadCheckpoint
from its_mobile.model.dims import ModelDims
from its_mobile.model.its import ITS

FORMAT = "its-mobile/1"
DEFAULT = Path(__file__).parent / "assets" / "default.safetensors"


def _sha(t: torch.Tensor) -> str:
    return hashlib.sha256(t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()).hexdigest()


def save(path: Path, tensors: dict[str, torch.Tensor], info: dict) -> None:
    """Write tensors and their JSON `info` atomically (temporary file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    meta = {
        "its_mobile": json.dumps({"format": FORMAT, **info}),
        "sha256": json.dumps({k: _sha(v) for k, v in tensors.items()}),
    }
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata=meta)
    os.replace(tmp, path)


def load(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """(tensors, info) of a checkpoint, every tensor verified against its sha256."""
    path = Path(path)
    if not path.is_file():
        raise BadCheckpoint(f"checkpoint not found: {path}")
    try:
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
        tensors = load_file(str(path))
        info = json.loads(meta["its_mobile"])
        digests = json.loads(meta["sha256"])
    except (SafetensorError, OSError, KeyError, ValueError, RuntimeError) as e:
        raise BadCheckpoint(f"{path} is not an its-mobile checkpoint ({type(e).__name__})") from e
    if info.get("format") != FORMAT:
        raise BadCheckpoint(f"{path}: unknown checkpoint format {info.get('format')!r}")
    if set(digests) != set(tensors):
        raise BadCheckpoint(f"{path}: tensor list does not match its manifest")
    for name, t in tensors.items():
        if _sha(t) != digests[name]:
            raise BadCheckpoint(f"{path}: sha256 mismatch in tensor {name!r}")
    return tensors, info


def save_model(path: Path, model: ITS, inventory: list[str], record: dict, half: bool = False) -> None:
    """An inference checkpoint of the whole network; `half` stores float weights as float16
    (the shipped default: half the bytes, and loading widens them back to float32)."""
    info = {"kind": "its", "dims": model.dims.to_json(), "inventory": inventory, "training": record}
    state = model.state_dict()
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    save(path, state, info)


def load_model(path: Path | None = None) -> tuple[ITS, dict]:
    """(model in eval mode, info); the embedded default when `path` is None."""
    path = DEFAULT if path is None else Path(path)
    tensors, info = load(path)
    if info.get("kind") != "its":
        raise BadCheckpoint(f"{path} holds a {info.get('kind')!r} checkpoint, not a whole model")
    try:
        model = ITS(ModelDims.from_json(info["dims"]))
        model.load_state_dict(tensors, strict=True)
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise BadCheckpoint(f"{path}: weights do not fit the model it describes ({e.__class__.__name__})") from e
    if len(info.get("inventory", [])) != model.dims.n_phones:
        raise BadCheckpoint(f"{path}: phoneme inventory does not match the model")
    return model.eval(), info
