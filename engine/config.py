"""Configuration defaults shared by every layer: where the data of a run lives."""

from __future__ import annotations

from pathlib import Path

DEFAULT_DATA_DIR = Path("dunning-data")
"""Folder of the embedded store, models, policies and reports (relative to the working dir)."""

DEFAULT_DB = DEFAULT_DATA_DIR / "dunning.duckdb"
"""The embedded DuckDB store file."""
