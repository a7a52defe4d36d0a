"""The dataset browser: the lesions as a sortable, filterable table over a pandas frame."""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd
from PySide6.QtCore import (
    QAbstractTableModel,
    QItemSelectionModel,
    QModelIndex,
    QPersistentModelIndex,
    QSignalBlocker,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from iaa_desktop.core.display.browser_table import (
    BROWSER_COLUMNS,
    BROWSER_TOOLTIPS,
    REVIEW_STATUSES,
    BrowserData,
    BrowserFilter,
    filter_choices,
    filter_mask,
    sort_order,
)

_Index = QModelIndex | QPersistentModelIndex

#: Widest a column gets when fitted to its contents, in pixels.
MAX_COLUMN_WIDTH = 170



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

    #: Python format of floats as displayed (``None``: the number itself, Qt's default).
    float_format: str | None = None

    def set_frame(self, frame: pd.DataFrame) -> None:
        """Show ``frame`` (its index is ignored)."""
        self.beginResetModel()
        self._load(frame, list(frame.columns))
        self.endResetModel()

    def _load(self, frame: pd.DataFrame, columns: list) -> None:
        """Convert ``columns`` of ``frame`` once; call between begin/endResetModel."""
        self._columns = [str(c) for c in columns]
        self._numeric = [pd.api.types.is_numeric_dtype(frame[c]) for c in columns]
        rows = frame[columns].itertuples(index=False, name=None)
        self._rows = [tuple(_cell(v) for v in row) for row in rows]

    def _source_row(self, row: int) -> int:
        """Position in ``_rows`` of shown row ``row`` (subclasses reorder and filter)."""
        return row

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
            value = self._rows[self._source_row(index.row())][index.column()]
            if role == Qt.ItemDataRole.DisplayRole and self.float_format and isinstance(value, float):
                return format(value, self.float_format)
            return value
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


class LesionTableModel(DataFrameModel):
    """The browser's model: a browser frame, listed in an order the core computes.

    Sorting and filtering change only ``_order`` (row positions into the
    frame, from ``core.browser_table.sort_order``/``filter_mask``), so a
    15,000-row table sorts and filters without a Python call per comparison.
    """

    float_format = ".3f"

    def __init__(self, parent=None) -> None:
        super().__init__(BROWSER_COLUMNS, BROWSER_TOOLTIPS, parent)
        self._frame = pd.DataFrame()
        self._order = np.zeros(0, dtype=np.int64)
        self._accepted = np.zeros(0, dtype=bool)
        self._sort: tuple[str, bool] | None = None

    # -- content --------------------------------------------------------------

    def set_frame(self, frame: pd.DataFrame, visible: list[str], accepted: np.ndarray | None = None) -> None:
        """Show columns ``visible`` of ``frame``; rows where ``accepted`` is False are hidden."""
        self.beginResetModel()
        self._frame = frame.reset_index(drop=True)
        self._load(self._frame, [c for c in visible if c in frame])
        self._accepted = np.ones(len(frame), bool) if accepted is None else np.asarray(accepted, bool)
        self._reorder()
        self.endResetModel()

    def set_accepted(self, accepted: np.ndarray) -> None:
        self.beginResetModel()
        self._accepted = np.asarray(accepted, dtype=bool)
        self._reorder()
        self.endResetModel()

    def frame(self) -> pd.DataFrame:
        return self._frame

    def shown_positions(self) -> np.ndarray:
        """Frame row positions in display order (after filtering and sorting)."""
        return self._order.copy()

    def _reorder(self) -> None:
        if self._sort is not None and self._sort[0] in self._frame:
            order = sort_order(self._frame, self._sort[0], self._sort[1])
        else:
            order = np.arange(len(self._frame))
        self._order = order[self._accepted[order]] if len(order) else order

    # -- Qt -------------------------------------------------------------------

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        if not 0 <= column < len(self._columns):
            self._sort = None
        else:
            self._sort = (self._columns[column], order == Qt.SortOrder.DescendingOrder)
        self.beginResetModel()
        self._reorder()
        self.endResetModel()

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008 (Qt's signature)
        return 0 if parent.isValid() else len(self._order)

    def _source_row(self, row: int) -> int:
        return int(self._order[row])

    def image_id_at(self, row: int) -> str:
        return str(self._frame.at[int(self._order[row]), "image_id"])

    def row_of(self, image_id: str) -> int | None:
        """Shown row of ``image_id``, or ``None`` when it is filtered out."""
        positions = np.flatnonzero(self._frame["image_id"].astype(str).to_numpy() == image_id)
        if not len(positions):
            return None
        rows = np.flatnonzero(self._order == positions[0])
        return int(rows[0]) if len(rows) else None


class _RowTableView(QTableView):
    """A table whose Home/End go to the first/last row (QTableView's go to the first/last column)."""

    def moveCursor(self, action: QAbstractItemView.CursorAction, modifiers) -> QModelIndex:  # noqa: N802
        rows = self.model().rowCount() if self.model() is not None else 0
        cursor = QAbstractItemView.CursorAction
        if rows and action in (cursor.MoveHome, cursor.MoveEnd):
            column = max(self.currentIndex().column(), 0)
            row = 0 if action == cursor.MoveHome else rows - 1
            return self.model().index(row, column)
        return super().moveCursor(action, modifiers)


#: Filter text changes apply after this pause (ms), so typing stays fluid on 15,000 rows.
FILTER_DELAY_MS = 150


class LesionTable(QWidget):
    """The dataset browser: filters over the table of lesions; emits the image id of the current row.

    Keyboard: arrows, Page Up/Down, Home/End move the current row. Filters:
    text (any cell), malignancy, annotator, tool, skill, IAA range, review
    status, and a selection made in an agreement plot (shown as a bar with a
    Clear button).
    """

    #: Image id of the newly current row.
    lesion_selected = Signal(str)
    #: Rows shown after filtering changed; carries the count.
    rows_changed = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = LesionTableModel(self)
        self._data: BrowserData | None = None
        self._selection: frozenset[str] | None = None

        self.filter_edit = QLineEdit(self)
        self.filter_edit.setPlaceholderText("Filter lesions (id, diagnosis, annotator…)  Ctrl+F")
        self.filter_edit.setClearButtonEnabled(True)
        self._filter_timer = QTimer(self)
        self._filter_timer.setSingleShot(True)
        self._filter_timer.setInterval(FILTER_DELAY_MS)
        self._filter_timer.timeout.connect(self.apply_filters)
        self.filter_edit.textChanged.connect(self._on_filter_edit_text_changed)

        self.malignancy_combo = self._combo("Malignancy",
                                            ["Any malignancy", "benign", "malignant", "unknown"])
        self.annotator_combo = self._combo("Lesions annotated by this annotator", ["Any annotator"])
        self.tool_combo = self._combo("Lesions with a mask drawn with this tool", ["Any tool"])
        self.skill_combo = self._combo("Lesions with a mask by an annotator of this skill", ["Any skill"])
        self.review_combo = self._combo("Review status", ["Any review status"])
        self.iaa_min = self._spin(0.0, "Lowest IAA shown")
        self.iaa_max = self._spin(1.0, "Highest IAA shown")

        self.selection_label = QLabel(self)
        self.clear_selection_button = QPushButton("Clear", self)
        self.clear_selection_button.setToolTip("Show every lesion again, not only the plot's selection")
        self.clear_selection_button.clicked.connect(self.clear_selection)
        self.count_label = QLabel(self)

        self.view = _RowTableView(self)
        self.view.setModel(self.model)
        self.view.setSortingEnabled(True)
        self.view.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.setAlternatingRowColors(True)
        self.view.setWordWrap(False)
        self.view.verticalHeader().setVisible(False)
        self.view.verticalHeader().setDefaultSectionSize(self.view.fontMetrics().height() + 6)
        self.view.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        header = self.view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        self.view.selectionModel().currentRowChanged.connect(self._on_selection_current_row_changed)
        self.model.modelReset.connect(self._on_model_model_reset)

        self._layout_widgets()

    def _combo(self, tip: str, items: list[str]) -> QComboBox:
        combo = QComboBox(self)
        combo.addItems(items)
        combo.setToolTip(tip)
        combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        combo.setMinimumContentsLength(8)
        combo.currentIndexChanged.connect(self.apply_filters)
        return combo

    def _spin(self, value: float, tip: str) -> QDoubleSpinBox:
        spin = QDoubleSpinBox(self)
        spin.setRange(0.0, 1.0)
        spin.setDecimals(2)
        spin.setSingleStep(0.05)
        spin.setValue(value)
        spin.setToolTip(tip)
        spin.valueChanged.connect(self.apply_filters)
        return spin

    def _layout_widgets(self) -> None:
        row1 = QHBoxLayout()
        row1.addWidget(self.filter_edit, 1)
        row1.addWidget(self.count_label)
        row2 = QHBoxLayout()
        for widget in (self.malignancy_combo, self.annotator_combo, self.tool_combo):
            row2.addWidget(widget, 1)
        row3 = QHBoxLayout()
        row3.addWidget(self.skill_combo, 1)
        row3.addWidget(self.review_combo, 1)
        row3.addWidget(QLabel("IAA", self))
        row3.addWidget(self.iaa_min)
        row3.addWidget(QLabel("–", self))
        row3.addWidget(self.iaa_max)
        row4 = QHBoxLayout()
        row4.addWidget(self.selection_label, 1)
        row4.addWidget(self.clear_selection_button)
        self._selection_row = row4
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 0)
        layout.setSpacing(2)
        for row in (row1, row2, row3, row4):
            layout.addLayout(row)
        layout.addWidget(self.view, 1)
        self._show_selection_bar()

    # -- data -----------------------------------------------------------------

    def set_data(self, data: BrowserData) -> None:
        """Show ``data``; the current lesion stays current when it is still listed."""
        current = self.current_image_id()
        first = self._data is None or self._data.base is not data.base
        self._data = data
        frame = data.frame()
        visible = [c for c in BROWSER_COLUMNS if c in frame]
        if first:
            self._selection = None
            self._fill_choices(frame)
        new_columns = visible != self.model.column_names()
        self.model.set_frame(frame, visible, filter_mask(frame, self.filter_spec()))
        if first or new_columns:
            self._fit_columns()
        if not first:  # a new dataset: nothing is current until the window chooses
            self._restore_current(current)
        self._show_selection_bar()

    def set_frame(self, frame: pd.DataFrame) -> None:
        """Show a plain ``lesion_table_frame`` (the index columns only)."""
        base = frame.copy()
        for column in ("annotator_ids", "tools", "skills"):
            if column not in base:
                base[column] = ""
        self.set_data(BrowserData(base))

    def data(self) -> BrowserData | None:
        return self._data

    def _fill_choices(self, frame: pd.DataFrame) -> None:
        choices = filter_choices(frame)
        for key, combo in (("annotator", self.annotator_combo), ("tool", self.tool_combo),
                           ("skill", self.skill_combo)):
            with QSignalBlocker(combo):
                combo.clear()
                combo.addItems([f"Any {key}", *choices[key]])
        with QSignalBlocker(self.review_combo):
            self.review_combo.clear()
            self.review_combo.addItems(["Any review status", *REVIEW_STATUSES])

    def _fit_columns(self) -> None:
        self.view.resizeColumnsToContents()
        header = self.view.horizontalHeader()
        for column in range(self.model.columnCount() - 1):
            # Long diagnoses would push the numbers out of sight; the full text is a hover away.
            header.resizeSection(column, min(header.sectionSize(column), MAX_COLUMN_WIDTH))

    # -- filters --------------------------------------------------------------

    def filter_spec(self) -> BrowserFilter:
        def value(combo: QComboBox) -> str:
            # The first entry of every filter combo is "Any ...": no filter.
            return "" if combo.currentIndex() <= 0 else combo.currentText()

        return BrowserFilter(text=self.filter_edit.text(), malignancy=value(self.malignancy_combo),
                             annotator=value(self.annotator_combo), tool=value(self.tool_combo),
                             skill=value(self.skill_combo), iaa_min=self.iaa_min.value(),
                             iaa_max=self.iaa_max.value(), review=value(self.review_combo),
                             image_ids=self._selection)

    def apply_filters(self) -> None:
        """Re-filter now (text changes are otherwise applied after a short pause)."""
        self._filter_timer.stop()
        if self._data is None:
            return
        current = self.current_image_id()
        self.model.set_accepted(filter_mask(self.model.frame(), self.filter_spec()))
        self._restore_current(current)

    def select_lesions(self, image_ids: list[str] | set[str] | frozenset[str]) -> None:
        """Show only ``image_ids`` (a selection made in a plot) until cleared."""
        self._selection = frozenset(str(i) for i in image_ids)
        self.apply_filters()
        self._show_selection_bar()
        if self.current_image_id() is None and self.row_count():
            self.select_row(0)

    def clear_selection(self) -> None:
        self._selection = None
        self.apply_filters()
        self._show_selection_bar()

    def _show_selection_bar(self) -> None:
        on = self._selection is not None
        if on:
            n = len(self._selection)
            plural = "s" if n != 1 else ""
            self.selection_label.setText(f"Showing the {n:,} lesion{plural} selected in a plot")
        self.selection_label.setVisible(on)
        self.clear_selection_button.setVisible(on)

    # -- rows -----------------------------------------------------------------

    def preferred_width(self) -> int:
        """Width that shows every column without a horizontal scroll bar."""
        header = self.view.horizontalHeader()
        columns = sum(header.sectionSize(c) for c in range(header.count()))
        return columns + self.view.verticalScrollBar().sizeHint().width() + 2 * self.view.frameWidth() + 2

    def row_count(self) -> int:
        """Rows shown (after filtering)."""
        return self.model.rowCount()

    def image_id_at(self, row: int) -> str:
        """Image id in shown row ``row`` (after sorting and filtering)."""
        return self.model.image_id_at(row)

    def shown_image_ids(self) -> list[str]:
        frame = self.model.frame()
        return [str(frame.at[int(p), "image_id"]) for p in self.model.shown_positions()]

    def current_image_id(self) -> str | None:
        index = self.view.currentIndex()
        return self.image_id_at(index.row()) if index.isValid() and self.model.rowCount() else None

    def select_row(self, row: int) -> None:
        """Make shown row ``row`` current and selected (emits ``lesion_selected``)."""
        index = self.model.index(row, 0)
        if not index.isValid():
            return
        flags = (QItemSelectionModel.SelectionFlag.ClearAndSelect
                 | QItemSelectionModel.SelectionFlag.Rows)
        self.view.selectionModel().setCurrentIndex(index, flags)
        self.view.scrollTo(index)

    def select_image(self, image_id: str) -> bool:
        """Make ``image_id`` current, clearing the filters if they hide it; False if unknown."""
        row = self.model.row_of(image_id)
        if row is None and self._data is not None:
            self.reset_filters()
            row = self.model.row_of(image_id)
        if row is None:
            return False
        self.select_row(row)
        return True

    def reset_filters(self) -> None:
        self._selection = None
        for widget in (self.filter_edit, self.malignancy_combo, self.annotator_combo, self.tool_combo,
                       self.skill_combo, self.review_combo, self.iaa_min, self.iaa_max):
            widget.blockSignals(True)
        self.filter_edit.clear()
        for combo in (self.malignancy_combo, self.annotator_combo, self.tool_combo, self.skill_combo,
                      self.review_combo):
            combo.setCurrentIndex(0)
        self.iaa_min.setValue(0.0)
        self.iaa_max.setValue(1.0)
        for widget in (self.filter_edit, self.malignancy_combo, self.annotator_combo, self.tool_combo,
                       self.skill_combo, self.review_combo, self.iaa_min, self.iaa_max):
            widget.blockSignals(False)
        self.apply_filters()
        self._show_selection_bar()

    def _restore_current(self, image_id: str | None) -> None:
        """After a reset, make ``image_id`` current again without announcing it as a new choice."""
        if image_id is None:
            return
        row = self.model.row_of(image_id)
        if row is None:
            return
        index = self.model.index(row, 0)
        with QSignalBlocker(self.view.selectionModel()):
            flags = (QItemSelectionModel.SelectionFlag.ClearAndSelect
                     | QItemSelectionModel.SelectionFlag.Rows)
            self.view.selectionModel().setCurrentIndex(index, flags)
        self.view.scrollTo(index)
        self.view.viewport().update()

    def _on_filter_edit_text_changed(self, _text: str) -> None:
        self._filter_timer.start()

    def _on_model_model_reset(self) -> None:
        n = self.model.rowCount()
        total = len(self.model.frame())
        self.count_label.setText(f"{n:,} of {total:,}" if n != total else f"{total:,} lesions")
        self.rows_changed.emit(n)

    def _on_selection_current_row_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if current.isValid():
            self.lesion_selected.emit(self.image_id_at(current.row()))
