"""Checkpoints as safetensors with a JSON header: no pickle, ever.

The safetensors metadata holds `its_mobile` (JSON: format, kind, model dims, phoneme inventory,
training record) and `sha256`: the sha256 of each tensor's bytes, checked on load. Format 3
stores the digests as one base64 string, the first 16 bytes of each tensor's sha256 in the order
of the sorted tensor names (128 bits still tell any corruption or tampering; the whole 32 took
5 KB of the shipped model, which is held to 1 MB); format 2 stored all 32 bytes, format 1 a
JSON map of hex digests (~17 KB of the shipped model). Both still load.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from its_mobile.compress.packed import pack_state, unpack_state
from its_mobile.compress.ternary import latent, ternary_names
from its_mobile.compress.tiers import TIERS, Tier, tier_dims, tier_state
from its_mobile.errors import BadCheckpoint, BadInput
from its_mobile.model.dims import ModelDims
from its_mobile.model.its import ITS

FORMAT = "its-mobile/3"
OLD_FORMATS = ("its-mobile/1", "its-mobile/2")
DIGEST_BYTES = {"its-mobile/2": 32, FORMAT: 16}  # of each sha256 kept, per base64 format
DEFAULT = Path(__file__).parent / "assets" / "default.safetensors"


def _sha(t: torch.Tensor, size: int = 32) -> bytes:
    return hashlib.sha256(t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()).digest()[:size]


def _digests(stored: str, names: list[str], fmt: str) -> dict[str, bytes] | None:
    """name -> stored sha256 of each tensor; None when the stored digests do not list exactly
    these tensors."""
    if fmt not in DIGEST_BYTES:
        hexes = json.loads(stored)
        return {k: bytes.fromhex(v) for k, v in hexes.items()} if set(hexes) == set(names) else None
    raw, size = base64.b64decode(stored, validate=True), DIGEST_BYTES[fmt]
    if len(raw) != size * len(names):
        return None
    return {name: raw[size * i : size * (i + 1)] for i, name in enumerate(sorted(names))}


def save(path: Path, tensors: dict[str, torch.Tensor], info: dict) -> None:
    """Write tensors and their JSON `info` atomically (temporary file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    meta = {
        "its_mobile": json.dumps({"format": FORMAT, **info}, separators=(",", ":")),
        "sha256": base64.b64encode(b"".join(_sha(tensors[k], DIGEST_BYTES[FORMAT]) for k in sorted(tensors))).decode(),
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
        if info.get("format") not in (FORMAT, *OLD_FORMATS):
            raise BadCheckpoint(f"{path}: unknown checkpoint format {info.get('format')!r}")
        digests = _digests(meta["sha256"], list(tensors), info["format"])
    except (SafetensorError, OSError, KeyError, ValueError, RuntimeError, binascii.Error) as e:
        raise BadCheckpoint(f"{path} is not an its-mobile checkpoint ({type(e).__name__})") from e
    if digests is None:
        raise BadCheckpoint(f"{path}: tensor list does not match its manifest")
    for name, t in tensors.items():
        if _sha(t, len(digests[name])) != digests[name]:
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


def save_packed(path: Path, model: ITS, inventory: list[str], record: dict, tiers: dict[str, Tier]) -> None:
    """The shipped form: ternary weights packed 5 per byte, all `tiers` cut from them at load."""
    tensors, manifest = pack_state(model)
    info = {"kind": "its-packed", "dims": model.dims.to_json(), "inventory": inventory, "ternary": manifest,
            "tiers": {name: t.to_json() for name, t in tiers.items()}, "training": record}
    save(path, tensors, info)


def load_trainable(path: Path | None = None) -> tuple[ITS, dict]:
    """(model, info) of a whole-model checkpoint to continue training (its largest tier; the
    embedded default when `path` is None). Packed ternary weights come back as latent floats
    that quantize to the same codes and scales, so training resumes where the model stands."""
    model, info = load_model(path)
    if info["kind"] == "its-packed":
        params = dict(model.named_parameters())
        with torch.no_grad():
            for name in ternary_names(model):
                params[name].copy_(latent(params[name]))
    return model.train(), info


def model_tiers(info: dict) -> dict[str, Tier]:
    """The tiers a checkpoint holds; a plain float model holds only `large` (itself)."""
    try:
        return {name: Tier(**t) for name, t in info.get("tiers", {"large": TIERS["large"].to_json()}).items()}
    except TypeError as e:
        raise BadCheckpoint("checkpoint lists malformed tiers") from e


def load_model(path: Path | None = None, tier: str | None = None) -> tuple[ITS, dict]:
    """(model in eval mode, info); the embedded default when `path` is None. `tier` cuts one
    of the checkpoint's nested tiers out of it (default: the largest)."""
    path = DEFAULT if path is None else Path(path)
    tensors, info = load(path)
    kind = info.get("kind")
    if kind not in ("its", "its-packed"):
        raise BadCheckpoint(f"{path} holds a {kind!r} checkpoint, not a whole model")
    tiers = model_tiers(info)
    name = tier or next(iter(tiers))
    if name not in tiers:
        raise BadInput(f"unknown tier {name!r}: {path.name} has {', '.join(tiers)}")
    try:
        dims = ModelDims.from_json(info["dims"])
        state = unpack_state(tensors, info.get("ternary")) if kind == "its-packed" else tensors
        model = ITS(dims)
        model.load_state_dict(state, strict=True)
        if tiers[name] != TIERS["large"]:
            small = ITS(tier_dims(dims, tiers[name]))
            small.load_state_dict(tier_state(state, small), strict=True)
            model = small
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise BadCheckpoint(f"{path}: weights do not fit the model it describes ({e.__class__.__name__})") from e
    if len(info.get("inventory", [])) != dims.n_phones:
        raise BadCheckpoint(f"{path}: phoneme inventory does not match the model")
    return model.eval(), {**info, "tier": name}
