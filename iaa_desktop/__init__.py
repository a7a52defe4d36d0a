"""IAA Desktop: inter-annotator agreement in medical image segmentation.

``import iaa_desktop as iaa`` gives the public Python API (:mod:`iaa_desktop.api`):
``load_dataset``, ``demo_dataset``, ``compute_agreement``, ``agreement_tables``, ``analyse``,
``write_report``, ``consensus``, ``export_training_set``. They are imported on first use, so
importing the package itself stays instant (the GUI and the CLI import it at start).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from iaa_desktop._version import __version__

_API = (
    "AnalysisResult", "Dataset", "DatasetAgreement", "Lesion", "Progress", "StapleResult",
    "agreement_tables", "analyse", "compute_agreement", "consensus", "demo_dataset",
    "export_training_set", "load_dataset", "write_report",
)

__all__ = ["__version__", *_API]

if TYPE_CHECKING:  # for type checkers and IDEs; at run time the names load lazily below
    from iaa_desktop.api import (  # noqa: F401
        AnalysisResult,
        Dataset,
        DatasetAgreement,
        Lesion,
        Progress,
        StapleResult,
        agreement_tables,
        analyse,
        compute_agreement,
        consensus,
        demo_dataset,
        export_training_set,
        load_dataset,
        write_report,
    )


def __getattr__(name: str):
    # PEP 562: the API module (numpy, pandas, the core) loads on first use of one of its names.
    if name in _API:
        from iaa_desktop import api

        return getattr(api, name)
    raise AttributeError(f"module 'iaa_desktop' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
