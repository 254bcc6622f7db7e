"""Run plain-Python core functions off the GUI thread (see shared/guides/ARCHITECTURE.md).

Pattern, measured on PySide6 6.11 / CPython 3.11:
- a ``Worker`` runs the callable in a plain ``threading.Thread`` that never touches Qt: it posts
  progress, partial results and its outcome to a ``queue.SimpleQueue``. (This replaces the guide's
  Worker QObject in a ``QThread``: a test run froze for good in a GUI test while workers reported,
  after an earlier freeze had been traced to Qt's pooled connection mutexes taken by one thread while
  it waited for the GIL held by the other. A thread that never calls Qt cannot take part in that.)
- the callable gets a ``progress`` callback and a ``cancel`` token (``CancelToken``, built on
  ``threading.Event``): cancel/pause are plain flags the callable checks between batches;
- ``Task``, a QObject living in the GUI thread, drains that queue on a timer and re-emits each
  message as its own signal; pages connect to ``Task``'s signals and so always run in the GUI
  thread, lambdas included;
- ``TaskRunner`` runs one task at a time and joins every thread once its outcome has arrived;
- ``JobManager`` (the app's one instance is ``AppContext.runner``) holds two runners side by side:
  the training queue (one run at a time) and the task queue (imports, generation, deletes, exports),
  so a short import never waits behind a training run. The store allows concurrent readers and one
  writer at a time (SQLite WAL with a busy timeout); readers use their own runners.

Callable convention (core functions follow it, e.g. ``generate_demo_dataset(store, progress=, cancel=)``)::

    def work(*args, progress: Callable[[object], None], cancel: CancelToken, **kwargs) -> result

``progress(event)`` may carry any object (a float, a dataclass event...). If the callable returns a
generator, every yielded value is emitted as ``partial`` and the generator's return value is the
result. Once cancel was requested, the outcome is ``cancelled`` whether the callable raises (e.g.
``TaskCancelled`` from ``cancel.check()``, or a core ``ImportCancelled``) or returns normally.
``progress`` called with several arguments (the importers' ``rows, bytes, total``) emits a tuple.
"""

from __future__ import annotations

import inspect
import itertools
import queue
import threading
import traceback
from collections import deque
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from embsr_core.training.events import ControlToken, Recorder

__all__ = ["CancelToken", "JobManager", "Task", "TaskCancelled", "TaskRunner", "Worker", "last_error_line",
           "progress_fraction"]


class TaskCancelled(Exception):
    """Raised inside a task by ``CancelToken.check()`` once cancel was requested."""


class CancelToken(ControlToken):
    """The core's :class:`~embsr_core.training.ControlToken` (cancel + pause, a cancel wakes a paused
    task) plus the ``threading.Event`` spelling the data importers use (``is_set()``/``set()``) and
    :meth:`check`, so one token fits every core function and a core function never needs Qt.
    """

    set = ControlToken.cancel  # threading.Event compatibility

    def is_cancelled(self) -> bool:
        return self.cancelled

    is_set = is_cancelled

    def is_paused(self) -> bool:
        return self.paused

    def check(self) -> None:
        """The call to place between batches: waits while paused, raises TaskCancelled if cancelled."""
        self._running.wait()
        if self._cancel.is_set():
            raise TaskCancelled()


class Worker:
    """Runs one callable in a plain Python thread and reports through a queue, never through Qt.

    Messages, in order: ``("progress", event)``, ``("partial", value)``, then exactly one terminal
    ``("finished", result)``, ``("failed", traceback)`` or ``("cancelled", result or None)``. The
    thread touches no Qt object at all (why: the module docstring); ``Task`` drains the queue in the
    GUI thread.
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        *args: Any,
        token: CancelToken | None = None,
        progress_kw: str | None = "progress",
        cancel_kw: str | None = "cancel",
        **kwargs: Any,
    ) -> None:
        self._fn = fn
        self._args = args
        self._kwargs = kwargs
        self.token = token if token is not None else CancelToken()
        self._progress_kw = progress_kw
        self._cancel_kw = cancel_kw
        self.outbox: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self.thread_id: int | None = None  # threading.get_ident() of the thread that ran the callable

    def _report(self, *args: object) -> None:
        # Core callbacks with several arguments (import: rows, bytes, total_bytes) arrive as one tuple.
        self.outbox.put(("progress", args[0] if len(args) == 1 else tuple(args)))

    def run(self) -> None:
        """The thread's body: runs the callable, then posts one terminal message."""
        self.thread_id = threading.get_ident()
        kwargs = dict(self._kwargs)
        if self._progress_kw:
            kwargs[self._progress_kw] = self._report
        if self._cancel_kw:
            kwargs[self._cancel_kw] = self.token
        outcome: tuple[str, Any]
        try:
            result = self._fn(*self._args, **kwargs)
            if inspect.isgenerator(result):
                result = yield_partials(result, lambda value: self.outbox.put(("partial", value)))
            outcome = ("cancelled", result) if self.token.is_cancelled() else ("finished", result)
        except BaseException:  # the app must survive anything a task does
            # any exception after a cancel request is the cancellation itself (TaskCancelled, or a
            # core exception such as ImportCancelled), not a failure
            cancelled = self.token.is_cancelled()
            outcome = ("cancelled", None) if cancelled else ("failed", traceback.format_exc())
        self.outbox.put(outcome)


class TrainingBridge(Recorder):
    """The GUI's recorder of a training run: every trainer event goes to the worker's ``progress``.

    The trainer calls it after the store recorder, so a page reacting to an event (``Task``
    re-emits it in the GUI thread) finds the store already written.
    """

    def __init__(self, progress: Callable[[object], None]) -> None:
        self._progress = progress

    def __call__(self, event: object) -> None:
        self._progress(event)


def yield_partials(gen: Any, emit: Callable[[object], None]) -> Any:
    """Drain a generator, emitting each yielded value; returns the generator's return value."""
    while True:
        try:
            emit(next(gen))
        except StopIteration as stop:
            return stop.value


class Task(QObject):
    """GUI-thread handle of one submitted task; its signals are always emitted in the GUI thread.

    States: ``queued`` → ``running`` → ``finished`` | ``failed`` | ``cancelled``. While running, a
    timer in the GUI thread drains the worker's queue every ``POLL_MS`` and re-emits its messages.
    """

    POLL_MS = 15

    started = Signal()
    progress = Signal(object)
    partial = Signal(object)
    finished = Signal(object)
    failed = Signal(str)
    cancelled = Signal(object)
    done = Signal()  # after any terminal signal and after the thread was joined

    _ids = itertools.count(1)

    def __init__(self, worker: Worker, name: str) -> None:
        super().__init__()
        self.id = next(self._ids)
        self.name = name
        self.state = "queued"
        self.result: Any = None
        self.error: str | None = None
        self._worker: Worker | None = worker
        self._thread: threading.Thread | None = None
        self._token = worker.token
        self._poll = QTimer(self)
        self._poll.setInterval(self.POLL_MS)
        self._poll.timeout.connect(self.deliver)
        self._held: tuple[str, Any] | None = None  # a terminal message seen by deliver(outcome=False)
        self.worker_thread_id: int | None = None

    # control (callable from the GUI thread) ----------------------------------------------------------
    def cancel(self) -> None:
        self._token.cancel()
        if self.state == "queued":
            self._set_terminal("cancelled", None)

    def pause(self) -> None:
        """Pause between batches; what the worker did before the pause is shown at once."""
        self._token.pause()
        self.deliver(outcome=False)

    def resume(self) -> None:
        self._token.resume()

    def is_paused(self) -> bool:
        return self._token.is_paused()

    def is_done(self) -> bool:
        return self.state in ("finished", "failed", "cancelled")

    @property
    def token(self) -> CancelToken:
        return self._token

    # lifecycle (driven by TaskRunner) ----------------------------------------------------------------
    def _start(self) -> None:
        worker = self._worker
        assert worker is not None and self.state == "queued"
        thread = threading.Thread(target=worker.run, name=f"embsr-task-{self.id}-{self.name}", daemon=True)
        self._thread = thread
        self.state = "running"
        self.started.emit()
        thread.start()
        self._poll.start()

    def join(self, timeout_s: float | None = None) -> bool:
        """Wait for the worker thread (GUI thread only); True once it has ended."""
        thread = self._thread
        if thread is None:
            return True
        thread.join(timeout_s)
        return not thread.is_alive()

    @Slot()
    def deliver(self, outcome: bool = True) -> None:
        """Re-emit, in the GUI thread, every message the worker has posted since the last call.

        ``outcome=False`` stops before the terminal message (kept for the next call), for callers
        that must not see the task end under their feet.
        """
        worker = self._worker
        while worker is not None and not self.is_done():
            if self._held is not None:
                message, self._held = self._held, None
            else:
                try:
                    message = worker.outbox.get_nowait()
                except queue.Empty:
                    return
            kind, payload = message
            if kind == "progress":
                self.progress.emit(payload)
            elif kind == "partial":
                self.partial.emit(payload)
            elif not outcome:
                self._held = message
                return
            else:
                self._set_terminal(kind, payload)

    def _join(self) -> None:
        """After the terminal message: the worker thread only has to return, so this wait is short."""
        self._poll.stop()
        self.join()
        if self._worker is not None:
            self.worker_thread_id = self._worker.thread_id
        self._thread = None
        self._worker = None

    def _set_terminal(self, state: str, payload: Any) -> None:
        if self.is_done():
            return
        self._join()
        self.state = state
        if state == "failed":
            self.error = payload
            self.failed.emit(payload)
        elif state == "finished":
            self.result = payload
            self.finished.emit(payload)
        else:
            self.result = payload
            self.cancelled.emit(payload)
        self.done.emit()


class TaskRunner(QObject):
    """Runs submitted tasks one at a time, in submission order (also: one database writer).

    ``busyChanged(bool)`` tells pages when to enable/disable their Start buttons; ``shutdown()``
    cancels everything and joins the thread (call it from ``closeEvent``).
    """

    busyChanged = Signal(bool)
    taskStarted = Signal(object)  # Task
    taskDone = Signal(object)  # Task

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._queue: deque[Task] = deque()
        self._current: Task | None = None
        self._tasks: set[Task] = set()  # keep Python references until done

    @property
    def current(self) -> Task | None:
        return self._current

    def is_busy(self) -> bool:
        return self._current is not None

    def pending(self) -> int:
        return len(self._queue)

    def active(self) -> list[Task]:
        """The running task, then the queued ones, in order (those not done)."""
        return [t for t in (self._current, *self._queue) if t is not None and not t.is_done()]

    def submit(
        self,
        fn: Callable[..., Any],
        *args: Any,
        name: str | None = None,
        token: CancelToken | None = None,
        progress_kw: str | None = "progress",
        cancel_kw: str | None = "cancel",
        **kwargs: Any,
    ) -> Task:
        """Queue ``fn(*args, progress=..., cancel=..., **kwargs)``; starts at once when idle.

        ``progress_kw``/``cancel_kw`` rename those keyword arguments for core functions that call them
        otherwise (e.g. ``cancel_kw="control"``), or drop them when None. ``token`` lets the caller keep
        the CancelToken (default: a new one, reachable as ``task.token``).

        Connecting to the returned Task's signals right after ``submit`` misses nothing but ``started``:
        the worker's signals are queued to the GUI thread and delivered on a later turn of its loop.
        """
        worker = Worker(fn, *args, token=token, progress_kw=progress_kw, cancel_kw=cancel_kw, **kwargs)
        task = Task(worker, name or getattr(fn, "__name__", "task"))
        task.done.connect(self._on_task_done)
        self._tasks.add(task)
        self._queue.append(task)
        if self._current is None:
            self._schedule_next(was_idle=True)
        return task

    def cancel_all(self) -> None:
        for task in list(self._queue):
            task.cancel()
        if self._current is not None:
            self._current.cancel()

    def shutdown(self, timeout_ms: int = 10_000) -> bool:
        """Cancel queued and running tasks and join the running thread; True if it stopped in time."""
        queued = list(self._queue)
        self._queue.clear()
        for task in queued:
            task.cancel()
        task = self._current
        if task is None:
            return True
        task.cancel()
        stopped = task.join(timeout_ms / 1000)
        if stopped:
            task.deliver()  # the worker's terminal message, now: the task ends and the runner is idle
        return stopped

    def _schedule_next(self, was_idle: bool) -> None:
        while self._queue:
            task = self._queue.popleft()
            if task.is_done():  # cancelled while queued
                continue
            self._current = task
            if was_idle:
                self.busyChanged.emit(True)
            task._start()
            self.taskStarted.emit(task)
            return

    @Slot()
    def _on_task_done(self) -> None:
        task = self.sender()
        if not isinstance(task, Task):
            return
        self._tasks.discard(task)
        if task is self._current:
            self._current = None
            self.taskDone.emit(task)
            self._schedule_next(was_idle=False)
            if self._current is None:
                self.busyChanged.emit(False)
        else:
            self.taskDone.emit(task)



class JobManager(QObject):
    """The app's background work in two queues that run beside each other.

    ``training``: training runs (started on the Train page or resumed on the Runs page), one at a time;
    every task submitted there is announced by ``trainingSubmitted`` so the Train page can show and
    control it wherever it was started. ``tasks``: everything else that writes the store (imports,
    generation, deletes, exports), one at a time. ``submit``/``is_busy``/``busyChanged``/``pending``/
    ``current`` speak of the task queue (the ``TaskRunner`` API); ``taskStarted``/``taskDone`` and
    ``running()`` cover both.
    """

    busyChanged = Signal(bool)  # the task queue
    trainingBusyChanged = Signal(bool)  # noqa: N815 - Qt naming
    taskStarted = Signal(object)  # Task, either queue
    taskDone = Signal(object)  # Task, either queue
    trainingSubmitted = Signal(object)  # noqa: N815 - Task, after it was queued (or started)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.training = TaskRunner(self)
        self.tasks = TaskRunner(self)
        for runner in (self.training, self.tasks):
            runner.taskStarted.connect(self.taskStarted)
            runner.taskDone.connect(self.taskDone)
        self.tasks.busyChanged.connect(self.busyChanged)
        self.training.busyChanged.connect(self.trainingBusyChanged)

    @property
    def current(self) -> Task | None:
        return self.tasks.current

    def is_busy(self) -> bool:
        return self.tasks.is_busy()

    def pending(self) -> int:
        return self.tasks.pending()

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Task:
        """Queue a task that is not training (``TaskRunner.submit`` arguments); runs beside training."""
        return self.tasks.submit(fn, *args, **kwargs)

    def submit_training(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Task:
        """Queue a training run (``TaskRunner.submit`` arguments) behind the runs already queued."""
        task = self.training.submit(fn, *args, **kwargs)
        self.trainingSubmitted.emit(task)
        return task

    def running(self) -> list[Task]:
        """Tasks running now, training first."""
        return [t for t in (self.training.current, self.tasks.current) if t is not None]

    def cancel_all(self) -> None:
        self.training.cancel_all()
        self.tasks.cancel_all()

    def shutdown(self, timeout_ms: int = 10_000) -> bool:
        """Cancel and join both queues (training first: it saves a checkpoint while the other stops)."""
        for task in self.running():
            task.cancel()  # both stop at once; each join below then waits for its own thread
        training = self.training.shutdown(timeout_ms)
        tasks = self.tasks.shutdown(timeout_ms)
        return training and tasks


def last_error_line(traceback_text: str) -> str:
    """The line of a failed task's traceback (``Task.failed``) a person reads: the exception and its message."""
    text = traceback_text.strip()
    return text.splitlines()[-1] if text else "unknown error"


def progress_fraction(event: object) -> float | None:
    """Best-effort fraction in [0, 1] from a progress event, for progress bars; None if unknown.

    Understands a number in [0, 1], a ``(done, total)`` pair, a ``(count, done, total)`` triple, and
    objects with ``fraction`` or ``done``/``total`` attributes (core event dataclasses).
    """
    done: object
    total: object
    if isinstance(event, bool):
        return None
    if isinstance(event, int | float):
        return float(event) if 0.0 <= event <= 1.0 else None
    if isinstance(event, tuple) and len(event) >= 2:
        done, total = event[-2], event[-1]  # convention: the last two numbers are (done, total)
    elif isinstance(event, tuple) and len(event) == 3:  # (count, done, total), e.g. (rows, bytes, total_bytes)
        _, done, total = event
    elif hasattr(event, "fraction"):
        value = event.fraction
        return float(value) if isinstance(value, int | float) else None
    elif hasattr(event, "done") and hasattr(event, "total"):
        done, total = event.done, event.total
    else:
        return None
    if isinstance(done, int | float) and isinstance(total, int | float) and total > 0:
        return min(1.0, max(0.0, float(done) / float(total)))
    return None
