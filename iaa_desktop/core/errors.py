"""Exceptions raised by the core, with plain messages a GUI can show as they are."""


class IAAError(Exception):
    """Base class of every error the core raises on purpose."""


class DatasetFormatError(IAAError):
    """A directory does not hold a dataset layout we can read."""


class DatasetReadError(IAAError):
    """A dataset was recognised but could not be read at all."""


class MaskDecodeError(IAAError):
    """A mask or image file could not be decoded.

    ``reason`` says why, in a word the loaders map to a problem kind:
    ``missing``, ``empty``, ``truncated``, ``unreadable`` or ``too_large``.
    """

    def __init__(self, message: str, reason: str = "unreadable") -> None:
        super().__init__(message)
        self.reason = reason
