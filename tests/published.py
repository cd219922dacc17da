"""The published pre- and post-processing, written out from the upstream code (tests only).

3DMPPE PoseNet / RootNet and ConvNeXtPose share it; file:line of medialab-ku/ConvNeXtPose@08352ee
unless said. numpy and cv2 as there, nothing from posescope.core, so the engine's pipeline can be
checked against it (docs/checkpoints.md lists every step with its upstream line).
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch

PIXEL_MEAN = (0.485, 0.456, 0.406)  # main/config.py L37
PIXEL_STD = (0.229, 0.224, 0.225)  # main/config.py L38


def to_tensor(pic: np.ndarray) -> torch.Tensor:
    """torchvision's `ToTensor` on an HWC numpy array, as torchvision >= 0.3 does it
    (`functional.to_tensor`): HWC -> CHW, and divided by 255 **only when the array is uint8**.
    `generate_patch_image` hands it float32, so the network sees 0..255 values."""
    img = torch.from_numpy(np.ascontiguousarray(pic.transpose((2, 0, 1))))
    if img.dtype == torch.uint8:
        return img.to(torch.get_default_dtype()).div(255)
    return img


def to_tensor_0_2_0(pic: np.ndarray) -> torch.Tensor:
    """torchvision 0.2.0's `ToTensor`: every numpy array divided by 255 (what the released
    weights were *not* trained with: 3DMPPE_POSENET_RELEASE issue #61), and what the /255
    re-implementations feed."""
    return torch.from_numpy(np.ascontiguousarray(pic.transpose((2, 0, 1)))).float().div(255)


def normalize(t: torch.Tensor) -> torch.Tensor:
    """`transforms.Normalize(mean=cfg.pixel_mean, std=cfg.pixel_std)` (common/base.py L169-171)."""
    mean = torch.tensor(PIXEL_MEAN, dtype=t.dtype).reshape(3, 1, 1)
    std = torch.tensor(PIXEL_STD, dtype=t.dtype).reshape(3, 1, 1)
    return (t - mean) / std


def network_input(patch: np.ndarray, convention: str = "0-255") -> torch.Tensor:
    """The (3, H, W) tensor a network trained with `convention` was fed for a float32 RGB
    patch: "0-255" the published code (`ToTensor` leaves float32 unscaled), "0-1" the /255
    re-implementations (torchvision 0.2.0's behaviour)."""
    if convention == "0-255":
        return normalize(to_tensor(patch))
    if convention == "0-1":
        return normalize(to_tensor_0_2_0(patch))
    raise ValueError(convention)


def process_bbox(bbox, width, height, input_shape=(256, 256)):
    """common/utils/pose_utils.py L58-84, literally."""
    x, y, w, h = bbox
    x1 = np.max((0, x))
    y1 = np.max((0, y))
    x2 = np.min((width - 1, x1 + np.max((0, w - 1))))
    y2 = np.min((height - 1, y1 + np.max((0, h - 1))))
    if w * h > 0 and x2 >= x1 and y2 >= y1:
        bbox = np.array([x1, y1, x2 - x1, y2 - y1], dtype=np.float64)
    else:
        return None
    w = bbox[2]
    h = bbox[3]
    c_x = bbox[0] + w / 2.0
    c_y = bbox[1] + h / 2.0
    aspect_ratio = input_shape[1] / input_shape[0]
    if w > aspect_ratio * h:
        h = w / aspect_ratio
    elif w < aspect_ratio * h:
        w = h * aspect_ratio
    bbox[2] = w * 1.25
    bbox[3] = h * 1.25
    bbox[0] = c_x - bbox[2] / 2.0
    bbox[1] = c_y - bbox[3] / 2.0
    return bbox


def gen_trans_from_patch_cv(c_x, c_y, src_width, src_height, dst_width, dst_height):
    """data/dataset.py L194-226 with scale 1 and rotation 0 (the test setting)."""
    src_center = np.array([c_x, c_y], dtype=np.float32)
    src_downdir = np.array([0, src_height * 0.5], dtype=np.float32)
    src_rightdir = np.array([src_width * 0.5, 0], dtype=np.float32)
    dst_center = np.array([dst_width * 0.5, dst_height * 0.5], dtype=np.float32)
    dst_downdir = np.array([0, dst_height * 0.5], dtype=np.float32)
    dst_rightdir = np.array([dst_width * 0.5, 0], dtype=np.float32)
    src = np.stack([src_center, src_center + src_downdir, src_center + src_rightdir])
    dst = np.stack([dst_center, dst_center + dst_downdir, dst_center + dst_rightdir])
    return cv2.getAffineTransform(np.float32(src), np.float32(dst))


def generate_patch_image(cvimg: np.ndarray, bbox, input_shape=(256, 256)):
    """data/dataset.py L141-184 at test time (no flip, scale 1, no rotation, no occlusion):
    the affine crop of the uint8 BGR image, then BGR -> RGB and **float32 0..255**."""
    img = cvimg.copy()
    bb_c_x = float(bbox[0] + 0.5 * bbox[2])
    bb_c_y = float(bbox[1] + 0.5 * bbox[3])
    trans = gen_trans_from_patch_cv(
        bb_c_x, bb_c_y, float(bbox[2]), float(bbox[3]), input_shape[1], input_shape[0]
    )
    img_patch = cv2.warpAffine(
        img, trans, (int(input_shape[1]), int(input_shape[0])), flags=cv2.INTER_LINEAR
    )
    img_patch = img_patch[:, :, ::-1].copy()
    img_patch = img_patch.astype(np.float32)
    return img_patch, trans


def flip_test(model, x: torch.Tensor, out_w: int, flip_pairs) -> torch.Tensor:
    """main/test.py L60-66: average the output with that of the mirrored input, its x mirrored
    as `output_shape[1] - x - 1` and left/right joints swapped."""
    coord_out = model(x)
    flipped_coord_out = model(x.flip(3))  # common/utils/pose_utils.py `flip(tensor, dims=3)`
    flipped_coord_out[:, :, 0] = out_w - flipped_coord_out[:, :, 0] - 1
    for a, b in flip_pairs:
        flipped_coord_out[:, a, :], flipped_coord_out[:, b, :] = (
            flipped_coord_out[:, b, :].clone(),
            flipped_coord_out[:, a, :].clone(),
        )
    return (coord_out + flipped_coord_out) / 2.0


@torch.no_grad()
def published_pose(
    model,
    cvimg: np.ndarray,
    bbox,
    depth_dim: int,
    out_hw: tuple[int, int],
    root_depth: float,
    convention: str = "0-255",
    flip: bool = False,
    flip_pairs=(),
    focal=(1500.0, 1500.0),
    princpt=None,
    input_shape=(256, 256),
):
    """The published demo (demo/demo.py L88-107) for one person box, with test.py's flip test:
    -> (pose (J, 3) as u, v px and absolute depth mm, camera-space (J, 3) mm)."""
    height, width = cvimg.shape[:2]
    princpt = princpt if princpt is not None else (width / 2, height / 2)  # demo.py L80
    bbox = process_bbox(np.array(bbox, dtype=np.float64), width, height, input_shape)
    img, img2bb_trans = generate_patch_image(cvimg, bbox, input_shape)
    x = network_input(img, convention)[None, :, :, :]
    out = flip_test(model, x, out_hw[1], flip_pairs) if flip else model(x)
    pose_3d = out[0].numpy().astype(np.float64)
    pose_3d[:, 0] = pose_3d[:, 0] / out_hw[1] * input_shape[1]
    pose_3d[:, 1] = pose_3d[:, 1] / out_hw[0] * input_shape[0]
    pose_3d_xy1 = np.concatenate((pose_3d[:, :2], np.ones_like(pose_3d[:, :1])), 1)
    img2bb_trans_001 = np.concatenate((img2bb_trans, np.array([0, 0, 1]).reshape(1, 3)))
    pose_3d[:, :2] = np.dot(np.linalg.inv(img2bb_trans_001), pose_3d_xy1.transpose(1, 0)).transpose(
        1, 0
    )[:, :2]
    pose_3d[:, 2] = (pose_3d[:, 2] / depth_dim * 2 - 1) * (2000 / 2) + root_depth
    cam = pose_3d.copy()  # pixel2cam, common/utils/pose_utils.py L13-18
    cam[:, 0] = (pose_3d[:, 0] - princpt[0]) / focal[0] * pose_3d[:, 2]
    cam[:, 1] = (pose_3d[:, 1] - princpt[1]) / focal[1] * pose_3d[:, 2]
    return pose_3d, cam


@torch.no_grad()
def published_root_depth(
    model, cvimg: np.ndarray, bbox, convention: str = "0-255", focal=(1500.0, 1500.0)
) -> float:
    """The RootNet demo (3DMPPE_ROOTNET_RELEASE@735ce21 demo/demo.py L78-86): the same box and
    crop, k = sqrt(2000 * 2000 * fx * fy / (w * h)) of the processed box; -> depth in mm."""
    height, width = cvimg.shape[:2]
    bbox = process_bbox(np.array(bbox, dtype=np.float64), width, height)
    img, _ = generate_patch_image(cvimg, bbox)
    x = network_input(img, convention)[None, :, :, :]
    k_value = np.array([math.sqrt(2000 * 2000 * focal[0] * focal[1] / (bbox[2] * bbox[3]))]).astype(
        np.float32
    )
    k = torch.from_numpy(k_value)[None, :]
    return float(model(x, k)[0, 2])
