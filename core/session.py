"""The app's state, without Qt: checkpoints, settings, the source, frames, playback, generations.

Like napari's `ViewerModel` / `Dims`: methods validate their input, change the state and emit
events (psygnal); views subscribe and never hold the truth. The session never starts a thread:
what needs the engine is emitted as a request (`identify_requested`, `build_requested`,
`runner_requested`, `source_requested`, `frame_requested`) that the app's controller runs in a
worker, and the answers come back through methods (`checkpoints_opened`, `model_built`,
`install_runner`, `source_opened`, `apply_result`).

Generations make "latest wins" safe: a build, a runner or a frame that belongs to a checkpoint,
setting or source that has since been replaced is dropped when it arrives.

The analysis pass (core/session_analysis.py): `_request` answers a frame the pass has reached
from its cache (decode only), `apply_result` starts the pass after the first current result,
and `install_runner` / `source_opened` (new generations) drop the cache.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace

from psygnal import Signal, SignalGroup

from posescope.core.playback import Playback, PlaybackMode
from posescope.core.selection import Selection
from posescope.core.session_analysis import SessionAnalysis
from posescope.core.session_compare import Comparison
from posescope.core.session_people import People
from posescope.core.session_types import (
    BuildFailed,
    BuildRequest,
    CheckpointChoice,
    DisplaySettings,
    FrameRequest,
    FrameResult,
    Model,
    ModelSettings,
    Opened,
    OpenFailed,
    RunnerInstalled,
    RunnerRequest,
    RunnerSettings,
    SettingsError,
    SourceInfo,
    check_box,
)
from posescope.core.variants import JointSet

log = logging.getLogger(__name__)


class SessionEvents(SignalGroup):
    """Everything a view or the controller can subscribe to."""

    # requests for the controller (engine work in workers)
    identify_requested = Signal(object, bool)  # paths, trust
    build_requested = Signal(object)  # BuildRequest
    runner_requested = Signal(object)  # RunnerRequest
    runner_installed = Signal(object)  # RunnerInstalled
    source_requested = Signal(str)  # spec
    frame_requested = Signal(object)  # FrameRequest
    rebuild_wanted = Signal()  # a model setting changed: rebuild (the controller debounces)
    # state changes
    identifying = Signal(object)  # paths being read
    rootnet_changed = Signal(object)  # Opened
    model_changed = Signal(object)  # Model now running
    model_settings_changed = Signal(object)  # ModelSettings
    runner_settings_changed = Signal(object)  # RunnerSettings
    display_changed = Signal(object)  # DisplaySettings
    source_changed = Signal(object)  # SourceInfo
    seeked = Signal(int)  # a frame chosen by a seek (shown on the timeline at once)
    frame_shown = Signal(object)  # FrameResult
    playing_changed = Signal(bool)
    speed_changed = Signal(float)
    # outcomes worth telling the user (gui/messages.py words them)
    checkpoints_chosen = Signal(object)  # CheckpointChoice
    open_failed = Signal(object, object)  # OpenFailed, title of the model still running or None
    identify_failed = Signal(object, object)  # paths, exception: the task itself failed
    checkpoint_restored = Signal()  # a load failed: show what runs again
    build_failed = Signal(object)  # BuildFailed
    runner_failed = Signal(object)  # exception
    source_open_failed = Signal(str, object, object)  # spec, exception, name still shown or None
    source_stopped = Signal(str, str)  # kind ('read error' | 'ended' | 'capture error'), why
    frame_failed = Signal(object)  # FrameResult whose model failed (once per runner)
    # the analysis pass (core/session_analysis.py)
    analysis_requested = Signal(object)  # AnalysisRequest: run this pass in a worker
    analysis_stopped = Signal()  # the running pass is stale: stop it
    analysis_progressed = Signal(object)  # AnalysisProgress of the current pass
    analysis_error = Signal(object)  # exception: the pass failed (frames computed on demand)
    frame_count_corrected = Signal(int, int)  # claimed, real: a damaged video ended early
    playback_mode_changed = Signal(object)  # PlaybackMode


class Session(SessionAnalysis):
    """The state of one PoseScope window. Call from one thread (the GUI thread)."""

    def __init__(
        self,
        model_settings: ModelSettings | None = None,
        runner_settings: RunnerSettings | None = None,
        display: DisplaySettings | None = None,
    ) -> None:
        self.events = SessionEvents()
        self.model_settings = (model_settings or ModelSettings()).validated()
        self.runner_settings = (runner_settings or RunnerSettings()).validated()
        self.display = display or DisplaySettings()
        self.base: Opened | None = None  # the pose checkpoint being (or last) loaded
        self.rootnet: Opened | None = None
        self.model: Model | None = None  # the model running now
        self.source: SourceInfo | None = None
        self.requested: int | None = None  # the frame asked for last
        self.shown: FrameResult | None = None  # the frame on screen
        self.pending_seek: int | None = None  # the frame to show when the next source opens
        self.playback = Playback()
        self.selection = Selection()  # who is looked at closer, root trails (core/selection)
        self._model_gen = 0
        self._runner_gen = 0
        self._source_gen = 0
        self._outstanding = False  # a frame request has no result yet
        self._joint_sets: dict[int, JointSet | None] = {0: None}
        self._last_error_gen = -1
        self._init_analysis()
        # people finding: detector status, weights download, person box undo (session_people)
        self.people = People(self)
        self.compare = Comparison(self)  # A/B: two networks compared (core/session_compare)

    # ---------------------------------------------------------------- read-only state

    @property
    def model_generation(self) -> int:
        return self._model_gen

    @property
    def runner_generation(self) -> int:
        return self._runner_gen

    @property
    def source_generation(self) -> int:
        return self._source_gen

    @property
    def playing(self) -> bool:
        return self.playback.playing

    @property
    def live(self) -> bool:
        return self.source is not None and self.source.live

    @property
    def seekable(self) -> bool:
        return self.source is not None and not self.source.live

    @property
    def frame_count(self) -> int:
        return self.source.frame_count if self.source is not None else 0

    @property
    def shown_index(self) -> int | None:
        return self.shown.frame.index if self.shown is not None else None

    def is_current(self, result: FrameResult | None) -> bool:
        """True when `result` carries poses of the runner that runs now."""
        return (
            result is not None
            and result.poses is not None
            and result.model_generation == self._runner_gen
        )

    def joint_set_for(self, result: FrameResult) -> JointSet | None:
        """The joint set of the model that computed `result`."""
        return self._joint_sets.get(result.model_generation)

    # ---------------------------------------------------------------- checkpoints

    def open_checkpoints(self, paths: Sequence[str], trust: bool = False) -> None:
        """Ask for `paths` to be opened and identified (answer: `checkpoints_opened`)."""
        paths = [str(p) for p in paths]
        if not paths:
            return
        self.events.identifying.emit(paths)
        self.events.identify_requested.emit(paths, bool(trust))

    @staticmethod
    def choose_checkpoints(opened: Sequence[Opened]) -> CheckpointChoice:
        """Of several checkpoints dropped together: two pose networks are compared (A, B in
        the order dropped; of more than two, the last two, the others named as passed over);
        one runs alone; the last RootNet gives root depth beside them."""
        poses = [o for o in opened if o.ident.family != "rootnet"]
        roots = [o for o in opened if o.ident.family == "rootnet"]
        pair = len(poses) >= 2
        return CheckpointChoice(
            pose=(poses[-2] if pair else poses[-1]) if poses else None,
            rootnet=roots[-1] if roots else None,
            passed_over=tuple(poses[:-2] if pair else poses[:-1]),
            rootnets_dropped=len(roots),
            compare=poses[-1] if pair else None,
        )

    def checkpoints_opened(self, results: Sequence[Opened | OpenFailed]) -> CheckpointChoice:
        """Use what opened (see `choose_checkpoints`), report what did not."""
        still = self.model.ident.title if self.model is not None else None
        for r in results:
            if isinstance(r, OpenFailed):
                self.events.open_failed.emit(r, still)
        choice = self.choose_checkpoints([r for r in results if isinstance(r, Opened)])
        choice = self.compare.resolve(choice)  # "Compare with…": the new one is B
        self.events.checkpoints_chosen.emit(choice)
        if choice.rootnet is not None:
            self.rootnet = choice.rootnet
            self.events.rootnet_changed.emit(choice.rootnet)
        if choice.pose is not None:
            self.compare.set_pair(choice.pose, choice.compare)  # one network: not comparing
            # what belongs to the file before: its upsampling override; and its input scale,
            # a property of each file (the first checkpoint keeps one given at start-up)
            fresh = replace(self.model_settings, upsample=None)
            if self.base is not None:
                fresh = replace(fresh, input_scale="auto")
            if fresh.input_scale != self.model_settings.input_scale:
                self.model_settings = fresh
                self.events.model_settings_changed.emit(fresh)
            self.model_settings = fresh
            self.load(choice.pose)
        elif choice.rootnet is not None and self.base is not None:
            self.load(self.base)  # rebuild with the RootNet beside it
        else:
            self.events.checkpoint_restored.emit()
        return choice

    def identify_crashed(self, paths: Sequence[str], error: BaseException) -> None:
        """The identify task itself failed: show what runs again, and why."""
        self.events.checkpoint_restored.emit()
        self.events.identify_failed.emit(list(paths), error)

    def load(self, opened: Opened) -> BuildRequest:
        """Build `opened` with the current settings (a newer load replaces this one)."""
        self.base = opened
        self._model_gen += 1
        settings = self.model_settings
        ident = opened.ident
        notes: list[str] = []
        if settings.upsample is not None and ident.arch is not None:
            try:
                ident = ident.with_arch(ident.arch.with_upsample(settings.upsample))
            except ValueError as exc:
                notes.append(str(exc))
                settings = self.model_settings = replace(settings, upsample=None)
                ident = opened.ident
        request = BuildRequest(
            self._model_gen,
            opened,
            ident,
            settings,
            self.rootnet,
            self.runner_settings,
            tuple(notes),
            self.compare.b,
        )
        self.events.build_requested.emit(request)
        return request

    def reload(self) -> BuildRequest | None:
        """Rebuild the last checkpoint (after a model setting changed)."""
        return self.load(self.base) if self.base is not None else None

    def model_built(self, generation: int, model: Model) -> bool:
        """A build finished; False (and ignored) when a newer one was asked for since."""
        if generation != self._model_gen:
            return False
        self.model = model
        self.events.model_changed.emit(model)
        return True

    def model_failed(self, generation: int, opened: Opened, error: Exception) -> bool:
        """A build failed: the running model (if any) stays, its settings shown again."""
        if generation != self._model_gen:
            return False
        model = self.model
        self.base = model.opened() if model is not None else None
        if model is not None:
            self.model_settings = model.settings
            self.events.model_settings_changed.emit(self.model_settings)
        self.events.checkpoint_restored.emit()
        self.events.build_failed.emit(
            BuildFailed(opened, error, model.ident.title if model else None)
        )
        return True

    # ---------------------------------------------------------------- settings

    def set_model_settings(self, **changes: object) -> ModelSettings:
        """Change device / fp16 / flip / focal / compile; a rebuild is wanted (debounced)."""
        if "upsample" in changes:
            raise SettingsError("use set_upsample for the upsampling override")
        new = replace(self.model_settings, **changes).validated()  # type: ignore[arg-type]
        if new == self.model_settings:
            return new
        self.model_settings = new
        self.events.model_settings_changed.emit(new)
        if self.base is not None:
            self.events.rebuild_wanted.emit()
        return new

    def set_upsample(self, upsample: Sequence[bool] | None) -> None:
        """Override the upsampling stages (None: as the file says) and rebuild at once."""
        value = tuple(bool(v) for v in upsample) if upsample is not None else None
        base = self.base
        if base is not None and base.ident.arch is not None and value == base.ident.arch.upsample:
            value = None
        self.model_settings = replace(self.model_settings, upsample=value)
        self.events.model_settings_changed.emit(self.model_settings)
        if base is not None and base.ident.arch is not None:
            self.load(base)

    def set_runner_settings(self, **changes: object) -> RunnerSettings:
        """Change smoothing / strength / use_box / box / detector / detector_model /
        whole_frame; the runner is rebuilt."""
        new = replace(self.runner_settings, **changes).validated()  # type: ignore[arg-type]
        if new.use_box and new.box is None:
            new = replace(new, box=self.default_box())
        old = self.runner_settings
        if new == old:
            return new
        self.runner_settings = new
        self.events.runner_settings_changed.emit(new)
        if new.runner_key() != old.runner_key():
            self._rebuild_runner()
        return new

    def set_box(self, box: Sequence[float] | None) -> None:
        """The person box (x, y, w, h in image pixels) moved or was drawn."""
        self.set_runner_settings(box=check_box(box))

    def use_person_box(self, box: Sequence[float]) -> None:
        """Estimate in this box instead of detecting people."""
        self.set_runner_settings(box=check_box(box), use_box=True)

    def reset_box(self) -> None:
        box = self.default_box()
        if box is not None:
            self.set_runner_settings(box=box)

    def default_box(self) -> tuple[float, float, float, float] | None:
        """A box over the middle of the frame, to start from (None before a frame is known)."""
        if self.shown is not None:
            h, w = self.shown.frame.image.shape[:2]
        elif self.source is not None and self.source.width and self.source.height:
            h, w = self.source.height, self.source.width
        else:
            return None
        return (w * 0.25, h * 0.1, w * 0.5, h * 0.8)

    def set_display(self, **changes: object) -> None:
        new = replace(self.display, **changes)  # type: ignore[arg-type]
        if new != self.display:
            self.display = new
            self.events.display_changed.emit(new)

    def rebuild_runner(self) -> None:
        """Build the runner again with the same settings (a detector's weights arrived)."""
        self._rebuild_runner()

    def _rebuild_runner(self) -> None:
        if self.model is not None:
            b = self.model.b.estimator if self.model.b is not None else None
            self.events.runner_requested.emit(
                RunnerRequest(self._model_gen, self.model.estimator, self.runner_settings, b)
            )

    def install_runner(self, model_generation: int, runner: object) -> bool:
        """A runner for model generation `model_generation` is ready: compute with it from now
        on and recompute the frame on screen. False when that model was replaced."""
        if model_generation != self._model_gen or self.model is None:
            return False
        self._runner_gen += 1
        self._drop_analysis(restart=self.seekable)
        joint_set = self.model.estimator.joint_set
        self._joint_sets[self._runner_gen] = joint_set
        self.events.runner_installed.emit(
            RunnerInstalled(runner, self._runner_gen, joint_set)  # type: ignore[arg-type]
        )
        self.selection.clear()  # new tracks: old ids and trails no longer apply
        self.refresh()
        return True

    def runner_build_failed(self, error: Exception) -> None:
        self.events.runner_failed.emit(error)

    # ---------------------------------------------------------------- source

    def open_source(self, spec: str, start_frame: int | None = None) -> None:
        """Ask for a video / image / folder, 'camera:N' or 'replay:PATH' to be opened."""
        if start_frame is not None:
            self.pending_seek = max(0, int(start_frame))
        self.events.source_requested.emit(str(spec))

    def source_opened(self, info: SourceInfo) -> int:
        """The source opened: it replaces the old one. Returns its generation; the controller
        hands it to the workers, then calls `start_source`."""
        self.pause()
        self._source_gen += 1
        self.source = info
        self.playback.fps = info.fps
        self.shown = None
        self.requested = None
        self._outstanding = False
        self.selection.clear()
        self._drop_analysis(restart=not info.live)
        self.events.source_changed.emit(info)
        return self._source_gen

    def start_source(self) -> None:
        """Show the first frame (or the pending seek); a live source plays."""
        if self.source is None:
            return
        if self.source.live:
            self._set_playing(True)
            return
        start, self.pending_seek = self.pending_seek or 0, None
        self._request(start, reset=True)

    def source_open_failed(self, spec: str, error: Exception) -> None:
        still = self.source.name if self.source is not None else None
        self.events.source_open_failed.emit(spec, error, still)

    def source_failed(self, generation: int, why: str) -> bool:
        """Reading a frame of source `generation` failed: pause (False if it is gone)."""
        if generation != self._source_gen:
            return False
        self.pause()
        self._outstanding = False
        self.events.source_stopped.emit("read error", why)
        self._after_read_error()  # a pass not started yet starts anyway (session_analysis)
        return True

    def live_stopped(self, generation: int, why: str, error: bool = False) -> bool:
        """A live source ended (`error`: its reader failed)."""
        if generation != self._source_gen:
            return False
        self._set_playing(False)
        self.events.source_stopped.emit("capture error" if error else "ended", why)
        return True

    # ---------------------------------------------------------------- frames

    def seek_when_open(self, frame: int) -> None:
        """Show frame `frame` of the next source opened (or of the current one)."""
        if self.seekable:
            self.seek(frame)
        else:
            self.pending_seek = max(0, int(frame))

    def seek(self, index: int, from_timeline: bool = False) -> None:
        """Show frame `index` (clamped), paused."""
        self.pause()
        if not self.seekable:
            return
        index = self._clamp(index)
        if not from_timeline:
            self.events.seeked.emit(index)
        self._request(index)

    def step(self, delta: int) -> None:
        """`delta` frames from the frame asked for last."""
        if not self.seekable:
            return
        self.seek((self.requested or 0) + int(delta))

    def refresh(self) -> None:
        """Recompute the frame asked for last (the model or its settings changed): a seek made
        while the runner was being rebuilt is not undone by going back to the frame shown."""
        if not self.seekable:
            return
        index = self.requested if self.requested is not None else self.shown_index
        self._request(index or 0, reset=True)

    def _clamp(self, index: int) -> int:
        return max(0, min(int(index), max(0, self.frame_count - 1)))

    def _request(self, index: int, reset: bool = False) -> None:
        if not self.seekable:
            return
        index = self._clamp(index)
        self.requested = index
        self._outstanding = True
        poses = self.analysed_poses(index)
        gen = self.analysis_key[1] if poses is not None and self.analysis_key else 0
        self.events.frame_requested.emit(FrameRequest(index, self._source_gen, reset, poses, gen))

    def apply_result(self, result: FrameResult) -> bool:
        """A computed frame arrived: show it unless its source is gone (then False)."""
        if result.generation != self._source_gen:
            return False
        if result.requested_index is None or result.requested_index == self.requested:
            self._outstanding = False
        self.shown = result
        if result.poses is not None:
            self.selection.record(result.poses)
        self.events.frame_shown.emit(result)
        self._after_result(result)
        if result.error and self._last_error_gen != result.model_generation:
            self._last_error_gen = result.model_generation
            self.events.frame_failed.emit(result)
        return True

    # ---------------------------------------------------------------- playback

    def play(self, now: float) -> None:
        """Play from the frame on screen (from the start when at the end); a live source
        resumes."""
        if self.source is None:
            return
        if self.source.live:
            self._set_playing(True)
            return
        if self.frame_count < 2:
            return
        current = self.shown_index or 0
        if current >= self.frame_count - 1:
            current = 0
            self._request(0, reset=True)
        self.playback.begin(current, now)
        self.events.playing_changed.emit(True)

    def pause(self) -> None:
        self._set_playing(False)

    def toggle_play(self, now: float) -> None:
        if self.playing:
            self.pause()
        else:
            self.play(now)

    def _set_playing(self, playing: bool) -> None:
        if playing != self.playback.playing:
            self.playback.playing = playing
            self.events.playing_changed.emit(playing)

    def set_speed(self, speed: float, now: float) -> None:
        """Playback speed (1.0: the source's frame rate); playing restarts the clock."""
        self.playback.set_speed(speed)
        self.events.speed_changed.emit(self.playback.speed)
        if self.playing and self.seekable:
            self.play(now)

    def tick(self, now: float) -> int | None:
        """Advance playback to time `now`: asks for the frame due (unless a frame is still
        being computed: frames the model cannot keep up with are skipped). Returns the index
        asked for, or None. Pauses once the last frame is on screen."""
        if not self.playing or not self.seekable:
            return None
        last = self.frame_count - 1
        asked = None
        if not self._outstanding:
            asked = self.playback.next_frame(now, self.frame_count, self.requested)
            if asked is not None:
                self._request(asked)
        if self.shown_index == last and self.playback.target(now, self.frame_count) == last:
            self.pause()
        return asked

    def set_playback_mode(self, mode: PlaybackMode, now: float) -> None:
        """Real time (skip what is not ready) or every frame (wait for it)."""
        self.playback.mode = PlaybackMode(mode)
        self.events.playback_mode_changed.emit(self.playback.mode)
        if self.playing and self.seekable:
            self.play(now)
