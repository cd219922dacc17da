"""The words the user reads: typed outcomes and exceptions (carrying their data) into text.

Errors are told apart by type (`NeedsTrustError.globals`, `NotACheckpointError.looks_like`),
never by comparing their strings. `bind_messages` subscribes to a session's events and hands
each message to the window's banner.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from posescope.core.session import Session
from posescope.core.session_types import (
    BuildFailed,
    BuildRequest,
    CheckpointChoice,
    FrameResult,
    Model,
    OpenFailed,
    short_name,
)

HINT_NO_MODEL = (
    "<div style='font-size:20pt; font-weight:600'>Drop a checkpoint here</div>"
    "<div style='margin-top:10px'>ConvNeXtPose XS / S / M / L, or 3DMPPE PoseNet "
    "(a RootNet beside it gives root depth)</div>"
    "<div style='margin-top:6px; color:#8b95ab'>.pth · .pth.tar · .tar · .safetensors · "
    "or a video, image or folder</div>"
)
HINT_NO_SOURCE = (
    "<div style='font-size:18pt; font-weight:600'>Now drop a video or an image</div>"
    "<div style='margin-top:10px'>or open a folder, or pick a camera in File ▸ Camera</div>"
)


@dataclass(frozen=True)
class Message:
    """One banner line: level is 'info' | 'success' | 'warning' | 'error'."""

    text: str
    level: str = "error"
    details: str | None = None
    trust_path: str | None = None  # offer "Trust and open" for this file
    actions: Sequence[tuple[str, Callable[[], None]]] = field(default=())


def describe_error(exc: BaseException) -> str:
    """One line for the banner: the exception's own message, or its type when it has none."""
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0] if len(text) > 400 else text


def _name(path: str) -> str:
    return os.path.basename(path.rstrip("/")) or path


def open_failure(failed: OpenFailed, still_using: str | None) -> Message:
    """Why a dropped file did not open as a checkpoint."""
    from posescope.core.checkpoint import NeedsTrustError, NotACheckpointError
    from posescope.core.families.base import IdentificationError
    from posescope.core.identify import NotAPoseCheckpointError

    name = _name(failed.path)
    exc = failed.error
    if isinstance(exc, NeedsTrustError):
        names = list(exc.globals)
        shown = ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")
        return Message(
            f"{name} wants to import {shown or 'code'} while loading. Opening it runs code "
            "from the file: continue only if you trust where it came from.",
            "warning",
            details=str(exc),
            trust_path=failed.path,
        )
    reason = describe_error(exc)
    looks: str | None = None
    if isinstance(exc, NotACheckpointError | NotAPoseCheckpointError | IdentificationError):
        looks = exc.looks_like
    if isinstance(exc, NotACheckpointError | NotAPoseCheckpointError):
        what = "a checkpoint" if isinstance(exc, NotACheckpointError) else "a pose checkpoint"
        # the engine often words the reason itself as "not a …, because …"
        if reason.lower().startswith("not a"):
            text = f"{name} is {reason}"
        else:
            text = f"{name} is not {what}: {reason}"
    else:
        text = f"Could not open {name}: {reason}"
    if looks and not _says(text, looks):
        text += f" (looks like {looks})"
    if still_using is not None:
        text += f" — still using {still_using}"
    return Message(text, "error")


def _says(text: str, looks: str) -> bool:
    """Whether `text` already says what the file looks like ('the file is empty' says
    'empty file'): then '(looks like …)' would only repeat it."""
    words = text.lower().replace(":", " ").replace(",", " ").split()
    return looks.lower() in text.lower() or all(w in words for w in looks.lower().split())


def identify_crashed(paths: Sequence[str], exc: BaseException) -> Message:
    return Message(f"Could not read {', '.join(paths)}: {describe_error(exc)}")


def checkpoints_chosen(choice: CheckpointChoice, base_loaded: bool) -> list[Message]:
    """What the user should know about which dropped checkpoints are used."""
    out: list[Message] = []
    if choice.rootnet is not None and choice.rootnets_dropped > 1:
        out.append(Message(f"Several RootNets dropped; using {_name(choice.rootnet.path)}", "info"))
    if choice.pose is not None and choice.compare is not None:  # A/B (core/session_compare)
        a, b = choice.pose, choice.compare
        used = f"comparing A {_name(a.path)} with B {_name(b.path)}"
        out.append(Message(f"{used[0].upper()}{used[1:]} on the same frames and boxes", "info"))
        for other in choice.passed_over:
            out.append(
                Message(
                    f"{_name(other.path)} is {other.ident.title}; {used} (the last two)", "info"
                )
            )
    elif choice.pose is not None:
        for other in choice.passed_over:
            out.append(
                Message(
                    f"{_name(other.path)} is {other.ident.title}; loaded "
                    f"{_name(choice.pose.path)} (the last one dropped)",
                    "info",
                )
            )
    elif choice.rootnet is not None and not base_loaded:
        out.append(
            Message(
                f"RootNet {_name(choice.rootnet.path)} is ready for root depth: "
                "now drop a pose checkpoint",
                "info",
            )
        )
    return out


def build_started(request: BuildRequest) -> list[Message]:
    """Warnings about what is being built (an override that did not fit, a name that lies)."""
    out = [Message(note, "warning") for note in request.notes]
    out += [
        Message(f"{_name(request.opened.path)}: {w}", "warning") for w in request.ident.warnings
    ]
    return out


def model_running(model: Model) -> list[Message]:
    out = [
        Message(
            (f"A {model.ident.title} and B {model.b.ident.title}" if model.b else model.ident.title)
            + f" running on {model.estimator.device}"
            + (" with RootNet root depth" if model.rootnet else ""),
            "success",
        )
    ]
    note = getattr(model.estimator.model, "backend_note", None)
    if note:
        out.append(Message(note[0].upper() + note[1:], "warning"))
    if model.estimator.model.compile_error:
        out.append(
            Message(
                f"Could not compile ({model.estimator.model.compile_error}); running uncompiled",
                "warning",
            )
        )
    return out


def build_failed(failed: BuildFailed) -> Message:
    kept = f" — still using {failed.still_using}" if failed.still_using else ""
    return Message(
        f"Could not build {_name(failed.opened.path)}: {describe_error(failed.error)}{kept}"
    )


def runner_failed(exc: BaseException) -> Message:
    return Message(f"Could not apply the settings: {describe_error(exc)}")


def source_open_failed(spec: str, exc: BaseException, still_showing: str | None) -> Message:
    kept = f" — still showing {still_showing}" if still_showing else ""
    return Message(f"Could not open {short_name(spec)}: {describe_error(exc)}{kept}")


def source_stopped(kind: str, why: str, name: str, is_camera: bool) -> Message:
    """A source that stopped giving frames: a read error, a live source that ended or failed."""
    if kind == "read error":
        return Message(f"Reading the video failed: {why}")
    if kind == "capture error":
        return Message(f"The camera stopped: {why}")
    if is_camera:
        return Message(
            f"{name.capitalize()} stopped: {why}. Was it unplugged? When it is "
            "back, open it again from File ▸ Camera.",
            "warning",
        )
    return Message(f"The {name} ended: {why}", "info")


def frame_failed(result: FrameResult) -> Message:
    return Message(f"The model failed on frame {result.frame.index}: {result.error}")


def export_done(summary: dict[str, object]) -> Message:
    written = summary.get("written", [])
    names = (
        ", ".join(os.path.basename(str(p)) for p in written) if isinstance(written, list) else ""
    )
    return Message(f"Exported {summary.get('frames', 0)} frames: {names}", "success")


def bind_messages(
    session: Session,
    show: Callable[[Message], object],
    open_trusted: Callable[[str], None],
) -> None:
    """Show the messages a session's events call for; `open_trusted(path)` is what the
    "Trust and open" button does."""
    ev = session.events

    def failed(item: OpenFailed, still: str | None) -> None:
        msg = open_failure(item, still)
        if msg.trust_path is not None:
            path = msg.trust_path
            msg = Message(
                msg.text,
                msg.level,
                msg.details,
                path,
                [("Trust and open", lambda: open_trusted(path))],
            )
        show(msg)

    def shown_all(messages: list[Message]) -> None:
        for m in messages:
            show(m)

    ev.open_failed.connect(failed)
    ev.identify_failed.connect(lambda paths, exc: show(identify_crashed(paths, exc)))
    ev.checkpoints_chosen.connect(
        lambda choice: shown_all(checkpoints_chosen(choice, session.base is not None))
    )
    ev.build_requested.connect(lambda request: shown_all(build_started(request)))
    ev.model_changed.connect(lambda model: shown_all(model_running(model)))
    ev.build_failed.connect(lambda f: show(build_failed(f)))
    ev.runner_failed.connect(lambda exc: show(runner_failed(exc)))
    ev.source_open_failed.connect(
        lambda spec, exc, still: show(source_open_failed(spec, exc, still))
    )
    ev.frame_failed.connect(lambda result: show(frame_failed(result)))

    def stopped(kind: str, why: str) -> None:
        src = session.source
        name = src.name if src is not None else "source"
        show(source_stopped(kind, why, name, src is not None and src.is_camera))

    ev.source_stopped.connect(stopped)


def analysis_failure(exc: BaseException, done: int, retry: Callable[[], object]) -> Message:
    """The analysis pass failed: what failed, how far it got, what still works, and Retry."""
    where = f" after {done} frame{'s' if done != 1 else ''}" if done else ""
    return Message(
        f"Analysis failed{where}: {describe_error(exc)}. Frames are computed when shown; "
        "export needs a whole pass: Retry (or Playback ▸ Retry analysis)",
        "warning",
        actions=(("Retry", retry),),
    )
