"""Shipped weights: safetensors files listed in ``manifest.json`` with their sha256 and architecture.

The manifest maps a role (``textseg``, ``inpaint``) to one entry::

    {"name": "textseg.mnv2w10.v5", "file": "textseg.mnv2w10.v5.safetensors", "sha256": "...",
     "arch": "textseg", "kwargs": {...}, "training": {...}, "metrics": {...}}

Loading checks the hash first; a missing or corrupt file is a ``WeightsError`` that names the file and what to do.
No pickle: tensors come from safetensors and the rest from JSON.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from engine.errors import WeightsError

SHIPPED_DIR = Path(__file__).resolve().parent
MANIFEST_NAME = "manifest.json"
ROLES = {"textseg": "text detection", "inpaint": "inpainting"}


def default_weights_dir() -> Path:
    """The shipped weights folder, or ``$KESU_WEIGHTS_DIR`` when set."""
    env = os.environ.get("KESU_WEIGHTS_DIR")
    return Path(env) if env else SHIPPED_DIR


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_manifest(folder: Path | None = None) -> dict[str, Any]:
    """The manifest of a weights folder ({} when the folder has none)."""
    folder = Path(folder) if folder else default_weights_dir()
    path = folder / MANIFEST_NAME
    if not path.exists():
        return {}
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise WeightsError(f"the weights manifest {path} cannot be read ({e}); reinstall Kesu") from e
    if not isinstance(manifest, dict):
        raise WeightsError(f"the weights manifest {path} is not a JSON object; reinstall Kesu")
    return manifest


def installed_roles(folder: Path | None = None) -> dict[str, dict[str, Any]]:
    """Role -> manifest entry of every model listed in the folder's manifest. Raises WeightsError when an entry
    cannot be used."""
    folder = Path(folder) if folder else default_weights_dir()
    return {role: _checked_entry(role, entry, folder / MANIFEST_NAME)
            for role, entry in read_manifest(folder).items() if role in ROLES}


def _checked_entry(role: str, entry: Any, path: Path) -> dict[str, Any]:
    """``entry`` if it has what loading needs (a file name, an architecture, keyword arguments if any)."""
    problem = None
    if not isinstance(entry, dict):
        problem = f"is {type(entry).__name__}, not an object"
    elif not isinstance(entry.get("file"), str) or not entry["file"]:
        problem = "names no weights file (\"file\")"
    elif not isinstance(entry.get("arch"), str):
        problem = "names no architecture (\"arch\")"
    elif not isinstance(entry.get("kwargs", {}), dict):
        problem = "has \"kwargs\" that are not an object"
    if problem:
        raise WeightsError(f"the {role!r} entry of the weights manifest {path} {problem}; reinstall Kesu")
    return entry


def manifest_entry(role: str, folder: Path | None = None) -> dict[str, Any]:
    folder = Path(folder) if folder else default_weights_dir()
    entry = read_manifest(folder).get(role)
    if entry is None:
        raise WeightsError(
            f"no {ROLES.get(role, role)} weights are installed (no {role!r} entry in {folder / MANIFEST_NAME}); "
            f"train them with `kesu train {role}` and release them into that folder, or install a Kesu release "
            "that ships them"
        )
    return _checked_entry(role, entry, folder / MANIFEST_NAME)


def checked_weights_file(role: str, folder: Path | None = None) -> Path:
    """The weights file of ``role``, after checking it exists and matches the manifest's sha256."""
    folder = Path(folder) if folder else default_weights_dir()
    entry = manifest_entry(role, folder)
    path = folder / entry["file"]
    if not path.is_file():
        raise WeightsError(f"the weights file {path} is missing; reinstall Kesu (or restore the file)")
    actual = sha256_of(path)
    if actual != entry.get("sha256"):
        raise WeightsError(
            f"the weights file {path} is corrupt (sha256 {actual[:12]}... does not match the manifest); "
            "reinstall Kesu (or restore the file)"
        )
    return path


def weights_folder_files(roles: tuple[str, ...], folder: Path | None = None) -> dict[str, bytes]:
    """File name -> bytes of the manifest and the checked weights of ``roles``: a weights folder to send to
    machines that do not share this one's file system (``kesu clean --ray``)."""
    folder = Path(folder) if folder else default_weights_dir()
    files = {MANIFEST_NAME: (folder / MANIFEST_NAME).read_bytes()} if (folder / MANIFEST_NAME).exists() else {}
    for role in roles:
        path = checked_weights_file(role, folder)
        files[path.name] = path.read_bytes()
    return files


def load_model(role: str, folder: Path | None = None):
    """Build the model of ``role`` and load its weights, verifying the sha256. Returns the model ready for
    inference: eval mode, batch normalisation folded into the convolutions (so it is not for training)."""
    from safetensors.torch import load_file

    from engine.models import build_model
    from engine.models.fold import fold_batchnorm

    folder = Path(folder) if folder else default_weights_dir()
    entry = manifest_entry(role, folder)
    path = checked_weights_file(role, folder)
    try:
        tensors = load_file(str(path))
    except Exception as e:  # safetensors raises its own error types for bad headers/data
        raise WeightsError(f"the weights file {path} cannot be read ({e}); reinstall Kesu") from e
    try:
        model = build_model(entry["arch"], **entry.get("kwargs", {}))
    except (TypeError, ValueError) as e:  # an unknown architecture or constructor argument
        raise WeightsError(
            f"the {role!r} entry of the weights manifest {folder / MANIFEST_NAME} does not describe a model this "
            f"Kesu builds ({e}); reinstall Kesu, or use weights made for this version"
        ) from e
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as e:
        first = str(e).splitlines()[0]
        raise WeightsError(
            f"the weights file {path} does not fit the {entry['arch']} model ({first}); reinstall Kesu"
        ) from e
    return fold_batchnorm(model)


def save_weights(
    model,
    role: str,
    name: str,
    arch: str,
    kwargs: dict[str, Any],
    folder: Path,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``<name>.safetensors`` into ``folder`` and record it as ``role`` in the folder's manifest."""
    from safetensors.torch import save_file

    if role not in ROLES:
        raise ValueError(f"unknown weights role {role!r}; valid roles: {', '.join(ROLES)}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.safetensors"
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(path), metadata={"name": name, "arch": arch})
    path.chmod(0o644)
    manifest = read_manifest(folder)
    previous = manifest.get(role, {}).get("file")
    if previous and previous != path.name and (folder / previous).is_file():
        (folder / previous).unlink()  # the role's earlier release is replaced, not left behind
    manifest[role] = {
        "name": name,
        "file": path.name,
        "sha256": sha256_of(path),
        "arch": arch,
        "kwargs": kwargs,
        **(extra or {}),
    }
    _write_json_atomic(folder / MANIFEST_NAME, manifest)
    return path


def record_metrics(role: str, key: str, value: Any, folder: Path | None = None) -> None:
    """Store evaluation results under ``metrics[key]`` of the role's manifest entry (the weights stay as they are)."""
    folder = Path(folder) if folder else default_weights_dir()
    manifest = read_manifest(folder)
    if role not in manifest:
        raise WeightsError(f"no {role} weights are listed in {folder / MANIFEST_NAME}; nothing to record metrics for")
    manifest[role].setdefault("metrics", {})[key] = value
    _write_json_atomic(folder / MANIFEST_NAME, manifest)


def _write_json_atomic(path: Path, data: Any) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, sort_keys=True)
        f.write("\n")
    os.chmod(tmp, 0o644)  # shipped with the package: readable by everyone who runs it
    os.replace(tmp, path)
