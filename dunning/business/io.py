"""Small file helpers of the business area: atomic writes (temp file, then rename)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def atomic_write_text(path: Path | str, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` via a temp file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text, encoding=encoding)
    tmp.replace(path)
    return path


def atomic_write_json(path: Path | str, data: Any) -> Path:
    """Write ``data`` as indented JSON (dates and paths as strings), atomically."""
    return atomic_write_text(path, json.dumps(data, indent=2, default=str) + "\n")
