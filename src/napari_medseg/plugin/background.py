"""One lifecycle for the widgets' long work: a worker thread, napari's progress bar, Cancel.

:class:`BackgroundWork` starts a function (or generator) in a napari worker with a
progress bar, disables the widget's run buttons and enables its Cancel button while it
runs, sets a cancel event the work polls, reports errors in the widget's status line,
and hands the result to the widget only if it was not cancelled. Results that change a
Labels layer are merged into the layer's *current* data when they arrive
(:func:`napari_medseg.plugin.layer_edit.merge_into_layer`), so what the user painted
meanwhile is kept.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from magicgui.widgets import Label, PushButton
from napari.qt.threading import create_worker
from napari.utils.notifications import show_warning

from napari_medseg.runtime import Cancelled

__all__ = ["BackgroundWork", "advance_progress"]


def advance_progress(pbar, done: int, total: int) -> None:
    """Move napari's progress bar to ``done`` of ``total`` (known only once work starts)."""
    pbar.total = total
    pbar.update(done - pbar.n)


class BackgroundWork:
    """The running job of one widget.

    Parameters
    ----------
    run_buttons : sequence of PushButton
        Disabled while a job runs.
    cancel_button : PushButton
        Enabled while a job runs; clicking it cancels.
    status : Label
        The widget's status line (errors and "Cancelled" are shown there).
    cancelled_message : str
        What the status line says after Cancel.
    """

    def __init__(self, run_buttons: Sequence[PushButton], cancel_button: PushButton,
                 status: Label, cancelled_message: str = "Cancelled; nothing was changed."):
        self._run_buttons = list(run_buttons)
        self._cancel_button = cancel_button
        self.status = status
        self._cancelled_message = cancelled_message
        self.cancel_event = threading.Event()
        self.worker = None
        self._stops_itself = False
        cancel_button.enabled = False
        cancel_button.changed.connect(self.cancel)

    @property
    def running(self) -> bool:
        return self.worker is not None

    def start(self, fn: Callable, *args, desc: str, returned: Callable[[Any], None],
              progress: Callable[[Any], None] | None = None,
              finished: Callable[[], None] | None = None, total: int = 0,
              stops_itself: bool = False, **kwargs):
        """Run ``fn(*args, **kwargs)`` in a worker; ``returned(result)`` unless cancelled.

        ``progress(step)`` gets what a generator ``fn`` yields (default: ``(done,
        total)`` steps move the progress bar). ``stops_itself``: ``fn`` watches
        :attr:`cancel_event` and stops by raising (running its own clean-up), so Cancel
        does not abandon it at a step. Returns the worker, or None (with a warning)
        while another job runs.
        """
        if self.running:
            show_warning("Still working on the last request; wait for it or cancel it.")
            return None
        self.cancel_event.clear()
        # errors go to `_failed` only (create_worker would re-raise them otherwise)
        worker = create_worker(fn, *args, **kwargs, _progress={"total": total, "desc": desc},
                               _connect={"errored": lambda err: self._failed(desc, err)},
                               _start_thread=False)
        if hasattr(worker, "yielded"):  # a generator: its steps are the progress
            worker.yielded.connect(progress or (lambda step: advance_progress(worker.pbar,
                                                                              *step)))
        worker.returned.connect(lambda result: None if self.cancel_event.is_set()
                                else returned(result))
        worker.finished.connect(lambda: self._finished(finished))
        self.worker = worker
        self._stops_itself = stops_itself
        self._set_running(True)
        self.status.value = f"{desc}..."
        worker.start()
        return worker

    def cancel(self) -> None:
        """Stop the running job; its result is dropped."""
        if self.worker is not None:
            self.cancel_event.set()
            if not self._stops_itself:
                self.worker.quit()
            self.status.value = self._cancelled_message

    def _failed(self, desc: str, err: Exception) -> None:
        if isinstance(err, Cancelled) or self.cancel_event.is_set():
            return
        self.status.value = f"{desc} failed: {err}"
        show_warning(f"{desc} failed: {err}")

    def _finished(self, finished: Callable[[], None] | None) -> None:
        self.worker = None
        self._set_running(False)
        if finished is not None:
            finished()

    def _set_running(self, running: bool) -> None:
        for button in self._run_buttons:
            button.enabled = not running
        self._cancel_button.enabled = running
