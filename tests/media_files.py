"""The videos the tests read: shipped under tests/media/ with their licences (see its README)."""

from __future__ import annotations

from pathlib import Path

MEDIA = Path(__file__).resolve().parent / "media"
POSE2SIM = MEDIA / "pose2sim_cam01.mp4"  # 1080x1920 portrait, 60 fps, 100 frames
SPORTS2D = MEDIA / "sports2d_demo.mp4"  # 1768x994, 30 fps, 230 frames
VIDEOS = (POSE2SIM, SPORTS2D)
