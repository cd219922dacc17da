"""The settings the window remembers between runs (QSettings), read into and out of a session.

A person box belongs to one video, so it is never remembered: the app starts with the detector
(the one chosen last; a local model file is not remembered).
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QSettings

from posescope.core.session import Session
from posescope.core.session_types import (
    DETECTOR_NAMES,
    DEVICES,
    DisplaySettings,
    ModelSettings,
    RunnerSettings,
    SettingsError,
)

log = logging.getLogger(__name__)

MODEL_KEYS = ("device", "fp16", "flip", "compile", "backend", "focal")
RUNNER_KEYS = ("smoothing", "strength", "whole_frame")
DISPLAY_KEYS = ("show_labels", "show_boxes")


def _get(q: QSettings, key: str, default: object) -> object:
    value = q.value(f"settings/{key}", default)
    try:
        if isinstance(default, bool):
            return value if isinstance(value, bool) else str(value).lower() == "true"
        if isinstance(default, float):
            return float(value)  # type: ignore[arg-type]
        return str(value)
    except (TypeError, ValueError):
        return default


def load_settings(q: QSettings) -> tuple[ModelSettings, RunnerSettings, DisplaySettings]:
    """The remembered settings; a value that does not validate falls back to the default."""
    m, r, d = ModelSettings(), RunnerSettings(), DisplaySettings()
    model = ModelSettings(**{k: _get(q, k, getattr(m, k)) for k in MODEL_KEYS})  # type: ignore[arg-type]
    if model.device not in DEVICES:
        model = ModelSettings(**{**model.__dict__, "device": m.device})
    try:
        model = model.validated()
    except SettingsError:
        model = m
    runner = RunnerSettings(**{k: _get(q, k, getattr(r, k)) for k in RUNNER_KEYS})  # type: ignore[arg-type]
    detector = str(_get(q, "detector", ""))  # "" is the default detector
    if detector in DETECTOR_NAMES:
        runner = RunnerSettings(**{**runner.__dict__, "detector": detector})
    try:
        runner = runner.validated()
    except SettingsError:
        runner = r
    display = DisplaySettings(**{k: _get(q, k, getattr(d, k)) for k in DISPLAY_KEYS})  # type: ignore[arg-type]
    return model, runner, display


def save_settings(q: QSettings, session: Session) -> None:
    for key in MODEL_KEYS:
        q.setValue(f"settings/{key}", getattr(session.model_settings, key))
    for key in RUNNER_KEYS:
        q.setValue(f"settings/{key}", getattr(session.runner_settings, key))
    for key in DISPLAY_KEYS:
        q.setValue(f"settings/{key}", getattr(session.display, key))
    q.setValue("settings/detector", session.runner_settings.detector or "")
