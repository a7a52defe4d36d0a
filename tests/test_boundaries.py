"""The architecture's boundaries, machine-checked.

core imports no Qt and no torch; the trainer imports no Qt; the GUI imports no
torch. import-linter checks the static imports (contracts in pyproject.toml);
the second test imports every core module in a fresh interpreter where Qt and
torch cannot be imported at all, which also catches imports made at run time.
"""

import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import iaa_desktop.core
from tests.shared_data import REPO_ROOT

_BLOCKED = ("PySide6", "pyqtgraph", "superqt", "torch", "timm", "torchvision")


def test_import_contracts_hold():
    # Beside the running interpreter first (a venv that is not the checkout's own, e.g. a worktree's).
    lint = (shutil.which("lint-imports", path=str(Path(sys.executable).parent))
            or shutil.which("lint-imports", path=str(REPO_ROOT / ".venv" / "bin"))
            or shutil.which("lint-imports"))
    if lint is None:
        pytest.skip("import-linter is not installed (pip install -e '.[dev]')")
    result = subprocess.run([lint, "--no-cache"], cwd=REPO_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 6 kept, 0 broken" in result.stdout


def test_every_core_module_imports_without_qt_or_torch():
    modules = sorted(
        m.name for m in pkgutil.walk_packages(iaa_desktop.core.__path__, "iaa_desktop.core.")
    )
    assert "iaa_desktop.core.dataset.model" in modules
    code = (
        "import sys\n"
        f"for name in {_BLOCKED!r}:\n"
        "    sys.modules[name] = None  # makes 'import name' raise ImportError\n"
        f"for module in {modules!r}:\n"
        "    __import__(module)\n"
        f"leaked = [m for m in sys.modules if m.split('.')[0] in {_BLOCKED!r} and sys.modules[m]]\n"
        "assert not leaked, leaked\n"
        "print('ok', len(" + repr(modules) + "))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok")
