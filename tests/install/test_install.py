"""Tests of install/install.py: folder logic for every OS (simulated), real installs into a temporary HOME,
exact uninstall, --dry-run, upgrades, conflicts and the engine steps (with a fake engine interpreter)."""

from __future__ import annotations

import ast
import importlib.util
import json
import shutil
import stat
import sys
from pathlib import Path

import pytest

INSTALL_PY = Path(__file__).resolve().parents[2] / "install" / "install.py"


def _load_installer():
    # install/ is a folder of scripts, not a package: load the script by its path.
    spec = importlib.util.spec_from_file_location("kesu_install_under_test", INSTALL_PY)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look the module up while the class body runs
    spec.loader.exec_module(mod)
    return mod


inst = _load_installer()


# ---------------------------------------------------------------------------------------------- helpers
def linux(home: Path, env: dict | None = None, apps: set | None = None):
    return inst.System("linux", env or {}, home, set() if apps is None else apps)


def windows(home: Path, apps: set | None = None):
    env = {"APPDATA": str(home / "AppData/Roaming"), "LOCALAPPDATA": str(home / "AppData/Local")}
    return inst.System("win32", env, home, set() if apps is None else apps)


def mac(home: Path, apps: set | None = None):
    return inst.System("darwin", {}, home, set() if apps is None else apps)


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A fake checkout with the plug-in layout of the brief (the real plug-ins are written elsewhere)."""
    src = tmp_path / "src"
    (src / "krita_plugin/kesu").mkdir(parents=True)
    (src / "gimp_plugin/kesu").mkdir(parents=True)
    (src / "krita_plugin/kesu.desktop").write_text("[Desktop Entry]\nX-KDE-Library=kesu\n")
    (src / "krita_plugin/kesu/__init__.py").write_text("# krita\n")
    (src / "krita_plugin/kesu/actions.py").write_text("# actions\n")
    (src / "krita_plugin/kesu/__pycache__").mkdir()
    (src / "krita_plugin/kesu/__pycache__/x.cpython-311.pyc").write_bytes(b"junk")
    (src / "gimp_plugin/kesu/kesu.py").write_text("#!/usr/bin/env python3\n")
    (src / "engine").mkdir()
    (src / "engine/protocol.py").write_text("# the plug-in client\n")
    (src / "pyproject.toml").write_text("[project]\nname = 'kesu'\n")
    return src


def snapshot(root: Path) -> dict[str, tuple]:
    """Every path under root with its type, mode and content: equal snapshots = identical trees."""
    out = {}
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        kind = "dir" if p.is_dir() else "file"
        out[str(p.relative_to(root))] = (
            kind,
            stat.S_IMODE(st.st_mode),
            p.read_bytes() if kind == "file" else b"",
        )
    return out


def run(s, *argv: str) -> tuple[int, str, str]:
    """main() with a simulated system; returns (exit code, stdout, stderr)."""
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = inst.main(list(argv), s)
    return rc, out.getvalue(), err.getvalue()


# ---------------------------------------------------------------------------------------------- folders
def test_the_installer_uses_the_one_plug_in_client() -> None:
    """The installer loads engine/protocol.py by its path (config paths and the server's files come from it)."""
    client = inst.client()
    assert Path(client.__file__) == INSTALL_PY.parents[1] / "engine" / "protocol.py"
    assert not hasattr(inst, "config_dir") and "server.json" in client.RUNTIME_FILES


def test_data_dir_and_venv_python(tmp_path: Path) -> None:
    h = tmp_path
    assert inst.data_dir(linux(h)) == h / ".local/share/kesu"
    assert inst.data_dir(linux(h, {"XDG_DATA_HOME": "/d"})) == Path("/d/kesu")
    assert inst.data_dir(windows(h)) == h / "AppData/Local/kesu"
    assert inst.data_dir(mac(h)) == h / "Library/Application Support/kesu"
    assert inst.venv_python(Path("/e"), windows(h)) == Path("/e/Scripts/python.exe")
    assert inst.venv_python(Path("/e"), linux(h)) == Path("/e/bin/python")


def _cands(s, host: str) -> list[tuple[str, str, str | None]]:
    h = str(s.home)
    return [
        (p.kind, str(p.root).replace(h, "~"), str(p.kritarc).replace(h, "~") if p.kritarc else None)
        for p, _ in inst.candidate_profiles(s, host)
    ]


def test_krita_locations_every_os(tmp_path: Path) -> None:
    assert _cands(linux(tmp_path), "krita") == [
        ("native", "~/.local/share/krita", "~/.config/kritarc"),
        ("flatpak", "~/.var/app/org.kde.krita/data/krita", "~/.var/app/org.kde.krita/config/kritarc"),
        ("snap", "~/snap/krita/current/.local/share/krita", "~/snap/krita/current/.config/kritarc"),
    ]
    assert _cands(windows(tmp_path), "krita") == [
        ("native", "~/AppData/Roaming/krita", "~/AppData/Local/kritarc")
    ]
    assert _cands(mac(tmp_path), "krita") == [
        ("native", "~/Library/Application Support/krita", "~/Library/Preferences/kritarc")
    ]
    xdg = linux(tmp_path, {"XDG_DATA_HOME": str(tmp_path / "d"), "XDG_CONFIG_HOME": str(tmp_path / "c")})
    assert _cands(xdg, "krita")[0] == ("native", "~/d/krita", "~/c/kritarc")


def test_gimp_locations_every_os_and_versions(tmp_path: Path) -> None:
    assert [c[:2] for c in _cands(linux(tmp_path), "gimp")] == [
        ("native", "~/.config/GIMP/3.0"),
        ("flatpak", "~/.var/app/org.gimp.GIMP/config/GIMP/3.0"),
        ("snap", "~/snap/gimp/current/.config/GIMP/3.0"),
    ]
    assert [c[:2] for c in _cands(windows(tmp_path), "gimp")] == [("native", "~/AppData/Roaming/GIMP/3.0")]
    assert [c[:2] for c in _cands(mac(tmp_path), "gimp")] == [
        ("native", "~/Library/Application Support/GIMP/3.0")
    ]
    # every existing 3.x profile, numerically ordered (3.10 after 3.2); 2.10 and junk are not GIMP 3 profiles
    for v in ("2.10", "3.0", "3.2", "3.10", "notes"):
        (tmp_path / ".config/GIMP" / v).mkdir(parents=True)
    assert [c[1] for c in _cands(linux(tmp_path), "gimp")][:3] == [
        "~/.config/GIMP/3.0",
        "~/.config/GIMP/3.2",
        "~/.config/GIMP/3.10",
    ]
    env = {"GIMP3_DIRECTORY": str(tmp_path / "portable")}
    assert _cands(linux(tmp_path, env), "gimp")[0][1] == "~/portable"


def test_gimp_never_started_gets_the_installed_versions_folder(tmp_path: Path) -> None:
    """GIMP 3.2 reads ~/.config/GIMP/3.2: with no profile yet, the installed version's folder is the default."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("gimp-3.0", "gimp-console-3.2", "gimp-3.10-notes.txt", "gimptool-2.0"):
        (bin_dir / name).write_text("")
    s = linux(tmp_path, {"PATH": f"{tmp_path / 'missing'}:{bin_dir}"}, apps={"gimp:native"})
    assert inst.native_gimp_version(s) == "3.2"
    found, _ = inst.find_profiles(s, "gimp", explicit=False)
    assert [p.root for p in found] == [tmp_path / ".config/GIMP/3.2"]
    # Flatpak's version is not known from outside: 3.0 (GIMP 3.x migrates an older 3.x profile)
    assert _cands(s, "gimp")[1][:2] == ("flatpak", "~/.var/app/org.gimp.GIMP/config/GIMP/3.0")
    # an existing profile wins: GIMP 3.2's first start migrates the 3.0 folder
    (tmp_path / ".config/GIMP/3.0").mkdir(parents=True)
    found, _ = inst.find_profiles(s, "gimp", explicit=False)
    assert [p.root for p in found] == [tmp_path / ".config/GIMP/3.0"]
    # Windows: the binaries in Program Files/GIMP 3/bin
    win = windows(tmp_path, apps={"gimp:native"})
    (tmp_path / "Programs/GIMP 3/bin").mkdir(parents=True)
    (tmp_path / "Programs/GIMP 3/bin/gimp-3.2.exe").write_text("")
    win.env["ProgramFiles"] = str(tmp_path / "Programs")
    assert inst.native_gimp_version(win) == "3.2"
    assert inst.native_gimp_version(linux(tmp_path)) is None


def test_sandboxed_profiles_get_their_own_config(tmp_path: Path) -> None:
    by_kind = {p.kind: p for p, _ in inst.candidate_profiles(linux(tmp_path), "krita")}
    assert by_kind["flatpak"].sandbox_config == tmp_path / ".var/app/org.kde.krita/config/kesu"
    assert by_kind["snap"].sandbox_config == tmp_path / "snap/krita/current/.config/kesu"
    assert by_kind["native"].sandbox_config is None


def test_find_profiles_existing_default_and_skip(tmp_path: Path) -> None:
    # nothing there, nothing installed: skipped unless asked for by name
    found, notes = inst.find_profiles(linux(tmp_path), "gimp", explicit=False)
    assert found == [] and "skipped" in notes[0]
    found, notes = inst.find_profiles(linux(tmp_path), "gimp", explicit=True)
    assert [p.root for p in found] == [tmp_path / ".config/GIMP/3.0"] and "default folder" in notes[0]
    # the Flatpak app is installed but never started: its default folder
    found, _ = inst.find_profiles(linux(tmp_path, apps={"gimp:flatpak"}), "gimp", explicit=False)
    assert [p.kind for p in found] == ["flatpak"]
    # existing profiles win over defaults
    (tmp_path / ".var/app/org.kde.krita/data/krita").mkdir(parents=True)
    found, _ = inst.find_profiles(linux(tmp_path, apps={"krita:native"}), "krita", explicit=False)
    assert [p.kind for p in found] == ["flatpak"]


def test_portable_profile_guess(tmp_path: Path) -> None:
    s = linux(tmp_path)
    (tmp_path / "pk/pykrita").mkdir(parents=True)
    assert inst.portable_profile(s, tmp_path / "pk", None).host == "krita"
    (tmp_path / "g/plug-ins").mkdir(parents=True)
    assert inst.portable_profile(s, tmp_path / "g", None).host == "gimp"
    with pytest.raises(inst.InstallError, match="--host"):
        inst.portable_profile(s, tmp_path / "empty", None)
    # portable Krita: kritarc beside the resources when present
    (tmp_path / "pk/kritarc").write_text("")
    assert inst.portable_profile(s, tmp_path / "pk", "krita").kritarc == tmp_path / "pk/kritarc"


# ---------------------------------------------------------------------------------------------- kritarc
KRITARCS = [
    "",
    "[General]\nfoo=1\n",
    "[General]\nfoo=1",  # no final newline
    "[python]\nenable_other=true\n\n[General]\nx=2\n",
    "[python]\nenable_kesu=false\nenable_other=true\n",
    "[General]\r\nfoo=1\r\n",
    "[General]\nfoo=1\n[python]",
    "[python]\n",
]


@pytest.mark.parametrize("text", KRITARCS)
def test_kritarc_flag_roundtrip(text: str) -> None:
    new, prev, edit = inst.set_kritarc_flag(text, "enable_kesu", "true")
    lines = new.splitlines()
    i = lines.index("[python]") if "[python]" in lines else -1
    assert i >= 0 and "enable_kesu=true" in lines[i + 1 :]
    # nothing else changed: the original lines (but the old flag) are all still there, in order
    kept = iter(lines)
    assert all(ln in kept for ln in text.splitlines() if not ln.startswith("enable_kesu="))
    assert inst.set_kritarc_flag(new, "enable_kesu", "true")[0] == new  # idempotent
    assert inst.unset_kritarc_flag(new, "enable_kesu", prev, edit) == text


def test_kritarc_previous_value_restored() -> None:
    text = "[python]\nenable_kesu=false\nenable_other=true\n"
    new, prev, edit = inst.set_kritarc_flag(text, "enable_kesu", "true")
    assert prev == "false" and new == "[python]\nenable_kesu=true\nenable_other=true\n"
    assert inst.unset_kritarc_flag(new, "enable_kesu", prev, edit) == text


def test_kritarc_other_group_key_untouched() -> None:
    text = "[other]\nenable_kesu=maybe\n"
    new, prev, _ = inst.set_kritarc_flag(text, "enable_kesu", "true")
    assert prev is None and new.startswith(text) and new.endswith("[python]\nenable_kesu=true\n")


# ---------------------------------------------------------------------------------------------- real installs
def _user_home(home: Path) -> None:
    """A HOME with the user's own things that must survive install + uninstall untouched."""
    (home / ".config/GIMP/3.0/plug-ins/their-plugin").mkdir(parents=True)
    (home / ".config/GIMP/3.0/plug-ins/their-plugin/their-plugin.py").write_text("mine")
    (home / ".config/GIMP/3.0/gimprc").write_text("(theme-path)")
    (home / ".local/share/krita/pykrita").mkdir(parents=True)
    (home / ".local/share/krita/pykrita/other.desktop").write_text("other")
    (home / ".config/kritarc").write_text("[General]\nShowSplash=false\n\n[python]\nenable_other=true\n")


def test_install_files_modes_flag_config(tmp_path: Path, source: Path) -> None:
    home = tmp_path / "home"
    _user_home(home)
    s = linux(home)
    rc, out, err = run(s, "--source", str(source), "--skip-engine")
    assert rc == 0, err
    pk = home / ".local/share/krita/pykrita"
    assert (pk / "kesu.desktop").read_text() == (source / "krita_plugin/kesu.desktop").read_text()
    assert (pk / "kesu/__init__.py").is_file()
    # the one plug-in client, copied into each plug-in under the name it imports
    assert (pk / "kesu/kesu_protocol.py").read_text() == "# the plug-in client\n"
    assert not (pk / "kesu/__pycache__").exists()  # build junk is not copied
    gp = home / ".config/GIMP/3.0/plug-ins/kesu/kesu.py"
    assert stat.S_IMODE(gp.stat().st_mode) == 0o755
    assert stat.S_IMODE((gp.parent / "kesu_protocol.py").stat().st_mode) == 0o644
    assert (gp.parent / "kesu_protocol.py").read_text() == "# the plug-in client\n"
    rc_text = (home / ".config/kritarc").read_text()
    assert rc_text == "[General]\nShowSplash=false\n\n[python]\nenable_kesu=true\nenable_other=true\n"
    cfg = json.loads((home / ".config/kesu/plugin.json").read_text())
    assert cfg == {
        "python": str(home / ".local/share/kesu/engine-env/bin/python"),
        "weights_dir": None,
        "log_dir": str(home / ".local/share/kesu/logs"),
    }
    assert (home / ".local/share/kesu/logs").is_dir()
    # idempotent: a second run leaves exactly the same tree
    before = snapshot(home)
    assert run(s, "--source", str(source), "--skip-engine")[0] == 0
    assert snapshot(home) == before


def test_gimp_profile_migration_copy_is_updated_and_uninstalled(tmp_path: Path, source: Path) -> None:
    """GIMP 3.2's first start copies the 3.0 profile, our plug-in folder included (checked in the real GIMP 3.2:
    tests/gimp_plugin/kesu/test_gimp_host.py): re-installing updates that copy, uninstalling removes it."""
    home = tmp_path / "home"
    _user_home(home)
    before = snapshot(home)
    s = linux(home)
    assert run(s, "--source", str(source), "--skip-engine", "--host", "gimp")[0] == 0
    gimp = home / ".config/GIMP"
    shutil.copytree(gimp / "3.0", gimp / "3.2")  # what GIMP 3.2 does when it first starts
    (gimp / "3.2/plug-ins/kesu/kesu.py").write_text("#!/usr/bin/env python3\n# the old version\n")
    rc, out, err = run(s, "--source", str(source), "--skip-engine", "--host", "gimp")
    assert rc == 0, err
    assert "GIMP's copy of" in out
    assert (gimp / "3.2/plug-ins/kesu/kesu.py").read_text() == (source / "gimp_plugin/kesu/kesu.py").read_text()
    # a plug-in folder of another origin is still refused
    other = home / "portable"
    (other / "plug-ins/kesu").mkdir(parents=True)
    rc, _, err = run(s, "--source", str(source), "--skip-engine", "--profile", str(other))
    assert rc != 0 and "was not installed by this installer" in err
    # uninstall removes both copies, and leaves the user's own things
    assert run(s, "--uninstall")[0] == 0
    assert not (gimp / "3.0/plug-ins/kesu").exists() and not (gimp / "3.2/plug-ins/kesu").exists()
    assert (gimp / "3.2/plug-ins/their-plugin/their-plugin.py").read_text() == "mine"
    for path, entry in before.items():
        assert snapshot(home)[path] == entry


def test_uninstall_removes_a_migrated_copy_it_never_saw(tmp_path: Path, source: Path) -> None:
    home = tmp_path / "home"
    _user_home(home)
    s = linux(home)
    assert run(s, "--source", str(source), "--skip-engine", "--host", "gimp")[0] == 0
    gimp = home / ".config/GIMP"
    shutil.copytree(gimp / "3.0", gimp / "3.2")
    rc, out, _ = run(s, "--uninstall")
    assert rc == 0 and "GIMP's copy of" in out
    assert not (gimp / "3.2/plug-ins/kesu").exists() and (gimp / "3.2/plug-ins/their-plugin").is_dir()


def test_uninstall_restores_home_exactly(tmp_path: Path, source: Path) -> None:
    home = tmp_path / "home"
    _user_home(home)
    before = snapshot(home)
    s = linux(home, apps={"krita:native", "gimp:native"})
    assert run(s, "--source", str(source), "--skip-engine")[0] == 0
    assert snapshot(home) != before
    # the user adds files next to ours after the install: they must survive
    (home / ".local/share/krita/pykrita/later.desktop").write_text("later")
    rc, out, err = run(s, "--uninstall")
    assert rc == 0, err
    after = snapshot(home)
    assert after.pop(".local/share/krita/pykrita/later.desktop")[2] == b"later"
    assert after == before


def test_uninstall_fresh_home_leaves_nothing(tmp_path: Path, source: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    s = linux(home, apps={"krita:native", "gimp:native"})
    assert run(s, "--source", str(source), "--skip-engine", "--config-dir", str(tmp_path / "cfg"))[0] == 0
    assert (tmp_path / "cfg/plugin.json").is_file() and (home / ".config/kritarc").is_file()
    # the engine server ran in between and left its files in the config folder
    (tmp_path / "cfg/server.log").write_text("log")
    (tmp_path / "cfg/server.token").write_text("secret")
    assert run(s, "--uninstall")[0] == 0
    assert snapshot(home) == {} and not (tmp_path / "cfg").exists()
    rc, out, _ = run(s, "--uninstall")
    assert rc == 0 and "nothing to uninstall" in out


def test_dry_run_changes_nothing(tmp_path: Path, source: Path) -> None:
    home = tmp_path / "home"
    _user_home(home)
    s = linux(home)
    before = snapshot(home)
    rc, out, _ = run(s, "--source", str(source), "--dry-run")  # engine step included: planned, not run
    assert rc == 0
    assert "would install" in out and "would run" in out and "pip install" in out
    assert snapshot(home) == before
    assert run(s, "--source", str(source), "--skip-engine")[0] == 0
    installed = snapshot(home)
    rc, out, _ = run(s, "--uninstall", "--dry-run")
    assert rc == 0 and "would remove" in out
    assert snapshot(home) == installed


def test_upgrade_in_place_and_first_state_kept(tmp_path: Path, source: Path) -> None:
    home = tmp_path / "home"
    (home / ".config").mkdir(parents=True)
    (home / ".config/kritarc").write_text("[python]\nenable_kesu=false\n")
    s = linux(home, apps={"krita:native"})
    assert run(s, "--source", str(source), "--skip-engine", "--host", "krita")[0] == 0
    # a new version drops a file and changes another
    (source / "krita_plugin/kesu/actions.py").unlink()
    (source / "krita_plugin/kesu/__init__.py").write_text("# v2\n")
    (source / "engine/protocol.py").write_text("# client v2\n")
    assert run(s, "--source", str(source), "--skip-engine", "--host", "krita")[0] == 0
    pk = home / ".local/share/krita/pykrita/kesu"
    assert sorted(p.name for p in pk.iterdir()) == ["__init__.py", "kesu_protocol.py"]
    assert (pk / "kesu_protocol.py").read_text() == "# client v2\n"
    assert (pk / "__init__.py").read_text() == "# v2\n"
    assert not list(pk.parent.glob(".*kesu-new*"))  # no leftovers of the swap
    assert run(s, "--uninstall")[0] == 0
    assert (home / ".config/kritarc").read_text() == "[python]\nenable_kesu=false\n"


def test_refuses_to_overwrite_users_folder(tmp_path: Path, source: Path) -> None:
    home = tmp_path / "home"
    mine = home / ".config/GIMP/3.0/plug-ins/kesu"
    mine.mkdir(parents=True)
    (mine / "kesu.py").write_text("the user's own kesu")
    s = linux(home)
    rc, _, err = run(s, "--source", str(source), "--skip-engine", "--host", "gimp")
    assert rc == 1 and "was not installed by this installer" in err and "--force" in err
    assert (mine / "kesu.py").read_text() == "the user's own kesu"
    assert run(s, "--source", str(source), "--skip-engine", "--host", "gimp", "--force")[0] == 0
    assert (mine / "kesu.py").read_text() == "#!/usr/bin/env python3\n"


def test_partial_uninstall_keeps_other_host(tmp_path: Path, source: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    s = linux(home, apps={"krita:native", "gimp:native"})
    assert run(s, "--source", str(source), "--skip-engine")[0] == 0
    assert run(s, "--uninstall", "--host", "krita")[0] == 0
    assert not (home / ".local/share/krita").exists() and not (home / ".config/kritarc").exists()
    assert (home / ".config/GIMP/3.0/plug-ins/kesu/kesu.py").is_file()
    assert run(s, "--uninstall")[0] == 0
    assert snapshot(home) == {}


def test_windows_and_mac_layouts(tmp_path: Path, source: Path) -> None:
    for name, s, paths in [
        (
            "win",
            windows(tmp_path / "win", apps={"krita:native", "gimp:native"}),
            ["AppData/Roaming/krita/pykrita/kesu/__init__.py", "AppData/Local/kritarc",
             "AppData/Roaming/GIMP/3.0/plug-ins/kesu/kesu.py", "AppData/Roaming/kesu/plugin.json",
             "AppData/Local/kesu/install-manifest.json"],
        ),
        (
            "mac",
            mac(tmp_path / "mac", apps={"krita:native", "gimp:native"}),
            ["Library/Application Support/krita/pykrita/kesu.desktop", "Library/Preferences/kritarc",
             "Library/Application Support/GIMP/3.0/plug-ins/kesu/kesu.py",
             "Library/Application Support/kesu/plugin.json"],
        ),
    ]:  # fmt: skip
        s.home.mkdir()
        assert run(s, "--source", str(source), "--skip-engine")[0] == 0, name
        for p in paths:
            assert (s.home / p).is_file(), (name, p)
        if name == "win":
            cfg = json.loads((s.home / "AppData/Roaming/kesu/plugin.json").read_text())
            assert cfg["python"] == str(s.home / "AppData/Local/kesu/engine-env/Scripts/python.exe")
        assert run(s, "--uninstall")[0] == 0
        assert snapshot(s.home) == {}, name


def test_flatpak_profile_gets_sandbox_config(tmp_path: Path, source: Path) -> None:
    home = tmp_path / "home"
    (home / ".var/app/org.gimp.GIMP/config/GIMP/3.0").mkdir(parents=True)
    s = linux(home)
    rc, out, _ = run(s, "--source", str(source), "--skip-engine", "--host", "gimp")
    assert rc == 0 and "flatpak" in out
    assert (home / ".var/app/org.gimp.GIMP/config/GIMP/3.0/plug-ins/kesu/kesu.py").is_file()
    sandbox = json.loads((home / ".var/app/org.gimp.GIMP/config/kesu/plugin.json").read_text())
    assert sandbox == json.loads((home / ".config/kesu/plugin.json").read_text())
    assert run(s, "--uninstall")[0] == 0
    assert sorted(snapshot(home)) == [
        ".var",
        ".var/app",
        ".var/app/org.gimp.GIMP",
        ".var/app/org.gimp.GIMP/config",
        ".var/app/org.gimp.GIMP/config/GIMP",
        ".var/app/org.gimp.GIMP/config/GIMP/3.0",
    ]


def test_profile_option_only_that_folder(tmp_path: Path, source: Path) -> None:
    home = tmp_path / "home"
    (home / ".config/GIMP/3.0").mkdir(parents=True)  # must NOT be touched
    port = tmp_path / "portable-gimp"
    s = linux(home, apps={"gimp:native"})
    assert run(s, "--source", str(source), "--skip-engine", "--host", "gimp", "--profile", str(port))[0] == 0
    assert (port / "plug-ins/kesu/kesu.py").is_file()
    assert not (home / ".config/GIMP/3.0/plug-ins").exists()


def test_missing_plugin_source_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    rc, _, err = run(linux(tmp_path), "--source", str(tmp_path / "empty"), "--skip-engine", "--host", "krita")
    assert rc == 1 and "kesu.desktop is missing" in err and "complete Kesu checkout" in err


def test_a_checkout_without_the_plug_in_client_is_a_clear_error(tmp_path: Path, source: Path) -> None:
    (source / "engine/protocol.py").unlink()
    rc, _, err = run(linux(tmp_path / "home"), "--source", str(source), "--skip-engine", "--host", "gimp")
    assert rc == 1 and "protocol.py is missing" in err and "complete Kesu checkout" in err


# ---------------------------------------------------------------------------------------------- engine step
def _fake_env(root: Path, detect_rc: int, pip_rc: int = 0) -> Path:
    """A venv-shaped folder whose bin/python is a script logging its arguments."""
    py = root / "bin/python"
    py.parent.mkdir(parents=True)
    log = root / "calls.log"
    py.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> "{log}"\n'
        'case "$1 $2" in\n'
        f'  "-m pip") exit {pip_rc} ;;\n'
        '  "-m engine") echo "kesu 0.1.0"; exit 0 ;;\n'
        f'  "-c "*) echo "NO_WEIGHTS: no weights are installed"; exit {detect_rc} ;;\n'
        "esac\n"
    )
    py.chmod(0o755)
    return log


@pytest.mark.skipif(sys.platform.startswith("win"), reason="the fake interpreter is a shell script")
def test_engine_reused_installed_and_verified(tmp_path: Path, source: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = tmp_path / "env"
    log = _fake_env(env, detect_rc=3)
    s = linux(home, apps={"krita:native"})
    rc, out, err = run(
        s, "--source", str(source), "--host", "krita", "--engine-env", str(env), "--pip-arg=-q"
    )
    assert rc == 0, err
    calls = log.read_text().splitlines()
    assert calls[0] == f"-m pip install --upgrade -q {source}"
    assert calls[1] == "-m engine --version"
    assert calls[2].startswith("-c ")
    assert "no trained weights are shipped" in out and "kesu 0.1.0" in out
    assert json.loads((home / ".config/kesu/plugin.json").read_text())["python"] == str(env / "bin/python")
    # an environment the installer did not create is never removed
    assert run(s, "--uninstall")[0] == 0
    assert (env / "bin/python").is_file()


@pytest.mark.skipif(sys.platform.startswith("win"), reason="the fake interpreter is a shell script")
def test_engine_pip_failure_says_how_to_retry(tmp_path: Path, source: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = tmp_path / "env"
    _fake_env(env, detect_rc=0, pip_rc=1)
    rc, _, err = run(linux(home, apps={"krita:native"}), "--source", str(source), "--engine-env", str(env))
    assert rc == 1 and "pip failed" in err and "run the same command again" in err
    assert snapshot(home) == {}  # nothing of the plug-ins was installed half-way


@pytest.mark.skipif(sys.platform.startswith("win"), reason="the fake interpreter is a shell script")
def test_engine_detection_failure_is_an_error(tmp_path: Path, source: Path) -> None:
    env = tmp_path / "env"
    _fake_env(env, detect_rc=1)
    (tmp_path / "home").mkdir()
    rc, _, err = run(linux(tmp_path / "home", apps={"krita:native"}), "--source", str(source), "--engine-env",
                     str(env))  # fmt: skip
    assert rc == 1 and "test detection failed" in err


def test_old_python_is_refused_clearly(tmp_path: Path, source: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inst, "python_version", lambda _py: (3, 9))
    (tmp_path / "home").mkdir()
    rc, _, err = run(linux(tmp_path / "home", apps={"krita:native"}), "--source", str(source))
    assert rc == 1 and "Python 3.10 or newer" in err and "--python" in err


def test_script_is_python39_stdlib_only() -> None:
    """install.py must run on any Python 3.9+ with nothing installed."""
    tree = ast.parse(INSTALL_PY.read_text(), feature_version=(3, 9))
    mods = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    mods |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert mods <= set(sys.stdlib_module_names) | {"__future__"}, mods - set(sys.stdlib_module_names)


def test_engine_needs_a_checkout_with_pyproject(tmp_path: Path, source: Path) -> None:
    (source / "pyproject.toml").unlink()
    (tmp_path / "home").mkdir()
    rc, _, err = run(linux(tmp_path / "home", apps={"krita:native"}), "--source", str(source))
    assert rc == 1 and "no pyproject.toml" in err and "--skip-engine" in err
    assert snapshot(tmp_path / "home") == {}
