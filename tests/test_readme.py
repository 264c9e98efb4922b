"""The README's Python API examples run exactly as written (each block as a script of its
own, in a fresh folder, as a reader would paste it)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _api_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Python API", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)


def test_the_readme_has_both_api_examples():
    blocks = _api_blocks()
    assert len(blocks) == 2
    # The pipeline spawns workers: a script without the guard would re-run on import.
    assert all('if __name__ == "__main__":' in b for b in blocks)


@pytest.mark.slow
@pytest.mark.parametrize("index, written", [(0, "runs/exp1/results.json"),
                                            (1, "runs/cmp/evaluation.json")])
def test_a_readme_api_example_runs_as_written(tmp_path, index, written):
    script = tmp_path / "example.py"
    script.write_text(_api_blocks()[index], encoding="utf-8")
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=900, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    out = tmp_path / written
    assert out.exists(), sorted(str(p) for p in tmp_path.rglob("*"))[:20]
    data = json.loads(out.read_text())
    if index == 0:  # the script printed the RL policy's NPV from the results it wrote
        assert float(proc.stdout.strip().splitlines()[-1]) == pytest.approx(
            data["policies"]["rl"]["npv"])
    else:
        assert data["policies"] == ["never", "fixed"]
        assert data["n_invoices"] == 2000 and len(data["seeds"]) == 5
