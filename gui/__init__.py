"""PoseScope's desktop app: Qt views over the engine in `core` (which never imports this)."""

from __future__ import annotations

from PySide6.QtCore import QCoreApplication, Qt

if QCoreApplication.instance() is None:
    # Every QOpenGLWidget shares one GL namespace, so pyqtgraph's class-level shader
    # programs stay valid when a 3D view is re-created or moved to a floating dock.
    QCoreApplication.setAttribute(Qt.ApplicationAttribute.AA_ShareOpenGLContexts)
