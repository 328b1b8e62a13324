"""Helpers for the real-Krita tests: install Kesu + the test driver into a fresh HOME, run Krita under Xvfb
with a JSON plan (see driver/kesu_testdriver), stop the engine server afterwards."""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tests.hosts import harness

DRIVER = Path(__file__).resolve().parent / "driver"
REPO = Path(__file__).resolve().parents[2]
SHIPPED_WEIGHTS = REPO / "engine" / "weights"
SCREENSHOTS = REPO / "out" / "krita"
ACTION_IDS = ["kesu_detect_text", "kesu_inpaint_selection", "kesu_clean_page", "kesu_settings"]


def shipped_weights_present() -> bool:
    return (SHIPPED_WEIGHTS / "manifest.json").is_file()


def write_page_png(path: Path, rgb: np.ndarray) -> None:
    h, w, _ = rgb.shape
    harness.write_png(path, harness.Image(w, h, "RGB", np.ascontiguousarray(rgb).tobytes()))


def install(host: harness.HostChroot, home: Path, config: dict[str, Any] | None = None) -> Path:
    """Install Kesu the user's way (install.py --skip-engine), add the test driver, patch plugin.json.

    Returns the Kesu config folder inside HOME.
    """
    host.install_plugins(home, "krita")
    pykrita = home / ".local/share/krita/pykrita"
    shutil.copy(DRIVER / "kesu_testdriver.desktop", pykrita)
    shutil.copytree(DRIVER / "kesu_testdriver", pykrita / "kesu_testdriver")
    kritarc = home / ".config/kritarc"
    text = kritarc.read_text(encoding="utf-8")
    assert "[python]" in text and "enable_kesu=true" in text, text
    kritarc.write_text(text.replace("[python]\n", "[python]\nenable_kesu_testdriver=true\n", 1), encoding="utf-8")
    cfg = home / ".config/kesu"
    if config:
        data = json.loads((cfg / "plugin.json").read_text(encoding="utf-8"))
        data.update(config)
        (cfg / "plugin.json").write_text(json.dumps(data, indent=2), encoding="utf-8")
    return cfg


@dataclass
class KritaRun:
    results: dict
    output: str
    seconds: float
    returncode: int

    def step(self, label: str) -> dict:
        for s in self.results["steps"]:
            if s["label"] == label:
                return s
        raise KeyError(f"no step {label!r}; steps: {[s['label'] for s in self.results['steps']]}")

    def messages_at(self, label: str) -> list[dict]:
        idx = [s["label"] for s in self.results["steps"]].index(label)
        return [m for m in self.results["messages"] if m["at_step"] == idx]


def run_krita(host: harness.HostChroot, home: Path, out: Path, steps: list[dict], timeout: float = 900) -> KritaRun:
    """Run real Krita under Xvfb with the driver executing ``steps``; the run's results."""
    out.mkdir(parents=True, exist_ok=True)
    plan = out / "plan.json"
    plan.write_text(json.dumps({"out": str(out), "steps": steps, "timeout": timeout - 60}), encoding="utf-8")
    for attempt in range(6):
        if attempt:
            time.sleep(2.0 * attempt)
        with host.xvfb("1600x1000x24") as display:
            r = host.run(["krita", "--nosplash"], home=home,
                         env={"DISPLAY": display, "KESU_TEST_PLAN": str(plan)}, timeout=timeout)
        # Another session's Xvfb (the GIMP tests share the chroot) can pick the same display number in a race
        # and take the socket away when it stops: Krita then dies at once, before any plug-in ran. Retry.
        if "could not connect to display" not in r.output:
            break
    (out / "krita.log").write_text(r.output, encoding="utf-8")
    rc_file = out / "rc"
    assert rc_file.is_file(), f"the driver never finished (krita exit {r.returncode}):\n{r.output[-5000:]}"
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert rc_file.read_text().strip() == "0", f"driver errors: {results['errors']}\n{r.output[-3000:]}"
    return KritaRun(results, r.output, r.seconds, r.returncode)


def stop_engine(cfg: Path) -> None:
    """Stop an engine server the plug-in started for this HOME (it would exit after its idle timeout)."""
    from engine.protocol import Client, ProtocolError

    try:
        Client.connect(cfg).stop()
    except ProtocolError:
        pass


def rgba(img: harness.Image) -> np.ndarray:
    img = img.to_rgba()
    return np.frombuffer(img.data, np.uint8).reshape(img.height, img.width, 4)
