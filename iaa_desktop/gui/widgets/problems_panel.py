"""The problems panel: loader problems and QA findings in one sortable, filterable table.

Rows come from ``core.model.Problem`` records (what loading found: missing,
unreadable, mismatched files...) and from a QA findings table
(``core.qa.iter_qa``, columns ``core.qa.QA_COLUMNS``, which already holds the
loader's problems: duplicates are shown once). The table is sorted by
severity, high first, until the user sorts by another column; double-clicking
a row with an image id emits ``lesion_activated``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd
from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QSortFilterProxyModel, Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from iaa_desktop.core.dataset.model import SEVERITIES, Problem
from iaa_desktop.gui.plot_export import ExportError, export_table
from iaa_desktop.gui.widgets.lesion_table import DataFrameModel

#: Columns of :func:`problems_frame`, with their headers.
PROBLEM_COLUMNS = {
    "severity": "Severity",
    "kind": "Kind",
    "image_id": "Image",
    "message": "Message",
    "mask": "Mask",
    "source": "Found by",
    "path": "Path",
}
#: Sort rank of each severity: high first when sorted descending.
SEVERITY_RANK = {severity: i for i, severity in enumerate(SEVERITIES)}

_Index = QModelIndex | QPersistentModelIndex


def problems_frame(problems: Iterable[Problem] = (), findings: pd.DataFrame | None = None) -> pd.DataFrame:
    """Loader problems and QA findings as one table (columns :data:`PROBLEM_COLUMNS`).

    A finding that repeats a loader problem (same kind, image, path and
    message) is kept once, as the loader's. Rows are sorted high severity
    first, then by image and kind.
    """
    rows = [{"severity": p.severity, "kind": p.kind, "image_id": p.image_id,
             "mask": Path(p.path).name if "mask" in p.kind and p.path else "", "message": p.message,
             "source": "loader", "path": p.path} for p in problems]
    if findings is not None and len(findings):
        for record in findings.to_dict(orient="records"):
            rows.append({"severity": record.get("severity", "low"), "kind": record.get("kind", ""),
                         "image_id": record.get("image_id", ""), "mask": record.get("mask", ""),
                         "message": record.get("message", ""), "source": "QA",
                         "path": record.get("path", "")})
    frame = pd.DataFrame(rows, columns=list(PROBLEM_COLUMNS)).fillna("")
    frame = frame.drop_duplicates(["kind", "image_id", "path", "message"], keep="first")
    rank = frame["severity"].map(SEVERITY_RANK).fillna(-1)
    frame = frame.assign(_rank=-rank).sort_values(["_rank", "image_id", "kind"], kind="stable")
    return frame.drop(columns="_rank").reset_index(drop=True)


class ProblemsModel(DataFrameModel):
    """The problems table; high-severity rows in bold."""

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if role == Qt.ItemDataRole.FontRole and index.isValid():
            column = self.column_names().index("severity") if "severity" in self.column_names() else -1
            if column >= 0 and self.index(index.row(), column).data() == "high":
                font = QFont()
                font.setBold(True)
                return font
            return None
        return super().data(index, role)


class ProblemsProxy(QSortFilterProxyModel):
    """Sorts severity by rank (not alphabetically) and filters by text and severity."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.severity: str | None = None
        self.text = ""
        self.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)

    def set_filters(self, text: str, severity: str | None) -> None:
        # Qt 6.9 replaced invalidateFilter (now deprecated) with begin/endFilterChange.
        modern = hasattr(self, "beginFilterChange")
        if modern:
            self.beginFilterChange()
        self.text = text.strip().lower()
        self.severity = severity
        if modern:
            self.endFilterChange()
        else:
            self.invalidateFilter()

    def _severity_column(self) -> int:
        model = self.sourceModel()
        names = model.column_names() if isinstance(model, DataFrameModel) else []
        return names.index("severity") if "severity" in names else -1

    def lessThan(self, left: _Index, right: _Index) -> bool:  # noqa: N802 (Qt override)
        if left.column() == self._severity_column():
            return SEVERITY_RANK.get(str(left.data()), -1) < SEVERITY_RANK.get(str(right.data()), -1)
        return super().lessThan(left, right)

    def filterAcceptsRow(self, row: int, parent: _Index) -> bool:  # noqa: N802 (Qt override)
        model = self.sourceModel()
        column = self._severity_column()
        if self.severity and column >= 0 and model.index(row, column, parent).data() != self.severity:
            return False
        if not self.text:
            return True
        return any(self.text in str(model.index(row, c, parent).data()).lower()
                   for c in range(model.columnCount()))


class ProblemsPanel(QWidget):
    """Problems found while loading and by QA; double-click a row to go to its lesion."""

    #: Image id of a double-clicked problem (rows without an image id emit nothing).
    lesion_activated = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.frame = problems_frame()
        self.model = ProblemsModel(PROBLEM_COLUMNS, parent=self)
        self.proxy = ProblemsProxy(self)
        self.proxy.setSourceModel(self.model)

        self.filter_edit = QLineEdit(self)
        self.filter_edit.setPlaceholderText("Filter problems (kind, image, message...)")
        self.filter_edit.setClearButtonEnabled(True)
        self.severity_combo = QComboBox(self)
        self.severity_combo.addItem("All severities", None)
        for severity in reversed(SEVERITIES):
            self.severity_combo.addItem(severity.capitalize(), severity)
        self.count_label = QLabel("", self)
        self.export_button = QPushButton("Export CSV…", self)
        self.export_button.setToolTip("Save the problems shown as a CSV table")

        self.view = QTableView(self)
        self.view.setModel(self.proxy)
        self.view.setSortingEnabled(True)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.setAlternatingRowColors(True)
        self.view.setWordWrap(False)
        # Messages start with the file's path and end with what is wrong: keep both ends.
        self.view.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.view.verticalHeader().setVisible(False)
        self.view.verticalHeader().setDefaultSectionSize(self.view.fontMetrics().height() + 6)
        header = self.view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)

        self.filter_edit.textChanged.connect(self._on_filter_edit_text_changed)
        self.severity_combo.currentIndexChanged.connect(self._on_severity_combo_changed)
        self.view.doubleClicked.connect(self._on_view_double_clicked)
        self.export_button.clicked.connect(self._on_export_button_clicked)

        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(self.filter_edit, 1)
        top.addWidget(self.severity_combo)
        top.addWidget(self.export_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.count_label)
        self.clear()

    # -- public API ---------------------------------------------------------

    def set_problems(self, problems: Iterable[Problem] = (), findings: pd.DataFrame | None = None) -> None:
        """Show loader ``problems`` and QA ``findings`` (a ``core.qa`` findings table)."""
        self.set_frame(problems_frame(problems, findings))

    def set_frame(self, frame: pd.DataFrame) -> None:
        """Show a :func:`problems_frame`, sorted by severity, high first."""
        self.frame = frame
        self.model.set_frame(frame)
        column = self.model.column_names().index("severity")
        self.view.sortByColumn(column, Qt.SortOrder.DescendingOrder)
        self.view.resizeColumnsToContents()
        header = self.view.horizontalHeader()
        names = self.model.column_names()
        for c in range(self.model.columnCount() - 1):
            widest = 520 if names[c] == "message" else 200
            header.resizeSection(c, min(header.sectionSize(c), widest))
        self._update_count()

    def clear(self) -> None:
        self.set_frame(problems_frame())

    def row_count(self) -> int:
        """Rows shown (after filtering)."""
        return self.proxy.rowCount()

    def value_at(self, row: int, column: str) -> str:
        """The text of ``column`` in shown row ``row``."""
        return str(self.proxy.index(row, self.model.column_names().index(column)).data())

    def shown_frame(self) -> pd.DataFrame:
        """The rows shown, in the order shown (for CSV export)."""
        names = self.model.column_names()
        rows = [[self.proxy.index(r, c).data() for c in range(len(names))] for r in range(self.row_count())]
        return pd.DataFrame(rows, columns=names)

    def set_severity(self, severity: str | None) -> None:
        self.severity_combo.setCurrentIndex(max(self.severity_combo.findData(severity), 0))

    def activate_row(self, row: int) -> None:
        """What a double-click on shown row ``row`` does: emit its image id, if it has one."""
        image_id = self.value_at(row, "image_id")
        if image_id:
            self.lesion_activated.emit(image_id)

    def export_csv(self, path: str | Path) -> Path:
        """Write the rows shown as CSV."""
        return export_table(self.shown_frame(), path)

    # -- slots --------------------------------------------------------------

    def _update_count(self) -> None:
        total, shown = len(self.frame), self.row_count()
        noun = "problem" if total == 1 else "problems"
        self.count_label.setText(f"{total:,} {noun}" if shown == total else f"{shown:,} of {total:,} {noun}")

    def _apply_filters(self) -> None:
        self.proxy.set_filters(self.filter_edit.text(), self.severity_combo.currentData())
        self._update_count()

    def _on_filter_edit_text_changed(self, _text: str) -> None:
        self._apply_filters()

    def _on_severity_combo_changed(self, _index: int) -> None:
        self._apply_filters()

    def _on_view_double_clicked(self, index: QModelIndex) -> None:
        if index.isValid():
            self.activate_row(index.row())

    def _on_export_button_clicked(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export problems", "problems.csv", "CSV table (*.csv)")
        if not path:
            return
        try:
            self.export_csv(path)
        except ExportError as exc:
            QMessageBox.critical(self, "Export problems", str(exc))
