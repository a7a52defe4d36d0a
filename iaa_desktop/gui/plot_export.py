"""Export any plot or widget to PNG, SVG or PDF, and tables to CSV.

pyqtgraph's own SVG exporter is broken with PySide6 >= 6.11 and it has no PDF
exporter, so SVG and PDF are drawn here: the graphics scene is rendered into
a ``QSvgGenerator`` or a ``QPdfWriter`` (both vector) with pyqtgraph's export
mode switched on, which is what keeps axis text in place. PNG goes through
pyqtgraph's ``ImageExporter`` at twice the on-screen size. A widget that is not
a pyqtgraph view (a table, a panel of several plots) is drawn with
``QWidget.render`` into the same devices.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyqtgraph as pg
from pyqtgraph.exporters import Exporter, ImageExporter
from PySide6.QtCore import QMarginsF, QPoint, QRect, QRectF, QSize, QSizeF, Qt
from PySide6.QtGui import QAction, QColor, QImage, QPageLayout, QPageSize, QPainter, QPdfWriter
from PySide6.QtSvg import QSvgGenerator
from PySide6.QtWidgets import QFileDialog, QMessageBox, QToolButton, QWidget

from iaa_desktop.core.agreement.table_io import write_table
from iaa_desktop.core.errors import IAAError

log = logging.getLogger(__name__)

#: Suffixes ``export_widget`` writes.
EXPORT_SUFFIXES = (".png", ".svg", ".pdf")
#: PNG pixels per on-screen pixel.
PNG_SCALE = 2
#: PDF resolution: the screen's, so that fonts (sized in points) are not scaled twice;
#: the output is vector anyway.
PDF_DPI = 96
#: Screen pixels per inch assumed for the physical size of SVG and PDF pages.
SCREEN_DPI = 96
FILE_FILTER = "PNG image (*.png);;SVG vector image (*.svg);;PDF document (*.pdf)"


class ExportError(IAAError):
    """A plot or table could not be written (unknown suffix, unwritable file)."""


class _SceneExporter(Exporter):
    """pyqtgraph's exporter machinery (export mode on every item) for any QPainter device."""

    def export(self, fileName=None, toBytes=False, copy=False):  # noqa: N803 (pyqtgraph's signature)
        raise NotImplementedError("use paint()")

    def paint(self, painter: QPainter, target: QRectF) -> None:
        source = QRectF(self.getSourceRect())
        scale = target.width() / max(source.width(), 1.0)
        self.setExportMode(True, {"antialias": True, "background": QColor("white"), "painter": painter,
                                  "resolutionScale": scale})
        try:
            painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
            painter.setRenderHint(QPainter.RenderHint.TextAntialiasing, True)
            self.getScene().render(painter, target, source)
        finally:
            self.setExportMode(False)


def _scene_item(widget: QWidget):
    """The item to export of a pyqtgraph view, or None for other widgets."""
    if isinstance(widget, pg.PlotWidget):
        return widget.getPlotItem()
    if isinstance(widget, pg.GraphicsLayoutWidget):
        return widget.ci
    if isinstance(widget, pg.GraphicsView):
        return widget.scene()
    return None


def _size(widget: QWidget) -> QSize:
    size = widget.size()
    return size if size.width() > 0 and size.height() > 0 else widget.sizeHint().expandedTo(QSize(100, 100))


def _paint(widget: QWidget, painter: QPainter, target: QRectF) -> None:
    item = _scene_item(widget)
    if item is not None:
        _SceneExporter(item).paint(painter, target)
        return
    size = _size(widget)
    painter.save()
    painter.translate(target.topLeft())
    painter.scale(target.width() / size.width(), target.height() / size.height())
    widget.render(painter, QPoint(0, 0), QRect(QPoint(0, 0), size))
    painter.restore()


def _export_png(widget: QWidget, path: Path) -> None:
    item = _scene_item(widget)
    size = _size(widget)
    if item is not None and not isinstance(item, pg.GraphicsScene):
        exporter = ImageExporter(item)
        exporter.parameters()["width"] = int(exporter.getTargetRect().width() * PNG_SCALE)
        exporter.parameters()["background"] = QColor("white")
        image = exporter.export(toBytes=True)
    else:
        image = QImage(size * PNG_SCALE, QImage.Format.Format_ARGB32)
        image.fill(QColor("white"))
        painter = QPainter(image)
        try:
            _paint(widget, painter, QRectF(0, 0, image.width(), image.height()))
        finally:
            painter.end()
    if not image.save(str(path), "PNG"):
        raise ExportError(f"{path}: cannot write the PNG file")


def _export_svg(widget: QWidget, path: Path, title: str) -> None:
    size = _size(widget)
    generator = QSvgGenerator()
    generator.setFileName(str(path))
    generator.setSize(size)
    generator.setViewBox(QRect(QPoint(0, 0), size))
    generator.setResolution(SCREEN_DPI)
    generator.setTitle(title)
    painter = QPainter()
    if not painter.begin(generator):
        raise ExportError(f"{path}: cannot write the SVG file")
    try:
        _paint(widget, painter, QRectF(0, 0, size.width(), size.height()))
    finally:
        painter.end()


def _export_pdf(widget: QWidget, path: Path, title: str) -> None:
    size = _size(widget)
    points = QSizeF(size.width() * 72.0 / SCREEN_DPI, size.height() * 72.0 / SCREEN_DPI)
    writer = QPdfWriter(str(path))
    writer.setResolution(PDF_DPI)
    writer.setTitle(title)
    writer.setCreator("IAA Desktop")
    page = QPageSize(points, QPageSize.Unit.Point, "", QPageSize.SizeMatchPolicy.ExactMatch)
    writer.setPageLayout(QPageLayout(page, QPageLayout.Orientation.Portrait, QMarginsF(0, 0, 0, 0)))
    painter = QPainter()
    if not painter.begin(writer):
        raise ExportError(f"{path}: cannot write the PDF file")
    try:
        scale = PDF_DPI / SCREEN_DPI
        _paint(widget, painter, QRectF(0, 0, size.width() * scale, size.height() * scale))
    finally:
        painter.end()


def export_widget(widget: QWidget, path: str | Path, title: str = "") -> Path:
    """Write ``widget`` (a pyqtgraph view or any widget) to ``path``; the format by its suffix.

    ``.png``: raster at twice the on-screen size; ``.svg`` and ``.pdf``: vector,
    text kept as text. ``title`` goes into the SVG/PDF metadata.

    Raises
    ------
    ExportError
        For another suffix, or when the file cannot be written.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in EXPORT_SUFFIXES:
        raise ExportError(f"{path}: cannot export a plot as {suffix or 'a file without suffix'}; "
                          f"use one of {', '.join(EXPORT_SUFFIXES)}")
    if not path.parent.is_dir():
        raise ExportError(f"{path}: the folder {path.parent} does not exist")
    title = title or path.stem
    if suffix == ".png":
        _export_png(widget, path)
    elif suffix == ".svg":
        _export_svg(widget, path, title)
    else:
        _export_pdf(widget, path, title)
    if not path.is_file() or path.stat().st_size == 0:
        raise ExportError(f"{path}: nothing was written")
    log.info("exported %s", path)
    return path


def export_table(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write a table as CSV (``core.agreement_tables.write_table``); ``ExportError`` if it fails."""
    try:
        return write_table(frame, path)
    except OSError as exc:
        raise ExportError(f"{path}: cannot write the CSV file ({exc})") from None


def _ask_and_run(parent: QWidget, caption: str, file_filter: str, default_name: str,
                 write: Callable[[Path], object]) -> None:
    path, chosen = QFileDialog.getSaveFileName(parent, caption, default_name, file_filter)
    if not path:
        return
    path = Path(path)
    if not path.suffix:  # no suffix typed: the one of the chosen filter, e.g. "(*.svg)"
        path = path.with_suffix(chosen[chosen.rfind("*.") + 1:].rstrip(")") if "*." in chosen else ".png")
    try:
        write(path)
    except IAAError as exc:
        QMessageBox.critical(parent, caption, str(exc))


def make_export_button(parent: QWidget, target: Callable[[], QWidget], default_name: Callable[[], str],
                       table: Callable[[], pd.DataFrame | None] | None = None) -> QToolButton:
    """An "Export…" tool button: the plot to PNG/SVG/PDF, and the table to CSV when ``table`` is given.

    ``target`` returns the widget to export at click time (e.g. the current
    tab's plot); ``default_name`` a file name without suffix.
    """
    button = QToolButton(parent)
    button.setText("Export…")
    button.setToolTip("Save the plot as PNG, SVG or PDF" + (", or its data as CSV" if table else ""))
    button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
    plot_action = QAction("Plot as PNG / SVG / PDF…", button)
    plot_action.triggered.connect(lambda: _ask_and_run(
        parent, "Export plot", FILE_FILTER, f"{default_name()}.png",
        lambda path: export_widget(target(), path)))
    button.addAction(plot_action)
    if table is not None:
        csv_action = QAction("Data as CSV…", button)
        csv_action.triggered.connect(lambda: _ask_and_run(
            parent, "Export CSV", "CSV table (*.csv)", f"{default_name()}.csv",
            lambda path: _write_optional_table(table(), path)))
        button.addAction(csv_action)
    button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
    return button


def _write_optional_table(frame: pd.DataFrame | None, path: Path) -> None:
    if frame is None:
        raise ExportError("there is no table to export yet")
    export_table(frame, path)
