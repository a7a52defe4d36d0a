"""The run dialog's Slurm section: partition, resources, time limit, account, sbatch options, grid axes.

Only gathers text and numbers into a ``core.training.slurm_plan.SlurmRequest``;
``slurm_request_problems`` (via ``plan.request_problems``) says what is wrong.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QLineEdit,
    QSpinBox,
    QWidget,
)

from iaa_desktop.core.training.slurm_plan import SlurmRequest


class SlurmFields(QGroupBox):
    """Slurm job resources and the grid's backbone and α lists (one job per seed x backbone x α)."""

    #: Where the grid is submitted from changed ("local" or "ssh").
    submit_from_changed = Signal(str)

    def __init__(self, initial: SlurmRequest | None = None, parent: QWidget | None = None) -> None:
        super().__init__("Slurm cluster (one job per seed × backbone × α, a job array)", parent)
        initial = initial or SlurmRequest()
        self.submit_combo = QComboBox(self)
        self.submit_combo.addItem("This machine (sbatch here)", "local")
        self.submit_combo.addItem("A login node over SSH (the SSH host above)", "ssh")
        self.submit_combo.setToolTip(
            "Over SSH the grid is submitted by iaa-train-grid on the login node: its Python (Remote Python) "
            "needs iaa-desktop[cluster], and the remote folder must be on the cluster's shared file system; "
            "the training set is copied there once and the run folders are copied back as they train")
        self.submit_combo.setCurrentIndex(max(0, self.submit_combo.findData(initial.submit_from)))
        self.submit_combo.currentIndexChanged.connect(
            lambda *_: self.submit_from_changed.emit(self.submit_from()))
        self.partition_edit = QLineEdit(initial.partition, self)
        self.partition_edit.setPlaceholderText("the cluster's default partition")
        self.gpus_spin = self._spin(0, 64, initial.gpus_per_node)
        self.gpus_spin.setToolTip("GPUs per job on one node; 2 or more train with torchrun (DDP)")
        self.cpus_spin = self._spin(0, 512, initial.cpus_per_task)
        self.cpus_spin.setSpecialValueText("partition default")
        self.mem_spin = QDoubleSpinBox(self)
        self.mem_spin.setRange(0, 4096)
        self.mem_spin.setDecimals(1)
        self.mem_spin.setSuffix(" GB")
        self.mem_spin.setSpecialValueText("partition default")
        self.mem_spin.setValue(initial.mem_gb)
        self.time_spin = self._spin(1, 60 * 24 * 30, initial.time_min)
        self.time_spin.setSuffix(" min")
        self.time_spin.setToolTip("A job that reaches its time limit is requeued and resumes from its "
                                  "last saved epoch")
        self.account_edit = QLineEdit(initial.account, self)
        self.account_edit.setPlaceholderText("(none)")
        self.extra_edit = QLineEdit(initial.extra_sbatch, self)
        self.extra_edit.setPlaceholderText("--qos=high --constraint=a100")
        self.backbones_edit = QLineEdit(initial.backbones, self)
        self.backbones_edit.setPlaceholderText("more backbones: mobilenetv2_100, efficientnet_b1")
        self.alphas_edit = QLineEdit(initial.alphas, self)
        self.alphas_edit.setPlaceholderText("more α values (multi-task): 0.25, 0.75")
        form = QFormLayout(self)
        form.addRow("Submit from", self.submit_combo)
        form.addRow("Partition", self.partition_edit)
        form.addRow("GPUs per node", self.gpus_spin)
        form.addRow("CPUs per job", self.cpus_spin)
        form.addRow("Memory per job", self.mem_spin)
        form.addRow("Time limit", self.time_spin)
        form.addRow("Account", self.account_edit)
        form.addRow("Extra sbatch options", self.extra_edit)
        form.addRow("Grid: backbones", self.backbones_edit)
        form.addRow("Grid: α values", self.alphas_edit)

    def _spin(self, low: int, high: int, value: int) -> QSpinBox:
        spin = QSpinBox(self)
        spin.setRange(low, high)
        spin.setValue(value)
        return spin

    def submit_from(self) -> str:
        return str(self.submit_combo.currentData())

    def request(self) -> SlurmRequest:
        return SlurmRequest(partition=self.partition_edit.text().strip(),
                            gpus_per_node=self.gpus_spin.value(),
                            cpus_per_task=self.cpus_spin.value(), mem_gb=self.mem_spin.value(),
                            time_min=self.time_spin.value(), account=self.account_edit.text().strip(),
                            extra_sbatch=self.extra_edit.text(), backbones=self.backbones_edit.text(),
                            alphas=self.alphas_edit.text(), submit_from=self.submit_from())
