"""Drawing poses over images with OpenCV (for overlay videos and previews)."""

from __future__ import annotations

import cv2
import numpy as np

from posescope.core.types import FramePoses, PersonPose
from posescope.core.variants import JointSet

# Bone and joint colours by body side (BGR).
SIDE_COLORS_BGR: dict[str, tuple[int, int, int]] = {
    "left": (235, 140, 40),  # blue
    "right": (40, 110, 250),  # orange-red
    "centre": (80, 200, 80),  # green
}

# Box colours, cycled by track id (BGR).
TRACK_COLORS_BGR: tuple[tuple[int, int, int], ...] = (
    (0, 215, 255), (255, 0, 255), (255, 255, 0), (0, 128, 255), (180, 105, 255), (50, 205, 154),
)  # fmt: skip


def _scale(image: np.ndarray) -> float:
    """Drawing scale: 1.0 for a 720-pixel short side."""
    return max(min(image.shape[:2]) / 720.0, 0.35)


def _point(p: np.ndarray) -> tuple[int, int] | None:
    if not np.all(np.isfinite(p)) or np.any(np.abs(p) > 1e6):
        return None
    return round(float(p[0])), round(float(p[1]))


def draw_pose(
    image_bgr: np.ndarray,
    person: PersonPose,
    joint_set: JointSet,
    *,
    labels: bool = False,
    box: bool = True,
) -> None:
    """Draw one person in place: bones coloured by side, joints as dots, box and "id N"."""
    s = _scale(image_bgr)
    thick = max(1, round(3 * s))
    radius = max(2, round(4 * s))
    kp = np.asarray(person.keypoints_2d, dtype=float).reshape(-1, 2)
    n = min(len(kp), joint_set.num)
    pts = [_point(kp[j]) for j in range(n)]
    if box:
        x, y, w, h = (float(v) for v in person.bbox)
        color = TRACK_COLORS_BGR[person.track_id % len(TRACK_COLORS_BGR)]
        p1, p2 = _point(np.array([x, y])), _point(np.array([x + w, y + h]))
        if p1 is not None and p2 is not None:
            cv2.rectangle(image_bgr, p1, p2, color, max(1, thick - 1), cv2.LINE_AA)
            text = person_label(person)
            font_scale = 0.6 * s
            (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thick)
            ty = max(p1[1], th + base)
            cv2.rectangle(image_bgr, (p1[0], ty - th - base), (p1[0] + tw + 4, ty), color, -1)
            cv2.putText(
                image_bgr,
                text,
                (p1[0] + 2, ty - base),
                cv2.FONT_HERSHEY_SIMPLEX,
                font_scale,
                (0, 0, 0),
                max(1, thick - 1),
                cv2.LINE_AA,
            )
    for a, b in joint_set.bones:
        if a < n and b < n and (pa := pts[a]) is not None and (pb := pts[b]) is not None:
            color = SIDE_COLORS_BGR[joint_set.bone_side((a, b))]
            cv2.line(image_bgr, pa, pb, color, thick, cv2.LINE_AA)
    for j, p in enumerate(pts):
        if p is None:
            continue
        cv2.circle(image_bgr, p, radius, SIDE_COLORS_BGR[joint_set.side(j)], -1, cv2.LINE_AA)
        cv2.circle(image_bgr, p, radius, (255, 255, 255), 1, cv2.LINE_AA)
        if labels:
            org = (p[0] + radius + 2, p[1] - radius)
            for color, width in (((0, 0, 0), 3), ((255, 255, 255), 1)):  # outlined text
                cv2.putText(
                    image_bgr,
                    joint_set.joints[j],
                    org,
                    cv2.FONT_HERSHEY_SIMPLEX,
                    0.4 * s,
                    color,
                    width,
                    cv2.LINE_AA,
                )


def person_label(person: PersonPose) -> str:
    """The label over a person's box: "id 2  det 0.87  pose 0.41". `det`: the person
    detector's confidence in the box; `pose`: the pose network's mean heatmap peak; either
    is left out when unknown (a given box, the whole-frame fallback)."""
    parts = [f"id {person.track_id}"]
    if np.isfinite(person.det_score):
        parts.append(f"det {person.det_score:.2f}")
    if np.isfinite(person.score):
        parts.append(f"pose {person.score:.2f}")
    return "  ".join(parts)


LEGEND = ("det: person detector confidence", "pose: pose network confidence (heatmap peak)")


def draw_legend(image_bgr: np.ndarray, lines: tuple[str, ...] = LEGEND) -> None:
    """What the scores over the boxes mean, in the bottom-left corner, in place."""
    s = _scale(image_bgr)
    font_scale, thick = 0.45 * s, max(1, round(1.5 * s))
    (_, th), base = cv2.getTextSize("Ag", cv2.FONT_HERSHEY_SIMPLEX, font_scale, thick)
    step = th + base + max(2, round(4 * s))
    y = image_bgr.shape[0] - step * len(lines)
    for line in lines:
        y += step
        for color, width in (((0, 0, 0), thick + 2), ((255, 255, 255), thick)):
            cv2.putText(image_bgr, line, (round(8 * s), y - base), cv2.FONT_HERSHEY_SIMPLEX,
                        font_scale, color, width, cv2.LINE_AA)  # fmt: skip


def draw_frame(
    image: np.ndarray, fp: FramePoses, joint_set: JointSet, *, legend: bool = True, **kw: bool
) -> np.ndarray:
    """A copy of `image` with every person of `fp` drawn (keywords as for draw_pose), and the
    legend of the scores when a drawn label shows one."""
    out = np.ascontiguousarray(image).copy()
    if out.ndim == 2:
        out = cv2.cvtColor(out, cv2.COLOR_GRAY2BGR)
    for person in fp.people:
        draw_pose(out, person, joint_set, **kw)
    if (
        legend
        and kw.get("box", True)
        and any(np.isfinite(p.score) or np.isfinite(p.det_score) for p in fp.people)
    ):
        draw_legend(out)
    return out
