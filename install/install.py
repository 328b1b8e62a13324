#!/usr/bin/env python3
"""Install Kesu: the engine (a private Python environment) and the Krita and GIMP 3 plug-ins.

    python install/install.py                      # engine + every Krita / GIMP profile found
    python install/install.py --host krita         # only Krita
    python install/install.py --dry-run            # print the plan, change nothing
    python install/install.py --uninstall          # remove exactly what was installed

Runs with any Python 3.9+ and the standard library only (it never imports the engine). What it changes:

- the engine environment: a virtual environment in the per-user data folder (Linux
  ``$XDG_DATA_HOME/kesu/engine-env`` or ``~/.local/share/kesu/engine-env``, Windows
  ``%LOCALAPPDATA%\\kesu\\engine-env``, macOS ``~/Library/Application Support/kesu/engine-env``) with the
  engine from this checkout ``pip install``-ed into it (torch pinned by pyproject.toml);
- Krita profiles: ``pykrita/kesu.desktop``, ``pykrita/kesu/`` and ``enable_kesu=true`` in ``kritarc``'s
  ``[python]`` group (other settings untouched);
- GIMP 3 profiles (3.0 and later 3.x): ``plug-ins/kesu/`` with ``kesu.py`` executable;
- in both plug-ins, ``kesu_protocol.py``: a copy of the one plug-in client ``engine/protocol.py``, which this
  script also uses itself (loaded by its path: importing the ``engine`` package would need torch);
- the plug-in config ``<config dir>/plugin.json`` ({"python", "weights_dir", "log_dir"}), and a copy inside
  the sandbox of Flatpak / Snap hosts, whose plug-ins see a different config folder;
- a manifest (``<data dir>/kesu/install-manifest.json``) listing all of the above, so ``--uninstall`` removes
  exactly that and restores the ``kritarc`` flag as it was.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

PLUGIN_NAME = "kesu"
MANIFEST_VERSION = 1
KRITA_FLATPAK = "org.kde.krita"
GIMP_FLATPAK = "org.gimp.GIMP"
HOSTS = ("krita", "gimp")
# The plug-in client in a checkout, and its name inside each installed plug-in.
CLIENT_SOURCE = Path("engine", "protocol.py")
CLIENT_NAME = "kesu_protocol.py"
# Files never copied from the source tree into a profile.
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", ".*")
VERIFY_SCRIPT = """\
import sys
import numpy as np
from engine.errors import WeightsError
from engine.pipeline import Engine
try:
    eng = Engine.load()
except WeightsError as e:
    print("NO_WEIGHTS:", e)
    sys.exit(3)
prob = eng.detect(np.zeros((64, 64, 3), np.uint8))
assert prob.shape == (64, 64), prob.shape
print("detect ok")
"""


class InstallError(Exception):
    """A step failed; the message says what happened and how to retry."""


@functools.cache
def client() -> ModuleType:
    """This checkout's plug-in client (``engine/protocol.py``): config paths and the server's file names."""
    path = Path(__file__).resolve().parent.parent / CLIENT_SOURCE
    spec = importlib.util.spec_from_file_location("kesu_install_client", path)
    if spec is None or spec.loader is None or not path.is_file():
        raise InstallError(f"{path} is missing: run the installer from a complete Kesu checkout")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


# ============================================================================================ the system
@dataclass
class System:
    """The parts of the machine the installer looks at, so tests can simulate any OS.

    platform: ``sys.platform`` style ("linux", "win32", "darwin"); env: environment variables; home: the
    user's home folder; apps: the host installations present, e.g. {"krita:native", "gimp:flatpak"}
    (None = detect them).
    """

    platform: str
    env: Mapping[str, str]
    home: Path
    apps: set[str] | None = None

    @classmethod
    def current(cls) -> System:
        return cls(sys.platform, dict(os.environ), Path.home())

    @property
    def windows(self) -> bool:
        return self.platform.startswith("win")

    @property
    def mac(self) -> bool:
        return self.platform == "darwin"

    def _env_dir(self, name: str) -> Path | None:
        v = self.env.get(name, "")
        return Path(v) if v else None

    def _xdg(self, name: str, default: str) -> Path:
        # XDG base-dir spec: relative values are invalid and must be ignored.
        v = self.env.get(name, "")
        return Path(v) if v and os.path.isabs(v) else self.home / default

    def appdata(self) -> Path:
        """Windows roaming application data (%APPDATA%)."""
        return self._env_dir("APPDATA") or self.home / "AppData" / "Roaming"

    def localappdata(self) -> Path:
        """Windows local application data (%LOCALAPPDATA%)."""
        return self._env_dir("LOCALAPPDATA") or self.home / "AppData" / "Local"

    def xdg_config(self) -> Path:
        return self._xdg("XDG_CONFIG_HOME", ".config")

    def xdg_data(self) -> Path:
        return self._xdg("XDG_DATA_HOME", ".local/share")

    def has_app(self, app: str) -> bool:
        """Whether host installation ``app`` ("krita:native", "gimp:flatpak", ...) is present."""
        if self.apps is None:
            self.apps = detect_apps(self)
        return app in self.apps


def detect_apps(s: System) -> set[str]:
    """Look for Krita / GIMP installations on the real machine (programs, Flatpak and Snap apps)."""
    found: set[str] = set()
    if s.windows:
        progs = [
            Path(s.env[k]) for k in ("ProgramFiles", "ProgramW6432", "ProgramFiles(x86)") if s.env.get(k)
        ]
        if any(list(p.glob("Krita*/bin/krita.exe")) for p in progs):
            found.add("krita:native")
        if any(list(p.glob("GIMP 3*/bin/gimp-3*.exe")) for p in progs):
            found.add("gimp:native")
        return found
    if s.mac:
        apps = [Path("/Applications"), s.home / "Applications"]
        if any((a / "krita.app").exists() for a in apps):
            found.add("krita:native")
        if any(list(a.glob("GIMP*.app")) for a in apps):
            found.add("gimp:native")
        return found
    if shutil.which("krita", path=s.env.get("PATH")):
        found.add("krita:native")
    if any(shutil.which(g, path=s.env.get("PATH")) for g in ("gimp-3.0", "gimp-3", "gimp")):
        found.add("gimp:native")
    for app, fid in (("krita", KRITA_FLATPAK), ("gimp", GIMP_FLATPAK)):
        if (s.xdg_data() / "flatpak/app" / fid).exists() or Path("/var/lib/flatpak/app", fid).exists():
            found.add(app + ":flatpak")
        if Path("/snap", app).exists():
            found.add(app + ":snap")
    return found


# ---------------------------------------------------------------------------------------- folders
def data_dir(s: System) -> Path:
    """Per-user Kesu data folder (engine environment, logs, install manifest)."""
    if s.windows:
        return s.localappdata() / "kesu"
    if s.mac:
        return s.home / "Library" / "Application Support" / "kesu"
    return s.xdg_data() / "kesu"


def venv_python(env_dir: Path, s: System) -> Path:
    """The interpreter inside a virtual environment."""
    return env_dir / "Scripts" / "python.exe" if s.windows else env_dir / "bin" / "python"


@dataclass
class Profile:
    """Where one host keeps its user plug-ins.

    host: "krita" or "gimp"; root: Krita's resource folder (holds pykrita/) or a GIMP 3.x folder (holds
    plug-ins/); kind: native, flatpak, snap or portable; kritarc: Krita's settings file; sandbox_config: the
    Kesu config folder as the plug-in sees it inside a Flatpak/Snap sandbox (None when it is the normal one).
    """

    host: str
    root: Path
    kind: str
    kritarc: Path | None = None
    sandbox_config: Path | None = None

    def label(self) -> str:
        name = "Krita" if self.host == "krita" else f"GIMP {self.root.name}"
        return f"{name} ({self.kind}) {self.root}"


_GIMP_VERSION = re.compile(r"^3\.\d+$")


_GIMP_BINARY = re.compile(r"^gimp(?:-console)?-(3\.\d+)(?:\.exe)?$")


def native_gimp_version(s: System) -> str | None:
    """The newest GIMP 3.x installed as a program ("3.2"), from its versioned binaries (``gimp-3.2``,
    ``gimp-console-3.2``) on PATH (Linux) or in ``GIMP 3*/bin`` (Windows); None when none is found."""
    dirs: list[Path] = []
    if s.windows:
        for k in ("ProgramFiles", "ProgramW6432", "ProgramFiles(x86)"):
            if s.env.get(k):
                dirs += list(Path(s.env[k]).glob("GIMP 3*/bin"))
    elif not s.mac:
        dirs = [Path(d) for d in s.env.get("PATH", "").split(os.pathsep) if d]
    found = set()
    for d in dirs:
        try:
            names = [p.name for p in d.iterdir()]
        except OSError:
            continue
        found.update(m.group(1) for m in map(_GIMP_BINARY.match, names) if m)
    return max(found, key=lambda v: int(v.split(".")[1]), default=None)


def _gimp_versions(base: Path) -> list[Path]:
    """Existing GIMP 3.x profile folders under ``base`` (the "GIMP" folder), oldest first."""
    if not base.is_dir():
        return []
    found = [p for p in base.iterdir() if p.is_dir() and _GIMP_VERSION.match(p.name)]
    return sorted(found, key=lambda p: int(p.name.split(".")[1]))


def candidate_profiles(s: System, host: str) -> list[tuple[Profile, str]]:
    """Every place ``host`` may keep its profile on this OS, with the app id that would create it."""
    out: list[tuple[Profile, str]] = []
    if host == "krita":
        if s.windows:
            out.append(
                (
                    Profile("krita", s.appdata() / "krita", "native", s.localappdata() / "kritarc"),
                    "krita:native",
                )
            )
        elif s.mac:
            out.append(
                (
                    Profile(
                        "krita",
                        s.home / "Library/Application Support/krita",
                        "native",
                        s.home / "Library/Preferences/kritarc",
                    ),
                    "krita:native",
                )
            )
        else:
            out.append(
                (
                    Profile("krita", s.xdg_data() / "krita", "native", s.xdg_config() / "kritarc"),
                    "krita:native",
                )
            )
            fp = s.home / ".var/app" / KRITA_FLATPAK
            out.append(
                (
                    Profile("krita", fp / "data/krita", "flatpak", fp / "config/kritarc", fp / "config/kesu"),
                    "krita:flatpak",
                )
            )
            sn = s.home / "snap/krita/current"
            out.append(
                (
                    Profile(
                        "krita",
                        sn / ".local/share/krita",
                        "snap",
                        sn / ".config/kritarc",
                        sn / ".config/kesu",
                    ),
                    "krita:snap",
                )
            )
        return out
    # GIMP: one profile per existing 3.x folder. For a GIMP never started yet: the folder of the installed
    # version (GIMP 3.2 reads ~/.config/GIMP/3.2), "3.0" when the version is not known (Flatpak, Snap, macOS).
    bases: list[tuple[Path, str, Path | None]] = []
    if s.windows:
        bases.append((s.appdata() / "GIMP", "gimp:native", None))
    elif s.mac:
        bases.append((s.home / "Library/Application Support/GIMP", "gimp:native", None))
    else:
        bases.append((s.xdg_config() / "GIMP", "gimp:native", None))
        fp = s.home / ".var/app" / GIMP_FLATPAK / "config"
        bases.append((fp / "GIMP", "gimp:flatpak", fp / "kesu"))
        sn = s.home / "snap/gimp/current/.config"
        bases.append((sn / "GIMP", "gimp:snap", sn / "kesu"))
    native = native_gimp_version(s) or "3.0"
    for base, app, sandbox in bases:
        kind = app.split(":")[1]
        versions = _gimp_versions(base) or [base / (native if kind == "native" else "3.0")]
        out.extend((Profile("gimp", v, kind, None, sandbox), app) for v in versions)
    if s.env.get("GIMP3_DIRECTORY"):
        out.insert(0, (Profile("gimp", Path(s.env["GIMP3_DIRECTORY"]), "native"), "gimp:native"))
    return out


def profile_exists(p: Profile) -> bool:
    """A profile counts as present when the host has created its folder (or Krita its kritarc)."""
    if p.host == "krita":
        return p.root.is_dir() or bool(p.kritarc and p.kritarc.is_file())
    return p.root.is_dir()


def find_profiles(s: System, host: str, explicit: bool) -> tuple[list[Profile], list[str]]:
    """Profiles to install into for ``host`` and notes for the user.

    Existing profiles first; if there is none, the default folder of every installation found (the host
    picks the plug-in up when it first starts); if no installation is found either, the native default
    only when the user asked for this host by name (``explicit``).
    """
    notes: list[str] = []
    cands = candidate_profiles(s, host)
    found = [p for p, _ in cands if profile_exists(p)]
    if found:
        return found, notes
    seen: set[str] = set()
    defaults = []
    for p, app in cands:
        if app not in seen and s.has_app(app):
            seen.add(app)
            defaults.append(p)
    if defaults:
        return defaults, notes
    name = "Krita" if host == "krita" else "GIMP 3"
    if explicit:
        p = cands[0][0]
        notes.append(f"{name}: no profile or installation found; installing into the default folder {p.root}")
        return [p], notes
    notes.append(
        f"{name}: no profile or installation found, skipped (start {name} once and re-run, "
        f"or pass --host {host} / --profile DIR)"
    )
    return [], notes


def portable_profile(s: System, root: Path, host: str | None) -> Profile:
    """A profile given with --profile: the host is ``host`` or guessed from the folder's content."""
    if host is None:
        if (root / "pykrita").is_dir() or (root / "kritarc").is_file() or "krita" in root.name.lower():
            host = "krita"
        elif any((root / n).exists() for n in ("plug-ins", "pluginrc", "gimprc")) or _GIMP_VERSION.match(
            root.name
        ):
            host = "gimp"
        else:
            raise InstallError(
                f"cannot tell whether {root} is a Krita or a GIMP profile; "
                f"pass --host krita or --host gimp with --profile"
            )
    kritarc = None
    if host == "krita":
        # Portable Krita keeps kritarc beside its resources when it has one there, else in the usual place.
        kritarc = (
            root / "kritarc" if (root / "kritarc").is_file() else candidate_profiles(s, "krita")[0][0].kritarc
        )
    return Profile(host, root, "portable", kritarc)


# ============================================================================================ manifest
@dataclass
class Manifest:
    """What the installer changed, so --uninstall can undo exactly that.

    owned: files/folders created wholesale by the installer, with their host ("krita", "gimp", "config",
    "engine"); created_dirs: parent folders it had to create (removed on uninstall only when empty);
    kritarc: flag edits with the value found before the first install; configs: plugin.json files with the
    content found before (None = did not exist).
    """

    path: Path
    owned: list[dict] = field(default_factory=list)
    created_dirs: list[dict] = field(default_factory=list)
    kritarc: list[dict] = field(default_factory=list)
    configs: list[dict] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path) -> Manifest:
        if not path.is_file():
            return cls(path)
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise InstallError(
                f"the install manifest {path} is unreadable ({e}); remove it and re-install "
                f"(files of the earlier install must then be removed by hand)"
            ) from e
        if d.get("version") != MANIFEST_VERSION:
            raise InstallError(f"{path} was written by another installer version ({d.get('version')})")
        return cls(
            path, d.get("owned", []), d.get("created_dirs", []), d.get("kritarc", []), d.get("configs", [])
        )

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        d = {
            "version": MANIFEST_VERSION,
            "owned": self.owned,
            "created_dirs": self.created_dirs,
            "kritarc": self.kritarc,
            "configs": self.configs,
        }
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(d, indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, self.path)

    def owns(self, path: Path) -> bool:
        return any(Path(e["path"]) == path for e in self.owned)

    def migrated_from(self, path: Path) -> Path | None:
        """The GIMP plug-in folder of ours that ``path`` is GIMP's copy of, or None.

        A newer GIMP (3.2) starting for the first time copies the older profile (``GIMP/3.0``), our
        ``plug-ins/kesu`` included, into its own folder (``GIMP/3.2``): that copy is ours as well.
        """
        def profile_base(p: Path) -> Path | None:  # ".../GIMP" for ".../GIMP/3.x/plug-ins/kesu"
            ok = p.name == PLUGIN_NAME and p.parent.name == "plug-ins" and _GIMP_VERSION.match(p.parent.parent.name)
            return p.parent.parent.parent if ok else None

        base = profile_base(path)
        if base is None:
            return None
        for e in self.owned:
            p = Path(e["path"])
            if e.get("host") == "gimp" and p != path and profile_base(p) == base:
                return p
        return None

    def add_owned(self, path: Path, host: str) -> None:
        if not self.owns(path):
            self.owned.append({"path": str(path), "host": host})

    def add_created_dir(self, path: Path, host: str) -> None:
        if not any(Path(e["path"]) == path for e in self.created_dirs):
            self.created_dirs.append({"path": str(path), "host": host})

    def empty(self) -> bool:
        return not (self.owned or self.created_dirs or self.kritarc or self.configs)


# ============================================================================================ actions
class Installer:
    """Plans and performs the changes; with ``dry_run`` it only prints what it would do."""

    def __init__(self, s: System, dry_run: bool, out: Callable[[str], None] = print) -> None:
        self.s = s
        self.dry = dry_run
        self.out = out
        self.manifest = Manifest.load(data_dir(s) / "install-manifest.json")

    def say(self, msg: str) -> None:
        self.out(("[dry-run] would " if self.dry else "") + msg)

    # ---------------------------------------------------------------- folders and files
    def make_dirs(self, path: Path, host: str) -> None:
        """Create ``path`` and missing parents, recording each one created."""
        missing = []
        p = path
        while not p.exists():
            missing.append(p)
            if p.parent == p:
                break
            p = p.parent
        for d in reversed(missing):
            if not self.dry:
                d.mkdir()
            self.manifest.add_created_dir(d, host)

    def install_tree(
        self,
        src: Path,
        dst: Path,
        host: str,
        force: bool,
        executable: Iterable[str] = (),
        extra: Mapping[str, Path] | None = None,
    ) -> None:
        """Copy file or folder ``src`` to ``dst``, replacing an earlier install of ours in place; ``extra``:
        files added into the folder under the names given (the plug-in client)."""
        migrated = None if self.manifest.owns(dst) else self.manifest.migrated_from(dst)
        if migrated is not None and dst.exists():
            self.say(f"{dst} is GIMP's copy of {migrated} (made when this GIMP version first started)")
        elif (dst.exists() or dst.is_symlink()) and not self.manifest.owns(dst) and not force:
            raise InstallError(
                f"{dst} already exists and was not installed by this installer; move it away "
                f"(or pass --force to replace it) and run the same command again"
            )
        self.say(f"{'update' if dst.exists() else 'install'} {dst}")
        self.make_dirs(dst.parent, host)
        self.manifest.add_owned(dst, host)
        if self.dry:
            return
        # Copy beside the target first, then swap, so a failure never leaves a half-copied plug-in.
        tmp = Path(tempfile.mkdtemp(prefix=f".{dst.name}.kesu-new-", dir=dst.parent))
        try:
            new = tmp / dst.name
            if src.is_dir():
                shutil.copytree(src, new, ignore=IGNORED)
            else:
                shutil.copy2(src, new)
            for name, path in (extra or {}).items():
                shutil.copy2(path, new / name)
            for p in [new, *new.rglob("*")] if new.is_dir() else [new]:
                if p.is_file():
                    mode = 0o755 if p.name in executable else 0o644
                    p.chmod(mode)
            _remove(dst)
            os.replace(new, dst)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    # ---------------------------------------------------------------- kritarc
    def enable_krita_plugin(self, kritarc: Path) -> None:
        """Set ``[python] enable_kesu=true`` in kritarc, keeping every other line as it was."""
        text = kritarc.read_text(encoding="utf-8") if kritarc.is_file() else None
        new, previous, edit = set_kritarc_flag(text or "", f"enable_{PLUGIN_NAME}", "true")
        if not any(Path(e["path"]) == kritarc for e in self.manifest.kritarc):
            # the state before the FIRST install is what uninstall restores; an upgrade keeps it
            self.manifest.kritarc.append(
                {"path": str(kritarc), "previous": previous, "created_file": text is None, "edit": edit}
            )
        if new == text:
            self.out(f"{kritarc}: enable_{PLUGIN_NAME}=true already set")
            return
        self.say(f"set [python] enable_{PLUGIN_NAME}=true in {kritarc}")
        self.make_dirs(kritarc.parent, "krita")
        if not self.dry:
            _write_keep_mode(kritarc, new)

    # ---------------------------------------------------------------- plugin.json
    def write_config(self, cfg_dir: Path, values: dict, host: str) -> None:
        """Write ``cfg_dir/plugin.json``, keeping keys set by the user (e.g. their own weights_dir)."""
        path = cfg_dir / "plugin.json"
        old_text = path.read_text(encoding="utf-8") if path.is_file() else None
        data: dict = {}
        if old_text:
            try:
                data = json.loads(old_text)
            except ValueError:
                data = {}
        if not any(Path(e["path"]) == path for e in self.manifest.configs):
            self.manifest.configs.append({"path": str(path), "previous": old_text, "host": host})
        merged = dict(data)
        merged.update({k: v for k, v in values.items() if not (k == "weights_dir" and data.get(k))})
        self.say(f"write {path}")
        self.make_dirs(cfg_dir, host)
        if not self.dry:
            _write_keep_mode(path, json.dumps(merged, indent=2) + "\n")


def set_kritarc_flag(text: str, key: str, value: str) -> tuple[str, str | None, dict]:
    """Return (new text, previous value or None, edit info) with ``key=value`` in the ``[python]`` group.

    Only that one line changes (or is added right after ``[python]``); a missing group is appended. The edit
    info ({"created_section", "added_blank", "added_newline"}) lets :func:`unset_kritarc_flag` undo exactly.
    """
    nl = "\r\n" if "\r\n" in text else "\n"
    lines = text.splitlines(keepends=True)
    info = {"created_section": False, "added_blank": False, "added_newline": False}
    header_at, at = _find_flag(lines, key)
    if at is not None:
        prev = lines[at].split("=", 1)[1].strip()
        lines[at] = _flag_line(lines[at], key, value)
        return "".join(lines), prev, info
    if header_at is not None:
        if not lines[header_at].endswith(("\n", "\r")):
            lines[header_at] += nl
            info["added_newline"] = True
        lines.insert(header_at + 1, f"{key}={value}{nl}")
        return "".join(lines), None, info
    info["created_section"] = True
    if text and not text.endswith(("\n", "\r")):
        text += nl
        info["added_newline"] = True
    if text.strip():
        text += nl  # a blank line between groups, as Qt writes them
        info["added_blank"] = True
    return f"{text}[python]{nl}{key}={value}{nl}", None, info


def _find_flag(lines: list[str], key: str) -> tuple[int | None, int | None]:
    """(the ``[python]`` header, the ``key=`` line in that group) of kritarc's lines: the group holding the key,
    else the first ``[python]`` group; None where there is none."""
    section = first = current = None
    for i, line in enumerate(lines):
        s = line.strip()
        if s.startswith("[") and s.endswith("]"):
            section = s[1:-1]
            if section == "python":
                current = i
                first = i if first is None else first
            continue
        if section == "python" and "=" in s and s.split("=", 1)[0].strip() == key:
            return current, i
    return first, None


def _flag_line(line: str, key: str, value: str) -> str:
    """``key=value`` with the line ending ``line`` had."""
    ending = line[len(line.rstrip("\r\n")) :]
    return f"{key}={value}{ending}"


def unset_kritarc_flag(text: str, key: str, previous: str | None, info: dict | None = None) -> str:
    """Undo :func:`set_kritarc_flag`: restore ``previous`` or remove the line, and a group it created."""
    info = info or {}
    lines = text.splitlines(keepends=True)
    header_at, cut = _find_flag(lines, key)
    if cut is None:
        return text  # the flag is gone already (the user or Krita removed it)
    if previous is not None:
        lines[cut] = _flag_line(lines[cut], key, previous)
        return "".join(lines)
    del lines[cut]
    if info.get("created_section") and header_at is not None:
        j = header_at + 1
        while j < len(lines) and not lines[j].strip():
            j += 1
        if j == len(lines) or lines[j].strip().startswith("["):
            # the group we created is empty again: drop it and the blank separator we added before it
            del lines[header_at:j]
            cut = header_at
            if info.get("added_blank") and header_at > 0 and not lines[header_at - 1].strip():
                del lines[header_at - 1]
                cut = header_at - 1
    out = "".join(lines)
    if info.get("added_newline") and cut == len(lines) and lines:
        # the file's last line had no newline before we appended after it: take that newline away again
        out = out[: len(out) - (len(lines[-1]) - len(lines[-1].rstrip("\r\n")))]
    return out


def _write_keep_mode(path: Path, text: str) -> None:
    """Replace a file's content atomically, keeping its permissions."""
    mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else None
    tmp = path.with_name(f".{path.name}.kesu-tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write(text)
    if mode is not None:
        os.chmod(tmp, mode)
    os.replace(tmp, path)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


# ============================================================================================ engine
def _run(cmd: list[str], timeout: float, capture: bool = True) -> subprocess.CompletedProcess:
    # run outside the checkout, so that `-m engine` tests the installed engine, not the source folder
    try:
        return subprocess.run(cmd, capture_output=capture, text=True, timeout=timeout, cwd=tempfile.gettempdir())
    except FileNotFoundError as e:
        raise InstallError(f"cannot run {cmd[0]}: {e}") from e
    except subprocess.TimeoutExpired as e:
        raise InstallError(f"{' '.join(cmd[:4])} ... took longer than {timeout:.0f}s") from e


def python_version(python: Path) -> tuple[int, int]:
    r = _run([str(python), "-c", "import sys; print(sys.version_info[0], sys.version_info[1])"], 60)
    if r.returncode != 0:
        raise InstallError(f"{python} does not run: {r.stderr.strip()[-500:]}")
    major, minor = r.stdout.split()
    return int(major), int(minor)


def setup_engine(inst: Installer, args: argparse.Namespace, source: Path) -> Path:
    """Create or reuse the engine environment, install the engine into it, verify it; returns its python."""
    s = inst.s
    # abspath, not resolve(): a venv's python is a symlink that must be called through the venv
    target = Path(os.path.abspath(os.path.expanduser(args.engine_env))) if args.engine_env else None
    target = target or data_dir(s) / "engine-env"
    if target.is_file():
        # An existing interpreter given directly (a developer's venv): used as it is.
        inst.out(f"engine: using the interpreter {target} as it is (nothing is installed into it)")
        if not args.skip_engine and not inst.dry:
            verify_engine(inst, target)
        return target
    py = venv_python(target, s)
    if args.skip_engine:
        inst.out(f"engine: skipped (--skip-engine); plug-ins will use {py}")
        if not py.exists():
            inst.out(f"  note: {py} does not exist yet; install the engine before using the plug-ins")
        return py
    if not (source / "pyproject.toml").is_file():
        raise InstallError(
            f"{source} has no pyproject.toml, so the engine cannot be installed from it: run the "
            f"installer from a complete Kesu checkout (or pass --skip-engine)"
        )
    base = Path(args.python) if args.python else Path(sys.executable)
    if not py.exists():
        if target.exists() and any(target.iterdir()):
            raise InstallError(
                f"{target} exists but is not a Python environment; remove it or choose another "
                f"folder with --engine-env, then run the same command again"
            )
        ver = python_version(base)
        if ver < (3, 10):
            raise InstallError(
                f"the engine needs Python 3.10 or newer, but {base} is {ver[0]}.{ver[1]}; "
                f"re-run with --python /path/to/python3.11 (any 3.10+)"
            )
        inst.say(f"create the engine environment {target} (with {base})")
        inst.make_dirs(target.parent, "engine")
        inst.manifest.add_owned(target, "engine")
        if not inst.dry:
            r = _run([str(base), "-m", "venv", str(target)], 600)
            if r.returncode != 0:
                raise InstallError(
                    f"creating the environment failed: {r.stderr.strip()[-1500:]}\n"
                    f"On Debian/Ubuntu install python3-venv; then run the same command again"
                )
    else:
        inst.out(f"engine: reusing the environment {target}")
    cmd = [str(py), "-m", "pip", "install", "--upgrade", *args.pip_arg, str(source)]
    inst.say("run " + " ".join(cmd))
    if not inst.dry:
        if inst.manifest.owns(target):
            inst.manifest.save()  # record the new environment before the long step, so --uninstall removes it
        r = _run(cmd, 7200, capture=False)
        if r.returncode != 0:
            raise InstallError(
                f"pip failed (exit {r.returncode}); the messages above say why (often no network "
                f"or no disk space). Fix that and run the same command again: the environment is "
                f"reused and nothing else has been changed yet"
            )
        verify_engine(inst, py)
    return py


def verify_engine(inst: Installer, py: Path) -> None:
    """``python -m engine --version`` and a tiny detection; a missing weights file is reported, not fatal."""
    r = _run([str(py), "-m", "engine", "--version"], 300)
    if r.returncode != 0:
        raise InstallError(
            f"the engine does not start ({py} -m engine --version exited {r.returncode}):\n"
            f"{(r.stdout + r.stderr).strip()[-1500:]}\nRe-run this installer to repair it"
        )
    inst.out(f"engine: {r.stdout.strip() or r.stderr.strip()}")
    r = _run([str(py), "-c", VERIFY_SCRIPT], 600)
    if r.returncode == 3:
        inst.out(
            "engine: installed, but no trained weights are shipped with this version yet, so Detect Text "
            "and Clean Page will report that until weights are installed ("
            + r.stdout.replace("NO_WEIGHTS:", "").strip()
            + ")"
        )
    elif r.returncode != 0:
        raise InstallError(
            f"the engine's test detection failed:\n{(r.stdout + r.stderr).strip()[-1500:]}\n"
            f"Re-run this installer; if it fails again, report the messages above"
        )
    else:
        inst.out("engine: test detection ok")


# ============================================================================================ main steps
def plugin_sources(source: Path, hosts: Iterable[str]) -> dict[str, dict[str, Path]]:
    """The plug-in files in the checkout; InstallError when one is missing."""
    out: dict[str, dict[str, Path]] = {}
    for host in hosts:
        if host == "krita":
            files = {
                "desktop": source / "krita_plugin" / f"{PLUGIN_NAME}.desktop",
                "package": source / "krita_plugin" / PLUGIN_NAME,
            }
            need = [files["desktop"], files["package"] / "__init__.py"]
        else:
            files = {"folder": source / "gimp_plugin" / PLUGIN_NAME}
            need = [files["folder"] / f"{PLUGIN_NAME}.py"]
        files["client"] = source / CLIENT_SOURCE
        for n in [*need, files["client"]]:
            if not n.exists():
                raise InstallError(f"{n} is missing: run the installer from a complete Kesu checkout")
        out[host] = files
    return out


def install(s: System, args: argparse.Namespace, out: Callable[[str], None] = print) -> int:
    inst = Installer(s, args.dry_run, out)
    source = Path(args.source).resolve() if args.source else Path(__file__).resolve().parent.parent
    hosts = list(HOSTS) if args.host == "all" else [args.host]
    srcs = plugin_sources(source, hosts)

    # Profiles first: a problem there is cheaper to report than after a long pip install.
    profiles: list[Profile] = []
    if args.profile:
        for p in args.profile:
            prof = portable_profile(
                s, Path(p).expanduser().resolve(), None if args.host == "all" else args.host
            )
            profiles.append(prof)
        hosts = sorted({p.host for p in profiles})
        srcs = plugin_sources(source, hosts)
    else:
        for host in hosts:
            found, notes = find_profiles(s, host, explicit=args.host != "all")
            for n in notes:
                out(n)
            profiles += found
    if not profiles:
        raise InstallError(
            "no Krita or GIMP 3 profile to install into; start Krita or GIMP once, or pass "
            "--profile DIR (with --host krita|gimp)"
        )

    py = setup_engine(inst, args, source)
    cfg_dir = (
        Path(args.config_dir).expanduser().resolve()
        if args.config_dir
        else client().config_dir(s.env, s.platform, s.home)
    )
    logs = data_dir(s) / "logs"
    if not logs.exists():
        inst.say(f"create the log folder {logs}")
        inst.make_dirs(logs.parent, "config")
        inst.manifest.add_owned(logs, "config")
        if not inst.dry:
            logs.mkdir()
    values = {"python": str(py), "weights_dir": None, "log_dir": str(logs)}
    inst.write_config(cfg_dir, values, "config")

    for prof in profiles:
        out(f"{prof.label()}:")
        if prof.host == "krita":
            pk = prof.root / "pykrita"
            inst.install_tree(srcs["krita"]["desktop"], pk / f"{PLUGIN_NAME}.desktop", "krita", args.force)
            inst.install_tree(
                srcs["krita"]["package"],
                pk / PLUGIN_NAME,
                "krita",
                args.force,
                extra={CLIENT_NAME: srcs["krita"]["client"]},
            )
            assert prof.kritarc is not None
            inst.enable_krita_plugin(prof.kritarc)
        else:
            inst.install_tree(
                srcs["gimp"]["folder"],
                prof.root / "plug-ins" / PLUGIN_NAME,
                "gimp",
                args.force,
                executable=[f"{PLUGIN_NAME}.py"],
                extra={CLIENT_NAME: srcs["gimp"]["client"]},
            )
        if prof.sandbox_config is not None and prof.sandbox_config != cfg_dir:
            inst.write_config(prof.sandbox_config, values, prof.host)
            if prof.kind == "flatpak":
                out(
                    "  note: a Flatpak host can start the engine only outside its sandbox (flatpak-spawn "
                    "--host); if the plug-in says the engine cannot start, use the native package"
                )
            if prof.kind == "snap":
                out(
                    "  note: Snap apps are confined and may not be allowed to start the engine; "
                    "the Flatpak or native package is recommended"
                )

    if not inst.dry:
        inst.make_dirs(inst.manifest.path.parent, "config")
        inst.manifest.save()
    out(
        ("[dry-run] nothing was changed" if inst.dry else "done")
        + "; the menus appear the next time Krita / GIMP starts. "
        + f"Uninstall: python {Path(__file__).resolve()} --uninstall"
    )
    return 0


def uninstall(s: System, args: argparse.Namespace, out: Callable[[str], None] = print) -> int:
    inst = Installer(s, args.dry_run, out)
    m = inst.manifest
    if not m.path.exists():
        out(f"nothing to uninstall: no install manifest at {m.path}")
        return 0
    full = args.host == "all"
    hosts = {"krita", "gimp", "config", "engine"} if full else {args.host}
    gone: set[Path] = set()  # everything removed (or, in a dry run, that would be)

    def mine(e: dict) -> bool:
        return e.get("host", "config") in hosts

    for e in [e for e in m.kritarc if "krita" in hosts]:
        path = Path(e["path"])
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            new = unset_kritarc_flag(text, f"enable_{PLUGIN_NAME}", e["previous"], e.get("edit"))
            if e["created_file"] and not new.strip():
                inst.say(f"remove {path} (created by the installer)")
                gone.add(path)
                if not inst.dry:
                    path.unlink()
            elif new != text:
                what = (
                    f"set enable_{PLUGIN_NAME}={e['previous']} again"
                    if e["previous"]
                    else f"remove enable_{PLUGIN_NAME}"
                )
                inst.say(f"{what} in {path}")
                if not inst.dry:
                    _write_keep_mode(path, new)
        m.kritarc.remove(e)
    created = {Path(e["path"]) for e in m.created_dirs}
    for e in [e for e in m.configs if mine(e)]:
        path = Path(e["path"])
        if path.parent in created:
            if (path.parent / "server.json").exists():
                out(
                    f"note: a Kesu engine server may still be running ({path.parent / 'server.json'}); "
                    f"if removing files fails, stop it with `kesu serve --stop` and run this again"
                )
            for name in client().RUNTIME_FILES:
                if (path.parent / name).is_file():
                    inst.say(f"remove {path.parent / name}")
                    gone.add(path.parent / name)
                    if not inst.dry:
                        (path.parent / name).unlink()
        if e["previous"] is None:
            if path.exists():
                inst.say(f"remove {path}")
                gone.add(path)
                if not inst.dry:
                    path.unlink()
        else:
            inst.say(f"restore {path} as it was before the install")
            if not inst.dry:
                _write_keep_mode(path, e["previous"])
        m.configs.remove(e)
    for e in [e for e in m.owned if mine(e)]:
        path = Path(e["path"])
        if path.exists() or path.is_symlink():
            inst.say(f"remove {path}")
            gone.add(path)
            if not inst.dry:
                _remove(path)
        m.owned.remove(e)
        # the copies a newer GIMP made of it when it migrated the profile (GIMP/3.0 -> GIMP/3.2)
        if e.get("host") == "gimp" and path.parent.name == "plug-ins" and _GIMP_VERSION.match(path.parent.parent.name):
            for version in _gimp_versions(path.parent.parent.parent):
                copy = version / "plug-ins" / PLUGIN_NAME
                if copy != path and copy not in gone and not m.owns(copy) and (copy / "kesu.py").is_file():
                    inst.say(f"remove {copy} (GIMP's copy of {path}, made when it migrated the profile)")
                    gone.add(copy)
                    if not inst.dry:
                        _remove(copy)
    done_with_manifest = m.empty() or full
    if done_with_manifest:
        gone.add(m.path)
        if not inst.dry:
            m.path.unlink()
    # Folders the installer created, deepest first, only when empty: anything the user put there stays.
    for e in sorted([e for e in m.created_dirs if mine(e)], key=lambda e: -len(Path(e["path"]).parts)):
        path = Path(e["path"])
        if path.is_dir():
            if all(c in gone for c in path.iterdir()):
                inst.say(f"remove the folder {path} (created by the installer, now empty)")
                gone.add(path)
                if not inst.dry:
                    path.rmdir()
            elif not full:
                continue  # still holds what the other host's uninstall will remove
            else:
                out(f"kept {path}: it holds files that were not installed by Kesu")
        m.created_dirs.remove(e)
    if not inst.dry and not done_with_manifest:
        m.save()
    out("[dry-run] nothing was changed" if inst.dry else "uninstalled")
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="install.py",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument(
        "--host", choices=["krita", "gimp", "all"], default="all", help="which plug-ins (default all)"
    )
    ap.add_argument("--dry-run", action="store_true", help="print what would change and change nothing")
    ap.add_argument("--uninstall", action="store_true", help="remove what an earlier install put in place")
    ap.add_argument(
        "--profile",
        action="append",
        metavar="DIR",
        help="install into this Krita resource folder or GIMP 3.x profile only (portable installs; "
        "repeatable; use with --host when the folder is still empty)",
    )
    ap.add_argument(
        "--engine-env",
        metavar="DIR",
        help="engine virtual environment (default: the per-user data folder), or an existing "
        "Python interpreter to use as it is",
    )
    ap.add_argument(
        "--config-dir",
        metavar="DIR",
        help="where plugin.json goes (default: the per-user config folder, or $KESU_CONFIG_DIR)",
    )
    ap.add_argument(
        "--skip-engine",
        action="store_true",
        help="do not create/update the engine environment; only install the plug-ins and config",
    )
    ap.add_argument(
        "--python",
        metavar="EXE",
        help="Python 3.10+ to build the engine environment with (default: the one running this script)",
    )
    ap.add_argument(
        "--pip-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra argument for pip install (repeatable), e.g. --pip-arg=--index-url=URL",
    )
    ap.add_argument(
        "--force", action="store_true", help="replace a plug-in folder this installer did not create"
    )
    ap.add_argument("--source", metavar="DIR", help=argparse.SUPPRESS)  # tests: install from another tree
    return ap.parse_args(argv)


def main(argv: list[str] | None = None, s: System | None = None) -> int:
    args = parse_args(argv)
    s = s or System.current()
    try:
        if args.uninstall:
            return uninstall(s, args)
        return install(s, args)
    except InstallError as e:
        print(f"install.py: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            "install.py: interrupted; run the same command again to finish (it is safe to repeat)",
            file=sys.stderr,
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())
