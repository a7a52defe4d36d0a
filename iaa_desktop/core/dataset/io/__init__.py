"""Dataset loaders: the IMA++ release layout, the folder layout, the diagnosis datasets
(ISIC 2018 Task 3, ISIC 2019, derm7pt, PH2) as downloaded, and layout detection.

``load_dataset(path)`` is the entry point; loaders never write into the dataset.
"""

from iaa_desktop.core.dataset.io.detect import DIAGNOSIS_LAYOUTS, LAYOUTS, detect_layout, load_dataset

__all__ = ["DIAGNOSIS_LAYOUTS", "LAYOUTS", "detect_layout", "load_dataset"]
