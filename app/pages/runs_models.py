"""Qt item models of the Runs page: the run table (+ sort/filter proxy) and the Table-III comparison.

They only hold and format what ``embsr_core.reports`` computed; no numbers are derived here. Metrics
are shown in percent (the store and the CSV files hold fractions), and the headers say so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, QSortFilterProxyModel, Qt
from PySide6.QtGui import QColor, QFont

from app.widgets.run_format import STATUS_COLORS, fmt_metric
from embsr_core import reports
from embsr_core.reports import ComparisonTable, RunInfo

SORT_ROLE = Qt.ItemDataRole.UserRole
RUN_ID_ROLE = Qt.ItemDataRole.UserRole + 1
Index = QModelIndex | QPersistentModelIndex


@dataclass
class _Column:
    header: str
    numeric: bool = False


class RunsTableModel(QAbstractTableModel):
    """One row per run; two metric columns whose metric@K and aggregation the page chooses."""

    FIXED = ("ID", "Name", "Status", "Model", "Dataset")  # then the two metric columns
    TAIL = ("Epochs", "Duration", "Tags", "Hyperparameters", "Device", "Created")

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._infos: list[RunInfo] = []
        self._values = np.zeros((0, 2))
        self._metric_headers = ["H@20", "M@20"]
        self._tags: dict[int, list[str]] = {}
        self.split_label = "test"
        self._now = datetime.now()

    # content ---------------------------------------------------------------------------------------
    def set_rows(
        self,
        infos: list[RunInfo],
        values: np.ndarray,
        metric_headers: list[str],
        tags: dict[int, list[str]] | None = None,
        split_label: str = "test",
    ) -> None:
        self.beginResetModel()
        self._infos = list(infos)
        self._tags = dict(tags or {})
        self.split_label = split_label
        self._values = np.asarray(values, dtype=np.float64).reshape(len(infos), len(metric_headers))
        self._metric_headers = list(metric_headers)
        self._now = datetime.now()
        self.endResetModel()

    def infos(self) -> list[RunInfo]:
        return list(self._infos)

    def info(self, row: int) -> RunInfo:
        return self._infos[row]

    def tags(self, run_id: int) -> list[str]:
        return self._tags.get(run_id, [])

    def headers(self) -> list[str]:
        return [*self.FIXED, *self._metric_headers, *self.TAIL]

    # Qt model API -----------------------------------------------------------------------------------
    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008, N802 - Qt API
        return 0 if parent.isValid() else len(self._infos)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008, N802 - Qt API
        return 0 if parent.isValid() else len(self.FIXED) + len(self._metric_headers) + len(self.TAIL)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:  # noqa: N802
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.headers()[section]
        return None

    def _cell(self, row: int, col: int) -> tuple[str, Any]:
        """(display text, sort key) of one cell."""
        info = self._infos[row]
        n_fixed, n_metric = len(self.FIXED), len(self._metric_headers)
        if n_fixed <= col < n_fixed + n_metric:
            value = float(self._values[row, col - n_fixed])
            return fmt_metric(value), (value if math.isfinite(value) else -math.inf)
        name = self.FIXED[col] if col < n_fixed else self.TAIL[col - n_fixed - n_metric]
        if name == "ID":
            return str(info.id), info.id
        if name in ("Name", "Model", "Dataset"):
            text = {"Name": info.name, "Model": info.model, "Dataset": info.dataset}[name]
            return text, text.lower()
        if name == "Status":
            return info.status, info.status
        if name == "Hyperparameters":
            text = reports.format_hyperparameters(info.config)
            return text, text
        if name == "Epochs":
            best = f" (best {info.best_epoch})" if info.best_epoch is not None else ""
            return f"{info.epochs_done}{best}", info.epochs_done
        if name == "Duration":
            seconds = info.duration_s(self._now)
            return reports.format_duration(seconds), (seconds if seconds is not None else -1.0)
        if name == "Device":
            return info.device, info.device
        if name == "Tags":
            text = ", ".join(self.tags(info.id))
            return text, text.lower()
        created = info.created_at
        return (created.strftime("%Y-%m-%d %H:%M") if created else ""), (created.timestamp() if created else 0.0)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row, col = index.row(), index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._cell(row, col)[0]
        if role == SORT_ROLE:
            return self._cell(row, col)[1]
        if role == RUN_ID_ROLE:
            return self._infos[row].id
        header = self.headers()[col]
        if role == Qt.ItemDataRole.TextAlignmentRole:
            if header in ("ID", "Epochs", "Duration") or header in self._metric_headers:
                return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            return int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ForegroundRole and header == "Status":
            return QColor(STATUS_COLORS.get(self._infos[row].status, "#8a8f99"))
        if role == Qt.ItemDataRole.FontRole and header == "Status":
            font = QFont()
            font.setBold(True)
            return font
        if role == Qt.ItemDataRole.ToolTipRole:
            info = self._infos[row]
            if header == "Status" and info.error_text:
                return info.error_text.strip()[-2000:]
            if header == "Hyperparameters":
                return "\n".join(f"{k} = {v}" for k, v in sorted(reports.flatten_config(info.config).items()))
            if header in self._metric_headers:
                value = float(self._values[row, col - len(self.FIXED)])
                if not math.isfinite(value):
                    return f"This run has no value on the {self.split_label} split (not evaluated on it yet)."
                return f"{header}: in percent, on the {self.split_label} split"
            if header == "ID":
                return "Double-click a run to see its details, log, files and notes"
        return None


class RunsFilterProxy(QSortFilterProxyModel):
    """Sorts by each cell's raw value and keeps rows matching a status and every word of a text filter."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.setSortRole(SORT_ROLE)
        self._status = ""
        self._model = ""
        self._dataset = ""
        self._tag = ""
        self._words: list[str] = []

    def set_status(self, status: str) -> None:
        self.beginFilterChange()
        self._status = status
        self.endFilterChange()

    def set_model(self, model: str) -> None:
        self.beginFilterChange()
        self._model = model
        self.endFilterChange()

    def set_dataset(self, dataset: str) -> None:
        self.beginFilterChange()
        self._dataset = dataset
        self.endFilterChange()

    def set_tag(self, tag: str) -> None:
        self.beginFilterChange()
        self._tag = tag
        self.endFilterChange()

    def set_text(self, text: str) -> None:
        self.beginFilterChange()
        self._words = text.lower().split()
        self.endFilterChange()

    def filterAcceptsRow(self, source_row: int, source_parent: Index) -> bool:  # noqa: N802 - Qt API
        model = self.sourceModel()
        if not isinstance(model, RunsTableModel):
            return True
        info = model.info(source_row)
        if self._status and info.status != self._status:
            return False
        if self._model and info.model != self._model:
            return False
        if self._dataset and info.dataset != self._dataset:
            return False
        if self._tag and self._tag not in model.tags(info.id):
            return False
        if not self._words:
            return True
        text = " ".join(
            str(model.data(model.index(source_row, c))) for c in range(model.columnCount())
        ).lower()
        return all(word in text for word in self._words)


class ComparisonModel(QAbstractTableModel):
    """The paper's Table III: best value bold, second underlined, an Imp. row and Wilcoxon p-values."""

    P_HEADER = "p (Wilcoxon)"

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.table: ComparisonTable | None = None

    def set_table(self, table: ComparisonTable | None) -> None:
        self.beginResetModel()
        self.table = table
        self.endResetModel()

    def _has_imp(self) -> bool:
        return self.table is not None and self.table.improvement is not None

    def _has_p(self) -> bool:
        return self.table is not None and len(self.table.runs) > 1 and bool(self.table.p_values)

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008, N802 - Qt API
        if parent.isValid() or self.table is None:
            return 0
        return len(self.table.runs) + (1 if self._has_imp() else 0)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008, N802 - Qt API
        if parent.isValid() or self.table is None:
            return 0
        return 1 + len(self.table.columns) + (1 if self._has_p() else 0)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:  # noqa: N802
        if self.table is None or role != Qt.ItemDataRole.DisplayRole:
            return None
        if orientation == Qt.Orientation.Vertical:
            return None
        if section == 0:
            return "Run"
        if section <= len(self.table.columns):
            return f"{self.table.labels[section - 1]} %"
        return self.P_HEADER

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        table = self.table
        if table is None or not index.isValid():
            return None
        row, col = index.row(), index.column()
        is_imp = row >= len(table.runs)
        n_metric = len(table.columns)
        if role == Qt.ItemDataRole.DisplayRole:
            if col == 0:
                if is_imp:
                    return "Imp. %"
                info = table.runs[row]
                star = "  ◆" if info.id == table.chosen_run_id and self._has_imp() else ""
                return f"{info.display_name} (#{info.id}){star}"
            if col <= n_metric:
                if is_imp:
                    value = float(table.improvement[col - 1])  # type: ignore[index]
                    return "–" if not math.isfinite(value) else f"{value:+.2f}%"
                return fmt_metric(float(table.values[row, col - 1]))
            if is_imp:
                return ""
            info = table.runs[row]
            if info.id == table.chosen_run_id:
                return "(reference)"
            p = table.p_values.get(info.id)
            return "n/a" if p is None else f"{p:.3g}"
        if role == Qt.ItemDataRole.FontRole and not is_imp and 1 <= col <= n_metric:
            font = QFont()
            font.setBold(bool(table.best[row, col - 1]))
            font.setUnderline(bool(table.second[row, col - 1]))
            return font
        if role == Qt.ItemDataRole.FontRole and is_imp:
            font = QFont()
            font.setItalic(True)
            return font
        if role == Qt.ItemDataRole.TextAlignmentRole and col > 0:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ForegroundRole and is_imp and 1 <= col <= n_metric:
            value = float(table.improvement[col - 1])  # type: ignore[index]
            if math.isfinite(value):
                return QColor("#2e9d57" if value >= 0 else "#d64545")
        if role == Qt.ItemDataRole.ToolTipRole and col == n_metric + 1 and not is_imp:
            metric = table.significance_metric
            label = reports.metric_label(*metric) if metric else ""
            return (
                f"Two-sided Wilcoxon signed-rank test of per-session {label} against run "
                f"#{table.chosen_run_id} on the {table.split} split"
            )
        return None
