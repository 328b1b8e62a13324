"""A stand-in Kesu engine for the real-host tests of the kinds of text (issue 31).

Run as ``python -m tests.hosts.kinds_engine`` with the arguments of ``python -m engine.server``.

The shipped detector has one output channel and calls all text dialogue, so no page makes it find a sound
effect. This is the real engine server and pipeline (thresholding, snapping to the ink, growing, inpainting with
the weights of ``--weights-dir``) with one change: the detector reads each pixel's kind from its colour.
Colourless dark ink is lettering; strongly coloured ink is a sound effect. On a test page drawn that way the
kinds are known exactly, so a plug-in that mixes up the "Text Mask" and "SFX Mask" layers, shows the wrong one
or erases what it should leave fails its test.

The plug-ins start the engine as ``<python> -m engine.server ARGS`` with ``python`` from plugin.json:
:func:`write_launcher` writes an executable to name there, which runs this module with the same ARGS.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
INK_MAX = 110    # a pixel whose brightest channel is at most this is ink
COLOURED = 100   # ...and one whose channels spread at least this much is coloured: a sound effect


def kinds_by_colour(rgb: np.ndarray) -> dict[str, np.ndarray]:
    """The stand-in detector: float32 (H, W) probabilities (0 or 1) of each kind of uint8 (H, W, 3) ``rgb``."""
    c = rgb.astype(np.int16)
    hi, lo = c.max(axis=2), c.min(axis=2)
    coloured = hi - lo >= COLOURED
    lettering = (hi <= INK_MAX) & ~coloured
    return {"lettering": lettering.astype(np.float32), "sfx": coloured.astype(np.float32)}


def kinds_page(height: int = 180, width: int = 240) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A white test page with black "lettering" (rows of strokes, top left) and a red "sound effect" (thick
    strokes, bottom right): uint8 (H, W, 3) RGB and the bool (H, W) pixels of each kind."""
    rgb = np.full((height, width, 3), 255, np.uint8)
    lettering = np.zeros((height, width), bool)
    for row in range(3):
        for col in range(8):
            y, x = 16 + row * 18, 14 + col * 10
            lettering[y : y + 11, x : x + 3] = True
            lettering[y + 4 : y + 7, x : x + 7] = True
    sfx = np.zeros((height, width), bool)
    sfx[height - 70 : height - 20, width - 90 : width - 80] = True
    sfx[height - 70 : height - 60, width - 90 : width - 50] = True
    sfx[height - 70 : height - 20, width - 40 : width - 28] = True
    rgb[lettering] = (20, 20, 20)
    rgb[sfx] = (210, 30, 40)
    return rgb, lettering, sfx


def write_launcher(path: Path, python: Path) -> Path:
    """An executable standing for the engine interpreter ``python`` (whose environment has the engine) that
    runs this stand-in instead of ``engine.server``, with the server's own arguments."""
    path.write_text(
        "#!/bin/sh\n"
        "# stands for the engine interpreter: the plug-ins call it as '<this> -m engine.server ARGS'\n"
        '[ "$1" = "-m" ] && shift 2\n'
        f'PYTHONPATH={shlex.quote(str(REPO))} exec {shlex.quote(str(python))} -m tests.hosts.kinds_engine "$@"\n',
        encoding="utf-8")
    path.chmod(0o755)
    return path


def main(argv: list[str]) -> int:
    from engine.pipeline import Engine, check_rgb
    from engine.server import serve_main

    def detect_kinds(self, rgb, options=None, progress=None):
        check_rgb(rgb)
        if progress is not None:
            progress("detect", 1.0)
        return kinds_by_colour(rgb)

    Engine.detect_kinds = detect_kinds
    print("kesu stand-in engine: kinds of text by ink colour (tests/hosts/kinds_engine.py)", file=sys.stderr)
    return serve_main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
