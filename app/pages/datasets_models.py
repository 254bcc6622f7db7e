"""Table model of the datasets in the store (one row per ``Dataset``), sortable by raw values."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt

from embsr_core.store.models import Dataset

DATASET_ID_ROLE = Qt.ItemDataRole.UserRole + 1
SORT_ROLE = Qt.ItemDataRole.UserRole + 2
_Index = QModelIndex | QPersistentModelIndex


@dataclass(frozen=True)
class DatasetRow:
    """The columns shown, copied out of the ORM object (detached rows must not lazy-load later)."""

    id: int
    name: str
    format: str
    sessions: int
    items: int
    operations: int
    micro_behaviors: int
    imported_at: datetime
    source: str

    @classmethod
    def of(cls, ds: Dataset) -> DatasetRow:
        return cls(ds.id, ds.name, ds.source_format, ds.n_sessions, ds.n_items, ds.n_operations, ds.n_events,
                   ds.imported_at, ds.source_path or "")


COLUMNS: tuple[tuple[str, str], ...] = (
    ("name", "Name"),
    ("format", "Format"),
    ("sessions", "Sessions"),
    ("items", "Items"),
    ("operations", "Operations"),
    ("micro_behaviors", "Micro-behaviors"),
    ("imported_at", "Imported at"),
)
NUMERIC = {"sessions", "items", "operations", "micro_behaviors"}


class DatasetsTableModel(QAbstractTableModel):
    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._rows: list[DatasetRow] = []

    def set_datasets(self, datasets: list[Dataset]) -> None:
        self.beginResetModel()
        self._rows = [DatasetRow.of(ds) for ds in datasets]
        self.endResetModel()

    def rows(self) -> list[DatasetRow]:
        return list(self._rows)

    def row_of(self, dataset_id: int) -> int:
        return next((k for k, r in enumerate(self._rows) if r.id == dataset_id), -1)

    def dataset(self, row: int) -> DatasetRow:
        return self._rows[row]

    # Qt model API ----------------------------------------------------------------------------------
    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: N802, B008 - Qt API
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: N802, B008 - Qt API
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:  # noqa: N802
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section][1]
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.TextAlignmentRole:
            key = COLUMNS[section][0]
            return int((Qt.AlignmentFlag.AlignRight if key in NUMERIC else Qt.AlignmentFlag.AlignLeft)
                       | Qt.AlignmentFlag.AlignVCenter)
        return None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row = self._rows[index.row()]
        key = COLUMNS[index.column()][0]
        value = getattr(row, key)
        if role == Qt.ItemDataRole.DisplayRole:
            if key in NUMERIC:
                return f"{value:,}"
            if key == "imported_at":
                return value.strftime("%Y-%m-%d %H:%M")
            return str(value)
        if role == SORT_ROLE:
            return value.timestamp() if key == "imported_at" else value
        if role == DATASET_ID_ROLE:
            return row.id
        if role == Qt.ItemDataRole.TextAlignmentRole and key in NUMERIC:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{row.name}\nSource: {row.source}" if row.source else row.name
        return None
