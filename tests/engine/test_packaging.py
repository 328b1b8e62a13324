"""The wheel holds the runtime only: no synthetic pages, training, evaluation or other workshop modules."""

import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_wheel_holds_the_runtime_and_not_the_workshop(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("kesu-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert not [n for n in names if n.startswith("engine/workshop") or "/synth/" in n or "/train/" in n]
    for needed in ("engine/cli.py", "engine/server.py", "engine/bench.py", "engine/pipeline/__init__.py",
                   "engine/models/pconv.py", "engine/weights/manifest.json", "engine/samples/bench-page.png"):
        assert needed in names
    assert any(n.startswith("engine/weights/") and n.endswith(".safetensors") for n in names)
