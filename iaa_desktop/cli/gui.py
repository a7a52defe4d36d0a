"""``iaa-desktop [PATH]``: open the desktop app, or say how to install it."""

from __future__ import annotations

import sys

#: Top-level packages of the ``[gui]`` extra; an ImportError naming one means it is missing.
GUI_PACKAGES = ("PySide6", "shiboken6", "pyqtgraph", "superqt", "qtpy")
INSTALL_HINT = 'pip install "iaa-desktop[gui]"'


def launch_gui(path: str | None, screenshot: str | None = None) -> int:
    """Open the desktop app on ``path`` (the demo dataset when ``None``); the exit code.

    Returns 2, with a message on stderr, when the GUI packages are not installed.
    """
    try:
        from iaa_desktop.gui.app import main
    except ImportError as exc:
        missing = (exc.name or "").split(".")[0]
        if missing not in GUI_PACKAGES:
            raise  # our own bug, not a missing install
        print(
            f"iaa-desktop: the desktop app needs PySide6, pyqtgraph and superqt, "
            f"and {missing} is not installed ({exc}).\n"
            f"Install them with:  {INSTALL_HINT}\n"
            "The headless commands work without them: iaa-desktop --help",
            file=sys.stderr,
        )
        return 2
    return main(path, screenshot=screenshot)
