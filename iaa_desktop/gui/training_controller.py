"""Ties the training pieces together: run dialog -> training-set step -> trainer -> monitor -> runs panel,
and a finished run -> predictions on the loaded dataset -> predictions panel (and the browser's columns).

The main window creates the three widgets, hands them to a ``TrainingController``
and calls ``set_dataset`` when a dataset is loaded; everything else happens
here. The training set is prepared in a worker thread
(``core.training_plan.iter_prepare_training_set``: re-used when unchanged,
cancellable), the trainer and the predictor run as child processes
(``gui.trainer_process``), seeds run one after another.
"""

from __future__ import annotations

import logging
from collections.abc import Generator
from pathlib import Path

import pandas as pd
from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QWidget
from superqt.utils import create_worker

from iaa_desktop.core.dataset.model import Dataset
from iaa_desktop.core.errors import IAAError
from iaa_desktop.core.progress import Progress
from iaa_desktop.core.training.plan import (
    PlanError,
    PreparedSet,
    RunRequest,
    describe_specs,
    iter_prepare_training_set,
    new_run_dir,
    plan_specs,
    remote_target,
    request_problems,
)
from iaa_desktop.core.training.predictions import (
    checkpoint_input_size,
    default_cam_head,
    prediction_paths,
    read_predictions,
    seen_in_training,
)
from iaa_desktop.core.training.remote import RemoteTarget, load_remote_target, save_remote_target
from iaa_desktop.core.training.run_records import MODE_LABELS, pid_alive, read_run_record, stop_local_run
from iaa_desktop.core.training.runs import RunSpec, read_events
from iaa_desktop.core.training.slurm_login import is_slurm_run, login_target, read_login_record
from iaa_desktop.core.training.slurm_plan import slurm_options
from iaa_desktop.core.workspace_paths import workspace_dir_for
from iaa_desktop.gui.remote_trainer import RemoteTrainerProcess
from iaa_desktop.gui.slurm_runs import SlurmRuns
from iaa_desktop.gui.trainer_process import PredictProcess, TrainerProcess
from iaa_desktop.gui.widgets.predictions_panel import PredictionsPanel
from iaa_desktop.gui.widgets.run_dialog import RunDialog
from iaa_desktop.gui.widgets.runs_panel import RunsPanel
from iaa_desktop.gui.widgets.training_monitor import TrainingMonitor

log = logging.getLogger(__name__)


class StepFailure(Exception):
    """A ``RuntimeError`` from a generator worker, re-raised as another type (superqt swallows those)."""


def _reported(job: Generator):
    try:
        return (yield from job)
    except RuntimeError as exc:
        raise StepFailure(f"{type(exc).__name__}: {exc}") from exc


def _title(spec: RunSpec, run_dir: Path) -> str:
    return f"{MODE_LABELS.get(spec.mode, spec.mode)} · {spec.backbone} · seed {spec.seed} — {run_dir.name}"


class TrainingController(QObject):
    """The researcher's loop, end to end: train, watch, compare, predict.

    Parameters
    ----------
    monitor, runs_panel, predictions_panel
        The widgets it drives (the window places them).
    trainer, predictor
        The processes (injectable: tests pass ones with a stand-in command).
    export_options
        Extra keyword arguments of ``iter_prepare_training_set`` (e.g. ``workers``, ``cache``).
    devices
        Devices the run dialog offers; detected with ``nvidia-smi`` when ``None``.
    """

    #: A line for the status bar.
    status_message = Signal(str)
    #: (run directory, status, message) after each run.
    run_ended = Signal(str, str, str)
    #: Every queued run has ended (or the queue was stopped).
    queue_finished = Signal()
    #: Per-image prediction columns (DataFrame indexed by image id) for the browser.
    predictions_ready = Signal(object)
    #: A problem to show the user (plain sentence(s)).
    error = Signal(str)

    def __init__(self, monitor: TrainingMonitor, runs_panel: RunsPanel, predictions_panel: PredictionsPanel,
                 parent: QObject | None = None, *, trainer: TrainerProcess | None = None,
                 predictor: PredictProcess | None = None, remote_trainer: RemoteTrainerProcess | None = None,
                 export_options: dict | None = None,
                 devices: list[tuple[str, str]] | None = None) -> None:
        super().__init__(parent)
        self.monitor = monitor
        self.runs_panel = runs_panel
        self.predictions_panel = predictions_panel
        self.local_trainer = trainer or TrainerProcess(self)
        self.remote_trainer = remote_trainer or RemoteTrainerProcess(parent=self)
        #: The process of the current (or last) run: local or remote.
        self.trainer: TrainerProcess | RemoteTrainerProcess = self.local_trainer
        self.remote: RemoteTarget | None = None
        self.predictor = predictor or PredictProcess(self)
        #: Runs on a Slurm cluster: submitted as a job array, followed through the runs panel's scans.
        self.slurm_runs = SlurmRuns(runs_panel, self)
        self.export_options = dict(export_options or {})
        self.devices = devices
        self.dataset: Dataset | None = None
        self.workspace: Path | None = None
        self.last_request: RunRequest | None = None
        self.queue: list[RunSpec] = []
        self.training_set: Path | None = None
        self.current_run: Path | None = None
        self._step_worker = None
        self._step_job = None
        self._after_step = None
        self._predict_run: Path | None = None
        self._predict_paths = None

        for process in (self.local_trainer, self.remote_trainer):
            process.started.connect(self._on_trainer_started)
            process.event.connect(self.monitor.add_event)
            process.progress.connect(self.monitor.set_progress)
            process.log_line.connect(self.monitor.append_log)
            process.finished.connect(self._on_trainer_finished)
        self.monitor.cancel_requested.connect(self.cancel)
        self.monitor.resume_requested.connect(self.resume)
        self.runs_panel.resume_requested.connect(self.resume)
        self.runs_panel.predict_requested.connect(self.predict)
        self.runs_panel.run_selected.connect(self._on_runs_panel_run_selected)
        self.predictor.log_line.connect(self.monitor.append_log)
        self.predictor.finished.connect(self._on_predictor_finished)
        self.predictions_panel.cancel_requested.connect(self.predictor.cancel)
        self.predictions_panel.columns_ready.connect(self.predictions_ready)
        self.slurm_runs.submitted.connect(self._on_slurm_runs_submitted)
        self.slurm_runs.failed.connect(self._on_slurm_runs_failed)
        self.slurm_runs.status_changed.connect(self._on_slurm_runs_status_changed)
        self.slurm_runs.following.connect(self._on_slurm_runs_following)
        self.slurm_runs.event.connect(self.monitor.add_event)
        self.slurm_runs.progress.connect(self.monitor.set_progress)
        self.slurm_runs.all_ended.connect(self._on_slurm_runs_all_ended)
        self.slurm_runs.notice.connect(self.monitor.append_log)
        self.runs_panel.cancel_requested.connect(self.cancel_run)
        self.runs_panel.runs_loaded.connect(self._on_runs_panel_runs_loaded)

    # -- public API ---------------------------------------------------------

    def set_dataset(self, dataset: Dataset | None, workspace: str | Path | None = None) -> None:
        """The loaded dataset and its workspace (default: ``workspace_dir_for(dataset.root)``)."""
        self.dataset = dataset
        if dataset is None:
            self.workspace = None if workspace is None else Path(workspace)
        else:
            self.workspace = Path(workspace) if workspace is not None else workspace_dir_for(dataset.root)
        self.runs_panel.set_workspace(self.workspace)

    def set_true_iaa(self, series: pd.Series | None) -> None:
        self.predictions_panel.set_true_iaa(series)

    def is_busy(self) -> bool:
        return self._step_worker is not None or self.local_trainer.is_running() or bool(self.queue) \
            or self.remote_trainer.is_running() or self.predictor.is_running() or self.slurm_runs.is_active()

    def open_run_dialog(self, parent: QWidget | None = None) -> RunDialog:
        """Open the run dialog (non-blocking); Start begins the runs."""
        dialog = RunDialog(parent, devices=self.devices, initial=self.last_request)
        dialog.request_accepted.connect(self.start)
        dialog.open()
        return dialog

    def start(self, request: RunRequest) -> bool:
        """Prepare the training set, then train one run per seed; False (and ``error``) if it cannot."""
        problems = request_problems(request)
        if self.dataset is None or self.workspace is None:
            problems.insert(0, "Open a dataset first: the training set is exported from it.")
        if self.is_busy():
            problems.insert(0, "A training run or an export is already going on.")
        if problems:
            self.error.emit("\n".join(problems))
            return False
        self.last_request = request
        self.remote = remote_target(request) if request.slurm is None else None
        self.monitor.start_run("", "Preparing the training set", request.mode)
        self.monitor.append_log(f"Preparing the training set ({request.input_size} px)…")

        def then(prepared: PreparedSet) -> None:
            try:
                self.queue = plan_specs(request, prepared.path)
            except PlanError as exc:
                self._fail(str(exc))
                return
            self.training_set = prepared.path
            self.monitor.append_log(describe_specs(self.queue))
            if request.slurm is not None:
                specs, self.queue = self.queue, []
                options = slurm_options(request.slurm)
                if request.slurm.submit_from == "ssh":
                    login = remote_target(request)
                    self.monitor.append_log(f"Copying the training set to {login.host} ({login.workdir}) "
                                            f"and submitting {len(specs)} run(s) to Slurm there…")
                    self.slurm_runs.submit_via_login(specs, self.workspace, options, login)
                    return
                self.monitor.append_log(f"Submitting {len(specs)} run(s) to Slurm…")
                self.slurm_runs.submit(specs, self.workspace, options)
                return
            self._start_next()

        self._prepare(request.input_size, request.split_source, request.split_seed, then)
        return True

    def cancel(self) -> None:
        """Stop what is going on: the export step, or the current run (and the seeds still queued)."""
        self.queue = []
        if self._step_worker is not None:
            self.monitor.append_log("Cancelling the training-set export…")
            self._step_worker.quit()
        for process in (self.local_trainer, self.remote_trainer):
            if process.is_running():
                process.cancel()
        if self.slurm_runs.is_active():
            self.monitor.append_log("Cancelling the Slurm jobs (scancel)…")
            self.slurm_runs.cancel()
        if self.predictor.is_running():
            self.predictor.cancel()

    def cancel_run(self, run_dir: str | Path) -> bool:
        """Stop one run, wherever it trains: this window's trainer (local or SSH), a Slurm job (here or
        through its login node), or a local trainer this window did not start (the command line, an
        earlier window: SIGTERM to its ``trainer.pid``). False (and ``error``) when it cannot."""
        run_dir = Path(run_dir)
        for process in (self.local_trainer, self.remote_trainer):
            if process.is_running() and self.current_run is not None and run_dir == Path(self.current_run):
                self.monitor.append_log(f"Cancelling {run_dir.name}…")
                process.cancel()
                return True
        if is_slurm_run(run_dir):
            if not self.slurm_runs.cancel([run_dir]):
                self.error.emit("A Slurm submission or cancel is still under way: try again in a moment.")
                return False
            self.monitor.append_log(f"Cancelling the Slurm job of {run_dir.name}…")
            return True
        try:
            stopped = stop_local_run(run_dir)
        except IAAError as exc:
            self.error.emit(str(exc))
            return False
        if not stopped:
            self.error.emit(f"{run_dir.name} is not running here: there is nothing to cancel.")
            return False
        self.monitor.append_log(f"Cancelling {run_dir.name} (SIGTERM to its trainer)…")
        self._refresh_when_stopped(run_dir)
        return True

    def _refresh_when_stopped(self, run_dir: Path, tries: int = 60) -> None:
        """Rescan the runs once the trainer has gone (it writes its last event first), or after 30 s."""
        def check() -> None:
            if pid_alive(run_dir) and tries > 0:
                self._refresh_when_stopped(run_dir, tries - 1)
            else:
                self.runs_panel.refresh()

        QTimer.singleShot(500, check)

    def shutdown(self, timeout_ms: int = 10_000) -> None:
        """Before the window closes: stop the export, stop a local run gracefully (resumable later),
        stop predicting. A remote run goes on on its machine; only the polling stops."""
        self.queue = []
        if self._step_worker is not None:
            self._step_worker.quit()
        self.local_trainer.stop_and_wait(timeout_ms)
        self.predictor.stop_and_wait()
        self.remote_trainer.detach()

    def resume(self, run_dir: str | Path, extra_args: tuple[str, ...] = ()) -> bool:
        """Go on with a stopped run from its last saved epoch (``extra_args``: trainer flags: --epochs N)."""
        run_dir = Path(run_dir)
        if self.is_busy():
            self.error.emit("A training run or an export is already going on.")
            return False
        login = read_login_record(run_dir)
        if login is not None:
            self.error.emit(f"{run_dir.name} trained on Slurm through {login_target(login).host}: resume it "
                            "there (iaa-train --out RUN_FOLDER --resume in a job), or start the grid again.")
            return False
        record = read_run_record(run_dir, running=False)
        spec = record.spec
        title = _title(spec, run_dir) if spec else run_dir.name
        self.monitor.start_run(str(run_dir), title + " (resumed)", spec.mode if spec else "multitask",
                               read_events(run_dir)[0])
        self.current_run = run_dir
        target = load_remote_target(run_dir)
        self.trainer = self.local_trainer if target is None else self.remote_trainer
        if target is not None:
            self.remote_trainer.target = target
        try:
            self.trainer.resume(run_dir, extra_args)
        except IAAError as exc:
            self._fail(str(exc))
            return False
        self.runs_panel.set_running([run_dir])
        return True

    def predict(self, run_dir: str | Path, cam_head: str | None = "auto") -> bool:
        """Run a finished model on the loaded dataset (exported at its input size), with Grad-CAM."""
        run_dir = Path(run_dir)
        if self.dataset is None or self.workspace is None:
            self.error.emit("Open a dataset first: the model runs on the loaded dataset.")
            return False
        if self.is_busy():
            self.error.emit("A training run, an export or a prediction is already going on.")
            return False
        record = read_run_record(run_dir, running=False)
        if record.status != "finished" or record.spec is None:
            self.error.emit(f"{run_dir.name}: only a finished run can be run on the dataset.")
            return False
        head = default_cam_head(record.spec.mode) if cam_head == "auto" else cam_head
        size = checkpoint_input_size(run_dir)
        self.predictions_panel.set_busy(True, f"Preparing the dataset for {run_dir.name}…")

        def then(prepared: PreparedSet) -> None:
            paths = prediction_paths(run_dir, prepared.path)
            self._predict_run, self._predict_paths = run_dir, paths
            n_images = prepared.info.n_images
            self.predictions_panel.set_busy(True, f"Running {run_dir.name} on {n_images:,} images…")
            self.predictor.start(run_dir, prepared.path, paths.csv, device=record.spec.device, cam=head,
                                 cam_dir=paths.cam_dir)

        self._prepare(size, "metadata", 0, then, on_fail=lambda: self.predictions_panel.set_busy(False))
        return True

    @staticmethod
    def _seen_images(run_dir: Path | None) -> tuple[frozenset[str] | None, str]:
        """The images a run trained on or chose its epoch by, or ``None`` and why not."""
        if run_dir is None:
            return None, "no run"
        record = read_run_record(run_dir, running=False)
        if record.spec is None or not record.spec.data:
            return None, "the run records no training set"
        try:
            return seen_in_training(record.spec.data), ""
        except IAAError:
            return None, f"its training set {Path(record.spec.data).name} is not readable here"

    # -- the training-set step -----------------------------------------------

    def _prepare(self, size: int, split_source: str, split_seed: int, then, on_fail=None) -> None:
        job = iter_prepare_training_set(self.dataset, self.workspace, size=size, split_source=split_source,
                                        split_seed=split_seed, **self.export_options)
        worker = create_worker(_reported, job, _start_thread=False,
                               _connect={"yielded": self._on_step_yielded,
                                         "returned": self._on_step_returned,
                                         "errored": self._on_step_errored,
                                         "aborted": self._on_step_aborted,
                                         "finished": self._on_step_finished})
        self._after_step = (then, on_fail)
        self._step_worker = worker
        self._step_job = job
        worker.start()

    def _on_step_yielded(self, progress: Progress) -> None:
        self.monitor.show_step(progress)

    def _on_step_returned(self, prepared: PreparedSet) -> None:
        then, _ = self._after_step or (None, None)
        what = "Re-using" if prepared.reused else "Exported"
        self.monitor.append_log(f"{what} {prepared.path} ({prepared.info.n_images:,} images)")
        self._step_worker = None
        if then is not None:
            then(prepared)

    def _on_step_errored(self, exc: BaseException) -> None:
        self._step_worker = None
        message = str(exc) if isinstance(exc, IAAError) else f"{type(exc).__name__}: {exc}"
        self._fail(f"The training set could not be prepared: {message}")

    def _on_step_aborted(self) -> None:
        self._step_worker = None
        self._close_step_job()
        self._fail("Cancelled: the training set was not written.", status="cancelled")

    def _on_step_finished(self) -> None:
        self._step_worker = None
        self._close_step_job()

    def _close_step_job(self) -> None:
        job, self._step_job = self._step_job, None
        if job is not None:
            # superqt stops an aborted generator without closing it: close it here so that the
            # export's clean-up (its temporary file) runs now, not whenever it is collected.
            try:
                job.close()
            except ValueError:  # still executing in the worker thread (the worker has left its loop by now)
                log.warning("the training-set step could not be closed")

    def _fail(self, message: str, status: str = "failed") -> None:
        _, on_fail = self._after_step or (None, None)
        self._after_step = None
        self.queue = []
        if on_fail is not None:
            on_fail()
        self.monitor.set_finished(status, message)
        self.monitor.append_log(message)
        if status != "cancelled":
            self.error.emit(message)
        self.status_message.emit(message)
        self.queue_finished.emit()

    # -- runs ------------------------------------------------------------------

    def _start_next(self) -> None:
        if not self.queue:
            self.queue_finished.emit()
            return
        spec = self.queue.pop(0)
        run_dir = new_run_dir(self.workspace, spec)
        self.current_run = run_dir
        self.monitor.start_run(str(run_dir), _title(spec, run_dir), spec.mode)
        self.runs_panel.set_running([run_dir])
        self.trainer = self.local_trainer if self.remote is None else self.remote_trainer
        if self.remote is not None:
            save_remote_target(run_dir, self.remote)
            self.remote_trainer.target = self.remote
            self.monitor.append_log(f"Training on {self.remote.host} (remote folder {self.remote.workdir})")
        try:
            self.trainer.start(run_dir, data=self.training_set)
        except IAAError as exc:
            self._fail(str(exc))
            return
        self.runs_panel.refresh()

    def _on_trainer_started(self, run_dir: str) -> None:
        self.status_message.emit(f"Training {Path(run_dir).name}…")

    def _on_trainer_finished(self, status: str, message: str) -> None:
        run_dir = self.current_run
        resumable = False
        if run_dir is not None:
            resumable = read_run_record(run_dir, running=False).resumable
        self.monitor.set_finished(status, message, resumable)
        self.monitor.append_log(f"Run ended: {status}" + (f" ({message})" if message else ""))
        self.runs_panel.set_running([])
        self.runs_panel.refresh()
        self.status_message.emit(f"{run_dir.name if run_dir else 'run'}: {status}")
        self.run_ended.emit(str(run_dir or ""), status, message)
        if status == "failed":
            self.error.emit(f"Training failed: {message}")
        if status == "finished" and self.queue:
            self._start_next()
        else:
            self.queue = []
            self.queue_finished.emit()

    def _on_runs_panel_run_selected(self, record) -> None:
        if self.is_busy() or record.spec is None:
            return
        events, _ = read_events(record.run_dir)
        self.current_run = record.run_dir
        self.monitor.show_past_run(str(record.run_dir), _title(record.spec, record.run_dir), record.spec.mode,
                                   events, record.status, record.message, record.resumable)

    # -- Slurm ------------------------------------------------------------------

    def _on_slurm_runs_submitted(self, grid: dict) -> None:
        array = grid["job_ids"][0].split("_")[0]
        self.monitor.start_run("", f"Slurm job array {array}: {len(grid['runs'])} run(s) queued",
                               self.last_request.mode if self.last_request else "multitask")
        for job_id, run_dir in zip(grid["job_ids"], grid["runs"], strict=True):
            self.monitor.append_log(f"Slurm job {job_id} queued: {Path(run_dir).name}")
        self.monitor.set_running(True)
        self.status_message.emit(f"Submitted {len(grid['runs'])} run(s) to Slurm (job array {array})")

    def _on_slurm_runs_failed(self, message: str) -> None:
        self._fail(message)

    def _on_slurm_runs_status_changed(self, run_dir: str, status: str, message: str) -> None:
        self.monitor.append_log(f"{Path(run_dir).name}: {status}" + (f" ({message})" if message else ""))
        if status not in ("queued", "running", "pending"):
            self.run_ended.emit(run_dir, status, message)

    def _on_slurm_runs_following(self, run_dir: str) -> None:
        record = read_run_record(run_dir, running=True)
        if record.spec is not None:
            self.current_run = Path(run_dir)
            self.monitor.start_run(run_dir, _title(record.spec, Path(run_dir)) + " (Slurm)", record.spec.mode)

    def _on_slurm_runs_all_ended(self, counts: dict) -> None:
        summary = ", ".join(f"{n} {status}" for status, n in counts.items())
        status = "finished" if set(counts) == {"finished"} else (
            "cancelled" if "cancelled" in counts else "failed")
        self.monitor.set_finished(status, f"Slurm runs: {summary}")
        self.monitor.append_log(f"Slurm runs ended: {summary}")
        self.status_message.emit(f"Slurm runs ended: {summary}")
        self.queue_finished.emit()

    def _on_runs_panel_runs_loaded(self, records) -> None:
        if not self.is_busy() and self.slurm_runs.adopt(records):
            self.monitor.append_log("Following the Slurm runs still queued or running in this workspace")

    # -- predictions -----------------------------------------------------------

    def _on_predictor_finished(self, ok: bool, message: str, csv_path: str) -> None:
        self.predictions_panel.set_busy(False)
        if not ok:
            self.error.emit(message)
            self.status_message.emit(message)
            return
        try:
            frame = read_predictions(csv_path)
        except IAAError as exc:
            self.error.emit(str(exc))
            return
        run = self._predict_run
        seen, seen_note = self._seen_images(run)
        self.predictions_panel.set_predictions(
            frame, title=f"{run.name if run else 'Model'}: predictions for {len(frame):,} images",
            cam_dir=self._predict_paths.cam_dir if self._predict_paths else None, seen=seen,
            seen_note=seen_note)
        self.status_message.emit(f"Predictions ready for {len(frame):,} images")
