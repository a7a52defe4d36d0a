"""Dataset loaders: the IMA++ release layout, the folder layout, and layout detection.

``load_dataset(path)`` is the entry point; loaders never write into the dataset.
"""

from iaa_desktop.core.io.detect import detect_layout, load_dataset

__all__ = ["detect_layout", "load_dataset"]
