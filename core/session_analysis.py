"""The session's analysis pass: one cache of poses per (source, runner), filled in frame order.

A part of `core.session.Session` (a mixin, so that session.py stays one concept a screen): when
a seekable source is open and a runner is installed, the first result of that runner (the frame
on screen, computed first) starts a pass (`analysis_requested`) that the controller runs in a
worker; the worker fills the request's `PoseCache` and reports progress, which comes back
through `analysis_progressed` (stale keys are dropped). A frame the pass has reached is
answered from the cache (`FrameRequest.poses`: decode only); a frame ahead of it is computed on
demand and kept as a preview. A new runner (a setting that changes results) or a new source
drops the cache whole (`analysis_stopped`) and the pass starts again.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from posescope.core.analysis import AnalysisProgress, PoseCache
from posescope.core.session_types import FrameResult, RunnerSettings

if TYPE_CHECKING:
    from posescope.core.pipeline import Estimator
    from posescope.core.session import SessionEvents
    from posescope.core.session_types import Model, SourceInfo
    from posescope.core.types import FramePoses

AnalysisKey = tuple[int, int]  # (source generation, runner generation)


@dataclass(frozen=True)
class AnalysisRequest:
    """Analyse source `spec` from frame 0 into `cache` with a fresh runner around `estimator`.

    `synchronous`: the pass detects people in its own thread, on the frame it estimates, so
    its results never depend on timing (a background detector's boxes would land at
    timing-dependent frames)."""

    key: AnalysisKey
    spec: str
    cache: PoseCache
    estimator: Estimator
    settings: RunnerSettings
    synchronous: bool = True
    estimator_b: Estimator | None = None  # A/B: B's network on A's boxes (both cached)


class SessionAnalysis:
    """The analysis state of a `Session` (fields set by `_init_analysis`)."""

    events: SessionEvents
    source: SourceInfo | None
    model: Model | None
    runner_settings: RunnerSettings
    shown: FrameResult | None
    requested: int | None

    def _init_analysis(self) -> None:
        self.analysis: PoseCache | None = None  # the cache of the current pass
        self.analysis_key: AnalysisKey | None = None
        self.analysis_progress = AnalysisProgress(0, None)
        self._analysis_wanted = False  # start a pass with the next current result
        self.analysis_failure: Exception | None = None  # why the last pass failed (retry)

    # ---------------------------------------------------------------- state

    def analysed_poses(self, index: int) -> FramePoses | None:
        """The pass's poses of frame `index` (None: not analysed yet, or no pass)."""
        return self.analysis.get(index) if self.analysis is not None else None

    def _current_key(self) -> AnalysisKey:
        return (self.source_generation, self.runner_generation)  # type: ignore[attr-defined]

    # ---------------------------------------------------------------- hooks (session.py)

    def _drop_analysis(self, restart: bool) -> None:
        """The source or the runner changed: the cache is stale (dropped whole); `restart`
        when a pass should start with the next result of the new runner."""
        had = self.analysis_key is not None
        self.analysis = None
        self.analysis_key = None
        self.analysis_progress = AnalysisProgress(0, None)
        self._analysis_wanted = restart
        self.analysis_failure = None
        if had:
            self.events.analysis_stopped.emit()
        self.events.analysis_progressed.emit(self.analysis_progress)

    def _after_result(self, result: FrameResult) -> None:
        """A result landed: keep a preview; start the pass after the first current one."""
        cache, key = self.analysis, self.analysis_key
        fresh = result.poses is not None and not result.analysed
        if fresh and cache is not None and key and result.model_generation == key[1]:
            cache.put_preview(result.poses)  # type: ignore[arg-type]
        if self._analysis_wanted and result.model_generation == self._current_key()[1]:
            self._start_analysis()

    def _after_read_error(self) -> None:
        """A frame could not be read (a damaged video, a seek past its real end) before any
        result started the pass: start it now; it reads from frame 0 and finds the real end."""
        if self._analysis_wanted and self.model is not None:
            self._start_analysis()

    def _start_analysis(self) -> None:
        self._analysis_wanted = False
        self.analysis_failure = None
        source, model = self.source, self.model
        if source is None or source.live or model is None or model.estimator.joint_set is None:
            return
        key = self._current_key()
        self.analysis = PoseCache(key, source.frame_count or None)
        self.analysis_key = key
        self.analysis_progress = self.analysis.progress()
        b = model.b.estimator if model.b is not None else None
        self.events.analysis_requested.emit(
            AnalysisRequest(
                key, source.spec, self.analysis, model.estimator, self.runner_settings,
                estimator_b=b,
            )
        )  # fmt: skip
        self.events.analysis_progressed.emit(self.analysis_progress)

    # ---------------------------------------------------------------- answers (controller)

    def analysis_progressed(self, key: AnalysisKey, progress: AnalysisProgress) -> bool:
        """The pass of `key` reached `progress` (False and ignored when that pass is stale).
        A damaged video whose decoding ended early gets its real frame count."""
        if key != self.analysis_key or self.analysis is None:
            return False
        self.analysis_progress = progress
        if progress.finished and self.source is not None:
            real = progress.done
            if real and real != self.source.frame_count:
                self._correct_frame_count(real)
        self.events.analysis_progressed.emit(progress)
        shown = self.shown
        if (
            shown is not None
            and not shown.analysed
            and shown.requested_index is not None
            and shown.requested_index < progress.done
            and not self.playing  # type: ignore[attr-defined]
            and not self._outstanding  # type: ignore[attr-defined]
            and self.requested == shown.requested_index
        ):
            self._request(shown.requested_index)  # type: ignore[attr-defined]  # preview -> pass
        return True

    def analysis_failed(self, key: AnalysisKey, error: Exception) -> bool:
        """The pass of `key` failed (False when stale): frames are computed on demand."""
        if key != self.analysis_key:
            return False
        self.analysis = None
        self.analysis_key = None
        self.analysis_failure = error
        self.events.analysis_error.emit(error)
        return True

    def retry_analysis(self) -> bool:
        """Start the failed pass again from frame 0 (the user asked); False when no pass
        failed, or the source or model it needs is gone."""
        if self.analysis_failure is None or self.analysis_key is not None:
            return False
        self._start_analysis()
        return self.analysis_key is not None

    def _correct_frame_count(self, real: int) -> None:
        assert self.source is not None
        claimed = self.source.frame_count
        self.source = replace(self.source, frame_count=real)
        self.events.frame_count_corrected.emit(claimed, real)
        if self.requested is not None and self.requested >= real:
            self.seek(real - 1)  # type: ignore[attr-defined]


__all__ = ["AnalysisKey", "AnalysisRequest", "SessionAnalysis"]
