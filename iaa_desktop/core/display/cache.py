"""A byte-bounded, thread-safe LRU cache of decoded lesions, so that revisits are instant.

A worker thread fills it, the GUI thread reads it; every operation holds one lock for a
few dictionary operations only. Values are immutable (``LesionDisplay`` is frozen), so
handing the same object to both threads is safe.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Hashable
from threading import Lock
from typing import Protocol

from iaa_desktop.core.dataset.model import Lesion

__all__ = ["DEFAULT_CACHE_BYTES", "DisplayCache", "lesion_cache_key"]

#: Default budget: about 30 lesions at IMA++'s largest display size (~25 MB each),
#: hundreds at the typical 1024 x 768.
DEFAULT_CACHE_BYTES = 768 * 1024**2


class _Sized(Protocol):
    @property
    def nbytes(self) -> int: ...


def _file_state(path) -> tuple:
    """A file's path, size and modification time: a file changed on disk gets a new key."""
    try:
        stat = os.stat(path)
    except (OSError, TypeError, ValueError):
        return (str(path), None, None)
    return (str(path), stat.st_size, stat.st_mtime_ns)


def lesion_cache_key(lesion: Lesion, max_side: int | None = None) -> tuple:
    """What identifies a lesion's decoded display: its files as they are now (and the display size).

    Sizes and modification times are part of the key, so a mask edited during a
    session is decoded again rather than served stale from memory.
    """
    return (lesion.image_id, _file_state(lesion.image_path),
            tuple(_file_state(s.mask_path) for s in lesion.human_segmentations), max_side)


class DisplayCache:
    """Least-recently-used cache bounded by the ``nbytes`` of its values.

    Parameters
    ----------
    max_bytes
        Budget; the least recently used entries are evicted beyond it. A single value
        larger than the budget is not kept.
    """

    def __init__(self, max_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
        self.max_bytes = int(max_bytes)
        self._items: OrderedDict[Hashable, tuple[_Sized, int]] = OrderedDict()
        self._bytes = 0
        self._lock = Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._items

    @property
    def nbytes(self) -> int:
        """Bytes held now."""
        with self._lock:
            return self._bytes

    def get(self, key: Hashable) -> _Sized | None:
        """The value for ``key`` (now the most recently used), or ``None``."""
        with self._lock:
            entry = self._items.get(key)
            if entry is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return entry[0]

    def put(self, key: Hashable, value: _Sized) -> None:
        """Store ``value`` (replacing any value of ``key``), evicting old entries to fit."""
        size = int(value.nbytes)
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            if size > self.max_bytes:
                return
            self._items[key] = (value, size)
            self._bytes += size
            while self._bytes > self.max_bytes:
                _key, (_value, evicted) = self._items.popitem(last=False)
                self._bytes -= evicted

    def clear(self) -> None:
        """Forget everything (e.g. when another dataset is opened)."""
        with self._lock:
            self._items.clear()
            self._bytes = 0
