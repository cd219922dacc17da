"""The words about finding people: missing detector weights (where the file goes, from where,
how to get it), a detector refused, a download that failed or was cancelled. Each comes with
the buttons that fix it (Download, Choose file…). Bound to `session.people`'s events."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from posescope.core.session import Session
from posescope.core.session_people import DetectorStatus, Download
from posescope.gui.messages import Message, describe_error

DETECTOR_TITLES = {
    "rtmdet": "RTMDet-nano",
    "yolox": "YOLOX-tiny",
    "hog": "the HOG detector",
    "none": "no detector",
}
WHOLE_FRAME = "going on with the whole frame as the person box"


def title(name: str) -> str:
    return DETECTOR_TITLES.get(name, name)


def _problem_text(status: DetectorStatus) -> str:
    from posescope.core.detection.base import WeightsMissingError
    from posescope.core.detection.registry import missing_weights_hint

    exc = status.problem
    if isinstance(exc, WeightsMissingError):
        return missing_weights_hint(exc)
    return f"{title(status.wanted)}: {describe_error(exc)}" if exc else ""


def detector_problem(
    status: DetectorStatus,
    download: Callable[[str, bool], None],
    choose_file: Callable[[str], None],
    refused: bool = False,
) -> Message | None:
    """The banner line for a detector that does not run (None when it does). The default's
    missing weights are a warning (the app goes on with the whole frame); a detector asked for
    by name is an error: refused (the previous one keeps running) or, on a first build, the
    whole frame instead."""
    if status.problem is None:
        return None
    name = status.wanted
    text = _problem_text(status)
    text = text[0].upper() + text[1:]
    if refused:
        text += " — still finding people as before (Download, or choose the file)"
    elif not status.explicit or status.missing_weights is not None or status.running is None:
        text += f" — {WHOLE_FRAME}"
    actions: list[tuple[str, Callable[[], None]]] = []
    if status.missing_weights is not None:
        actions.append(("Download", lambda: download(name, status.explicit)))
    if name in ("rtmdet", "yolox"):
        actions.append(("Choose file…", lambda: choose_file(name)))
    level = "error" if status.explicit else "warning"
    return Message(text, level, details=str(status.problem), actions=actions)


def download_message(d: Download, retry: Callable[[str, bool], None]) -> Message | None:
    """What a finished download says (progress is the download bar's)."""
    from posescope.core.detection.weights import cached_path

    if d.state == "done":
        return Message(f"{title(d.name)} weights saved to {cached_path(d.name)}", "success")
    if d.state == "cancelled":
        return Message(f"Download of {title(d.name)} cancelled; nothing was kept", "info")
    if d.state == "failed":
        reason = describe_error(d.error) if d.error is not None else "unknown error"
        return Message(
            f"Could not download {title(d.name)} weights: {reason}. Put its end2end.onnx at "
            f"{cached_path(d.name)}, or choose a local ONNX file (Settings ▸ People, "
            "or --detector-model FILE)",
            "error",
            actions=[("Retry", lambda: retry(d.name, d.use_when_done))],
        )
    return None


def bind_people_messages(
    session: Session,
    show: Callable[[Message], object],
    choose_file: Callable[[str], None],
) -> None:
    """Show what `session.people` reports; a problem once per change (a rebuild for another
    setting does not bring back a dismissed warning); a fixed problem's line is closed."""
    people = session.people
    shown: dict[str, object] = {"key": None, "row": None}

    def download(name: str, use_when_done: bool) -> None:
        people.request_download(name, use_when_done)

    def close_row() -> None:
        row = shown["row"]
        close = getattr(row, "close_message", None)
        if close is not None:
            with contextlib.suppress(RuntimeError):  # the row was dismissed and deleted
                close()
        shown["row"] = None

    def status(st: DetectorStatus) -> None:
        key = (st.wanted, st.explicit, str(st.problem)) if st.problem is not None else None
        if key is None:
            close_row()
        elif key != shown["key"]:
            msg = detector_problem(st, download, choose_file)
            if msg is not None:
                close_row()
                shown["row"] = show(msg)
        shown["key"] = key

    def refused(st: DetectorStatus) -> None:
        msg = detector_problem(st, download, choose_file, refused=True)
        if msg is not None:
            show(msg)

    def downloaded(d: Download) -> None:
        if d.state == "running" and d.done == 0:
            close_row()  # the download bar takes over from the "no weights" line
        msg = download_message(d, download)
        if msg is not None:
            if d.state == "done":
                close_row()
                shown["key"] = None
            show(msg)

    people.events.detector_status.connect(status)
    people.events.detector_refused.connect(refused)
    people.events.download_changed.connect(downloaded)
