"""Write a rendered project as a folder and as a zip, the same bytes for the same files.

A project is a dict of relative POSIX path -> bytes. The zip has entries sorted by path, one
fixed timestamp, fixed permissions (0755 for shell scripts, 0644 for the rest) and no absolute
or parent paths, so two builds of the same inputs give byte-identical archives.
"""

from __future__ import annotations

import zipfile
from pathlib import Path, PurePosixPath

from its_mobile.errors import BadInput

# The earliest time a zip can hold; nothing about the build machine's clock leaks in.
ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def safe_path(rel: str) -> str:
    """`rel` if it stays inside the project; a path that could escape it is refused."""
    p = PurePosixPath(rel)
    if not rel or p.is_absolute() or ".." in p.parts or "\\" in rel or rel != p.as_posix():
        raise BadInput(f"unsafe path in bundle: {rel!r}")
    return rel


def tree_files(root: Path, prefix: str) -> dict[str, bytes]:
    """Every file under `root` (a file or a folder) as `prefix/...` -> bytes, sorted."""
    if root.is_symlink() or any(f.is_symlink() for f in root.rglob("*")):
        raise BadInput(f"{root} holds a symbolic link; a bundle carries only plain files")
    if root.is_file():
        return {prefix: root.read_bytes()}
    return {f"{prefix}/{f.relative_to(root).as_posix()}": f.read_bytes()
            for f in sorted(root.rglob("*")) if f.is_file()}


def _mode(rel: str) -> int:
    return 0o755 if rel.endswith(".sh") else 0o644


def write_tree(files: dict[str, bytes], root: Path) -> None:
    """The project as files under `root` (which must not exist yet)."""
    root.mkdir(parents=True)
    for rel, data in sorted(files.items()):
        path = root / safe_path(rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        path.chmod(_mode(rel))


def write_zip(files: dict[str, bytes], path: Path, top: str) -> None:
    """The project as a deterministic zip at `path`, every entry under the folder `top`/."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for rel in sorted(files):
            info = zipfile.ZipInfo(f"{top}/{safe_path(rel)}", date_time=ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # Unix, so that the permissions below are honoured
            info.external_attr = (0o100000 | _mode(rel)) << 16
            z.writestr(info, files[rel], compresslevel=9)
