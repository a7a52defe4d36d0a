"""The desktop application (PySide6 + pyqtgraph); needs the ``[gui]`` extra.

Nothing is imported here, so ``iaa_desktop.cli.gui`` can tell a missing Qt
installation apart from other import errors. Start with
``iaa_desktop.gui.app.main``.
"""
