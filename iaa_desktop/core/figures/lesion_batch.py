"""Journal-quality overlay figures of many lesions, one file per lesion, as a stoppable job.

Each lesion is decoded at display size (``lesion_display.iter_lesion_display``) and drawn
with ``lesion.lesion_overlay_figure`` (Okabe-Ito colours, line styles, legend), then saved
with ``export.export_figure``. A lesion that cannot be drawn (no image, an unreadable
mask, no mask) is skipped with the reason; it never stops the batch. Nothing is written
inside the dataset.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass
from pathlib import Path

from iaa_desktop.core.dataset.model import Dataset, Lesion
from iaa_desktop.core.display.lesion import LesionDisplay, iter_lesion_display
from iaa_desktop.core.errors import IAAError
from iaa_desktop.core.figures.export import EXPORT_FORMATS, export_figure
from iaa_desktop.core.figures.lesion import lesion_overlay_figure
from iaa_desktop.core.progress import Progress, run_to_end

__all__ = ["ExportLocationError", "LesionBatchResult", "iter_export_lesion_figures"]


class ExportLocationError(IAAError):
    """The export folder is not allowed (inside the dataset) or the format is unknown."""


@dataclass(frozen=True)
class LesionBatchResult:
    """What a batch wrote and what it skipped (``(image_id, reason)``), and whether it was stopped."""

    written: tuple[Path, ...]
    skipped: tuple[tuple[str, str], ...]
    out_dir: Path


def _check_out_dir(dataset: Dataset, out_dir: Path) -> Path:
    out = Path(out_dir).expanduser().resolve()
    root = Path(dataset.root).expanduser().resolve()
    if out == root or root in out.parents:
        raise ExportLocationError(
            f"{out}: is inside the dataset {root}; choose a folder outside it (datasets are never written)")
    return out


def _skip_reason(lesion: Lesion, display: LesionDisplay) -> str | None:
    if lesion.image_path is None:
        return "no image file"
    if display.image is None:
        return next((p.message for p in display.problems if "image" in p.kind), "image could not be read")
    bad = [p.message for p in display.problems if p.kind != "non_binary_mask"]
    if bad:
        return bad[0]
    if not display.layers:
        return "no human mask"
    return None


def _title(lesion: Lesion) -> str:
    return f"{lesion.image_id} · {lesion.diagnosis or 'diagnosis unknown'}"


def iter_export_lesion_figures(
    dataset: Dataset,
    image_ids: Sequence[str],
    out_dir: str | Path,
    fmt: str = "png",
    *,
    dpi: int = 300,
) -> Generator[Progress, None, LesionBatchResult]:
    """Write ``<out_dir>/<image_id>_overlay.<fmt>`` for each lesion; yields ``Progress`` per lesion.

    Parameters
    ----------
    dataset
        The loaded dataset (read only).
    image_ids
        Lesions to draw, in order; an unknown id is skipped with its reason.
    out_dir
        Folder for the figures (created); refused when inside the dataset.
    fmt
        ``"png"``, ``"svg"`` or ``"pdf"``.
    dpi
        PNG resolution.

    Returns
    -------
    LesionBatchResult
        Files written and lesions skipped. Closing the generator stops between lesions.

    Raises
    ------
    ExportLocationError
        For a folder inside the dataset or an unknown format (before anything is written).
    """
    fmt = fmt.lower()
    if fmt not in EXPORT_FORMATS:
        raise ExportLocationError(f"unknown figure format {fmt!r}; choose from {sorted(EXPORT_FORMATS)}")
    out = _check_out_dir(dataset, Path(out_dir))
    written: list[Path] = []
    skipped: list[tuple[str, str]] = []
    total = len(image_ids)
    for i, image_id in enumerate(image_ids):
        try:
            lesion = dataset.lesion(image_id)
        except KeyError as exc:
            skipped.append((image_id, str(exc.args[0])))
        else:
            reason = _write_one(lesion, out, fmt, dpi, written)
            if reason is not None:
                skipped.append((image_id, reason))
        yield Progress(i + 1, total, image_id)
    return LesionBatchResult(tuple(written), tuple(skipped), out)


def _write_one(lesion: Lesion, out: Path, fmt: str, dpi: int, written: list[Path]) -> str | None:
    display = run_to_end(iter_lesion_display(lesion))
    reason = _skip_reason(lesion, display)
    if reason is not None:
        return reason
    fig = lesion_overlay_figure(display.image, list(display.masks), [layer.label for layer in display.layers],
                                title=_title(lesion))
    try:
        written += export_figure(fig, out / f"{lesion.image_id}_overlay", formats=(fmt,), dpi=dpi)
    except OSError as exc:
        return f"could not write {out / lesion.image_id}_overlay.{fmt}: {exc.strerror or exc}"
    return None
