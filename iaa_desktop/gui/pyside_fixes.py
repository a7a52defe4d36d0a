"""Workarounds for bugs of the installed PySide6, applied once at start-up.

PySide6 6.12.0 on Python 3.11 drops a reference to ``None``, ``True`` or
``False`` on every binding call that returns one of them: every void method
(``item.setPos(...)``, ``widget.resize(...)``) and every ``signal.emit(...)``
lowers their reference counts by one (the wheels treat them as immortal, which
they are only from Python 3.12 on). After enough calls the count reaches zero
and the interpreter aborts (``Fatal Python error: bool_dealloc`` /
``none_dealloc``): the soak test (2,000 lesion switches) hit both. PySide6
6.11.3 does not have the bug; on Python 3.12+ it is harmless.

:func:`apply_pyside_workarounds` detects the bug with a harmless probe and, if
present, makes ``None``, ``True`` and ``False`` effectively immortal (as Python
3.12 does) by raising their reference counts far out of reach. They are static
objects that are never freed, so this changes nothing else.
"""

from __future__ import annotations

import ctypes
import logging
import sys

from PySide6.QtCore import QObject, Signal

log = logging.getLogger(__name__)

_applied: list[str] = []
_PROBE_CALLS = 8


class _Probe(QObject):
    ping = Signal()


_SINGLETONS = (None, True, False)


def _total_refcount() -> int:
    return sum(sys.getrefcount(value) for value in _SINGLETONS)


def calls_drop_singleton_references() -> bool:
    """Whether binding calls lower the reference counts of None/True/False (PySide6 6.12.0, Python 3.11)."""
    if sys.version_info >= (3, 12):
        return False  # immortal there: the bug is harmless
    probe = _Probe()
    before = _total_refcount()
    for _ in range(_PROBE_CALLS):
        probe.ping.emit()
        probe.setObjectName("probe")
    return _total_refcount() < before


def _make_singletons_immortal() -> None:
    # ob_refcnt is the first field of every object in CPython's release builds.
    for value in _SINGLETONS:
        ctypes.c_ssize_t.from_address(id(value)).value += 1 << 40


def apply_pyside_workarounds() -> tuple[str, ...]:
    """Apply the workarounds the installed PySide6 needs (once); returns their names."""
    if not _applied:
        _applied.append("checked")
        if calls_drop_singleton_references():
            _make_singletons_immortal()
            _applied.append("singleton-refcount")
            log.info("PySide6 %s drops references to None/True/False: made them immortal",
                     __import__("PySide6").__version__)
    return tuple(name for name in _applied if name != "checked")
