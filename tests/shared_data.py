"""Paths to the real third-party data in ``../shared`` (never copied into the repo)."""

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("IAA_SHARED_DIR", REPO_ROOT.parent / "shared"))
IMAPP_DIR = SHARED / "data" / "imapp"
ISIC256_DIR = SHARED / "data" / "isic2017_256"
TESTDATA_DIR = SHARED / "testdata"


def require_shared(path: Path) -> Path:
    """Skip the calling test, saying why, when a shared data path is absent."""
    if not path.exists():
        pytest.skip(f"shared data not available: {path} (set IAA_SHARED_DIR or see README)")
    return path
