"""The architecture panel follows the session: what is being read, built, running or restored.

Kept beside `gui/arch_panel.py` (a view with its own public API) rather than in it, so the
panel stays a plain widget; this is its `bind`, in the manner of napari's QtDims.
"""

from __future__ import annotations

import os

from posescope.core.session import Session
from posescope.core.session_types import BuildRequest, Model, Opened
from posescope.gui.arch_panel import ArchPanel


def bind_arch_panel(panel: ArchPanel, session: Session) -> None:
    """Show the session's checkpoint in `panel`; its upsampling boxes set the override."""
    ev = session.events

    def identifying(paths: list[str]) -> None:
        if session.model is None:
            panel.show_loading(", ".join(os.path.basename(p) for p in paths))

    def building(request: BuildRequest) -> None:
        rootnet = session.rootnet
        panel.set_identification(
            request.ident,
            overridden=request.settings.upsample is not None,
            rootnet=rootnet.ident if rootnet else None,
        )

    def running(model: Model) -> None:
        panel.set_identification(
            model.ident,
            overridden=model.settings.upsample is not None,
            rootnet=model.rootnet.ident if model.rootnet else None,
            input_used=model.estimator.input,
        )

    def restored() -> None:
        if session.model is not None:
            running(session.model)
        elif session.base is None:
            panel.show_empty()

    def rootnet(opened: Opened) -> None:
        panel.set_rootnet(opened.ident)

    ev.identifying.connect(identifying)
    ev.build_requested.connect(building)
    ev.model_changed.connect(running)
    ev.checkpoint_restored.connect(restored)
    ev.rootnet_changed.connect(rootnet)
    panel.sigUpsampleChanged.connect(session.set_upsample)
    panel.sigUpsampleReset.connect(lambda: session.set_upsample(None))
