"""``kesu eval inpaint``'s options reach the evaluation and the recorded command."""

import json

from engine.cli import main
from engine.workshop.eval import inpaint as evaluation
from tests.conftest import make_tiny_weights


def test_best_per_hole_reaches_the_evaluation_and_the_recorded_command(monkeypatch, tmp_path, capsys):
    weights = make_tiny_weights(tmp_path / "weights")
    seen = {}

    def fake_run(engine, root, overlays, limit, log=print, options=None, **kwargs):
        seen.update(kwargs)
        return [{"method": "m", "kind": "all", "holes": 1, "psnr": 30.0, "mae": 1.0, "ssim": 0.9}]

    monkeypatch.setattr(evaluation, "run", fake_run)
    args = ["eval", "inpaint", "--realpages", str(tmp_path), "--weights-dir", str(weights), "--record"]
    assert main(args + ["--best-per-hole"]) == 0
    assert seen == {"add_best_per_hole": True}
    manifest = json.loads((weights / "manifest.json").read_text())
    assert "--best-per-hole" in json.dumps(manifest)
    seen.clear()
    assert main(args) == 0
    assert seen == {}
    capsys.readouterr()
