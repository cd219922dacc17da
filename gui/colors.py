"""Skeleton and UI colours, shared by the 2D overlay, the 3D view and the legend.

Side colours follow `core.drawing.SIDE_COLORS_BGR` when the engine defines it, so the overlay
video written by the engine and the app's views agree; otherwise the app's own palette is used.
"""

from __future__ import annotations

_DEFAULT_RGB: dict[str, tuple[int, int, int]] = {
    "left": (76, 155, 255),  # blue
    "right": (255, 128, 56),  # orange
    "centre": (74, 222, 128),  # green
}


def _side_colors() -> dict[str, tuple[int, int, int]]:
    try:
        from posescope.core.drawing import SIDE_COLORS_BGR  # type: ignore[attr-defined]
    except Exception:  # engine module not there (yet), or without the table
        return dict(_DEFAULT_RGB)
    out = dict(_DEFAULT_RGB)
    for side, bgr in dict(SIDE_COLORS_BGR).items():
        b, g, r = (int(c) for c in bgr[:3])
        out[str(side)] = (r, g, b)
    if "center" in out and "centre" not in SIDE_COLORS_BGR:
        out["centre"] = out["center"]
    return out


SIDE_RGB: dict[str, tuple[int, int, int]] = _side_colors()

BOX_RGB: tuple[int, int, int] = (250, 204, 21)  # person box (amber)
LABEL_RGB: tuple[int, int, int] = (232, 237, 247)
SELECTED_RGB: tuple[int, int, int] = (76, 155, 255)  # the selected person's box (accent)
LABEL_BACK_RGBA: tuple[int, int, int, int] = (11, 14, 21, 210)  # behind joint labels


def contrast_ratio(a: tuple[int, ...], b: tuple[int, ...]) -> float:
    """WCAG 2 contrast ratio of two sRGB colours (1..21; AA asks 4.5 for text)."""

    def lum(rgb: tuple[int, ...]) -> float:
        c = [v / 255.0 for v in rgb[:3]]
        c = [v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4 for v in c]
        return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]

    hi, lo = sorted((lum(a), lum(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


# UI palette (dark), also used by the style sheet's companions in pyqtgraph views.
BACKGROUND = "#11151f"
PANEL = "#171c28"
VIEW_BACKGROUND = "#0b0e15"
ACCENT = "#4c9bff"
TEXT = "#e8edf7"
TEXT_DIM = "#8b95ab"
WARNING = "#f5a524"
ERROR = "#f0506e"
SUCCESS = "#4ade80"


def side_rgbf(side: str, alpha: float = 1.0) -> tuple[float, float, float, float]:
    """The side's colour as floats 0..1 with alpha (for pyqtgraph.opengl items)."""
    r, g, b = SIDE_RGB.get(side, SIDE_RGB["centre"])
    return (r / 255.0, g / 255.0, b / 255.0, alpha)
