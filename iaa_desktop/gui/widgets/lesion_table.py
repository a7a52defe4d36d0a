"""The lesion table: a pandas DataFrame shown through a sortable, filterable QTableView."""

from __future__ import annotations

import numbers

import pandas as pd
from PySide6.QtCore import (
    QAbstractTableModel,
    QItemSelectionModel,
    QModelIndex,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
    Signal,
)
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QLineEdit, QTableView, QVBoxLayout, QWidget

from iaa_desktop.core.overlay import LESION_TABLE_COLUMNS

_Index = QModelIndex | QPersistentModelIndex

#: Widest a column gets when fitted to its contents, in pixels.
MAX_COLUMN_WIDTH = 170

_HEADER_TIPS = {
    "benign_malignant": "Benign or malignant, as the dataset's metadata gives it",
    "annotators": "Distinct human annotators (consensus masks not counted)",
    "masks": "Mask files, consensus masks included",
}


def _cell(value: object) -> object:
    """A DataFrame value as Qt shows it: "" for missing, Python ints and floats for numbers."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    return str(value)


class DataFrameModel(QAbstractTableModel):
    """A read-only table model over a DataFrame.

    Cells are converted once, when the frame is set, so that painting and
    sorting 15,000 rows never touch pandas. Numbers stay numbers, so a proxy
    model sorts them numerically.

    Parameters
    ----------
    headers
        Header text per column name; columns not named keep their name.
    tooltips
        Header tooltip per column name.
    """

    def __init__(self, headers: dict[str, str] | None = None, tooltips: dict[str, str] | None = None,
                 parent=None) -> None:
        super().__init__(parent)
        self._headers = dict(headers or {})
        self._tooltips = dict(tooltips or {})
        self._columns: list[str] = []
        self._rows: list[tuple[object, ...]] = []
        self._numeric: list[bool] = []

    def set_frame(self, frame: pd.DataFrame) -> None:
        """Show ``frame`` (its index is ignored)."""
        self.beginResetModel()
        self._columns = [str(c) for c in frame.columns]
        self._numeric = [pd.api.types.is_numeric_dtype(frame[c]) for c in frame.columns]
        self._rows = [tuple(_cell(v) for v in row) for row in frame.itertuples(index=False, name=None)]
        self.endResetModel()

    def column_names(self) -> list[str]:
        return list(self._columns)

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008 (Qt's signature)
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._columns)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid():
            return None
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            return self._rows[index.row()][index.column()]
        if role == Qt.ItemDataRole.TextAlignmentRole and self._numeric[index.column()]:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(self._columns):
            return None
        name = self._columns[section]
        if role == Qt.ItemDataRole.DisplayRole:
            return self._headers.get(name, name)
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltips.get(name)
        return None


class LesionTable(QWidget):
    """A filter box over the table of lesions; emits the image id of the current row.

    Keyboard: arrows, Page Up/Down, Home/End move the current row; typing in
    the filter box keeps the rows whose any cell contains the text.
    """

    #: Image id of the newly current row.
    lesion_selected = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = DataFrameModel(LESION_TABLE_COLUMNS, _HEADER_TIPS, self)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setFilterKeyColumn(-1)
        self.proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)

        self.filter_edit = QLineEdit(self)
        self.filter_edit.setPlaceholderText("Filter lesions (id, diagnosis, split...)")
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.textChanged.connect(self._on_filter_edit_text_changed)

        self.view = QTableView(self)
        self.view.setModel(self.proxy)
        self.view.setSortingEnabled(True)
        self.view.sortByColumn(-1, Qt.SortOrder.AscendingOrder)  # keep the dataset's order until asked
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.setAlternatingRowColors(True)
        self.view.setWordWrap(False)
        self.view.verticalHeader().setVisible(False)
        self.view.verticalHeader().setDefaultSectionSize(self.view.fontMetrics().height() + 6)
        header = self.view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        self.view.selectionModel().currentRowChanged.connect(self._on_selection_current_row_changed)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.filter_edit)
        layout.addWidget(self.view)

    def set_frame(self, frame: pd.DataFrame) -> None:
        """Show a ``lesion_table_frame``; nothing is selected afterwards."""
        self.model.set_frame(frame)
        self.view.resizeColumnsToContents()
        header = self.view.horizontalHeader()
        for column in range(self.model.columnCount() - 1):
            # Long diagnoses would push the counts out of sight; the full text is a hover away.
            header.resizeSection(column, min(header.sectionSize(column), MAX_COLUMN_WIDTH))

    def preferred_width(self) -> int:
        """Width that shows every column without a horizontal scroll bar."""
        header = self.view.horizontalHeader()
        columns = sum(header.sectionSize(c) for c in range(header.count()))
        return columns + self.view.verticalScrollBar().sizeHint().width() + 2 * self.view.frameWidth() + 2

    def row_count(self) -> int:
        """Rows shown (after filtering)."""
        return self.proxy.rowCount()

    def image_id_at(self, row: int) -> str:
        """Image id in shown row ``row`` (after sorting and filtering)."""
        column = self.model.column_names().index("image_id")
        return str(self.proxy.index(row, column).data())

    def current_image_id(self) -> str | None:
        index = self.view.currentIndex()
        return self.image_id_at(index.row()) if index.isValid() else None

    def select_row(self, row: int) -> None:
        """Make shown row ``row`` current and selected (emits ``lesion_selected``)."""
        index = self.proxy.index(row, 0)
        if not index.isValid():
            return
        flags = (QItemSelectionModel.SelectionFlag.ClearAndSelect
                 | QItemSelectionModel.SelectionFlag.Rows)
        self.view.selectionModel().setCurrentIndex(index, flags)
        self.view.scrollTo(index)

    def _on_filter_edit_text_changed(self, text: str) -> None:
        self.proxy.setFilterFixedString(text)

    def _on_selection_current_row_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if current.isValid():
            self.lesion_selected.emit(self.image_id_at(current.row()))
