"""Qt-free, torch-free core: loaders, masks, QA, metrics, statistics, exports.

Nothing in this package may import PySide6, pyqtgraph, superqt, torch, timm,
``iaa_desktop.gui`` or ``trainer`` (checked by import-linter, see pyproject.toml).
"""
