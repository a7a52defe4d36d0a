"""Where a dataset's workspace lives: reviews, runs and exported training sets.

The workspace sits beside, never inside, the dataset: by default in the user
data directory (``platformdirs.user_data_dir("iaa-desktop")/workspaces``), one
folder per dataset root, named after the folder and a hash of its resolved
path so that two datasets called ``data`` do not share one. The environment
variable ``IAA_DESKTOP_WORKSPACES_DIR`` moves the parent folder (tests, shared
lab drives).
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import platformdirs

WORKSPACES_ENV = "IAA_DESKTOP_WORKSPACES_DIR"
#: File names inside a workspace folder.
DATABASE_NAME = "workspace.sqlite"
RUNS_DIR_NAME = "runs"
TRAINING_SETS_DIR_NAME = "training-sets"


def workspaces_root() -> Path:
    """The folder that holds every dataset's workspace."""
    override = os.environ.get(WORKSPACES_ENV)
    if override:
        return Path(override)
    return Path(platformdirs.user_data_dir("iaa-desktop")) / "workspaces"


def workspace_dir_for(dataset_root: str | Path) -> Path:
    """The default workspace folder of the dataset at ``dataset_root`` (not created)."""
    resolved = Path(dataset_root).expanduser().resolve()
    digest = hashlib.sha1(str(resolved).encode("utf-8")).hexdigest()[:10]
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", resolved.name or "dataset").strip("._") or "dataset"
    return workspaces_root() / f"{name[:40]}-{digest}"


def runs_dir(workspace: str | Path) -> Path:
    """Where training runs of a workspace are kept (one folder per run)."""
    return Path(workspace) / RUNS_DIR_NAME


def training_sets_dir(workspace: str | Path) -> Path:
    """Where training sets exported from the workspace's dataset are kept."""
    return Path(workspace) / TRAINING_SETS_DIR_NAME
