"""The published ConvNeXtPose variants and the joint sets of the 3DMPPE lineage.

Data, not logic: `core.identify` compares what a file holds against these tables.
Facts from the published model code and paper (see docs/checkpoints.md in shared/).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class JointSet:
    """A named skeleton: joint names, bones (index pairs), left/right flip pairs, root joint."""

    name: str
    joints: tuple[str, ...]
    bones: tuple[tuple[int, int], ...]
    flip_pairs: tuple[tuple[int, int], ...]
    root: int

    @property
    def num(self) -> int:
        return len(self.joints)

    def side(self, joint: int) -> str:
        """'left', 'right' or 'centre' from the joint's name (for colouring)."""
        name = self.joints[joint]
        if name.startswith("L_"):
            return "left"
        if name.startswith("R_"):
            return "right"
        return "centre"

    def bone_side(self, bone: tuple[int, int]) -> str:
        """A bone is left/right when either end is (a hip bone from the pelvis counts as a side)."""
        sides = {self.side(bone[0]), self.side(bone[1])}
        if "left" in sides:
            return "left"
        if "right" in sides:
            return "right"
        return "centre"


# fmt: off
H36M = JointSet(
    name="Human3.6M",
    joints=(
        "Pelvis", "R_Hip", "R_Knee", "R_Ankle", "L_Hip", "L_Knee", "L_Ankle", "Torso",
        "Neck", "Nose", "Head", "L_Shoulder", "L_Elbow", "L_Wrist", "R_Shoulder",
        "R_Elbow", "R_Wrist", "Thorax",
    ),
    bones=(
        (0, 7), (7, 8), (8, 9), (9, 10), (8, 11), (11, 12), (12, 13), (8, 14), (14, 15),
        (15, 16), (0, 1), (1, 2), (2, 3), (0, 4), (4, 5), (5, 6),
    ),
    flip_pairs=((1, 4), (2, 5), (3, 6), (14, 11), (15, 12), (16, 13)),
    root=0,
)

# fmt: on

# Human3.6M's 17 evaluation joints (no Thorax): 17 x 64 = 1088 output channels.
H36M_17 = JointSet(
    name="Human3.6M-17",
    joints=H36M.joints[:17],
    bones=H36M.bones,
    flip_pairs=H36M.flip_pairs,
    root=0,
)

# fmt: off
MUCO = JointSet(
    name="MuCo-3DHP",
    joints=(
        "Head_top", "Thorax", "R_Shoulder", "R_Elbow", "R_Wrist", "L_Shoulder", "L_Elbow",
        "L_Wrist", "R_Hip", "R_Knee", "R_Ankle", "L_Hip", "L_Knee", "L_Ankle", "Pelvis",
        "Spine", "Head", "R_Hand", "L_Hand", "R_Toe", "L_Toe",
    ),
    bones=(
        (0, 16), (16, 1), (1, 15), (15, 14), (14, 8), (14, 11), (8, 9), (9, 10), (10, 19),
        (11, 12), (12, 13), (13, 20), (1, 2), (2, 3), (3, 4), (4, 17), (1, 5), (5, 6),
        (6, 7), (7, 18),
    ),
    flip_pairs=((2, 5), (3, 6), (4, 7), (8, 11), (9, 12), (10, 13), (17, 18), (19, 20)),
    root=14,
)

COCO = JointSet(
    name="MSCOCO",
    joints=(
        "Nose", "L_Eye", "R_Eye", "L_Ear", "R_Ear", "L_Shoulder", "R_Shoulder", "L_Elbow",
        "R_Elbow", "L_Wrist", "R_Wrist", "L_Hip", "R_Hip", "L_Knee", "R_Knee", "L_Ankle",
        "R_Ankle", "Thorax", "Pelvis",
    ),
    bones=(
        (0, 1), (0, 2), (1, 3), (2, 4), (0, 17), (17, 5), (17, 6), (5, 7), (7, 9), (6, 8),
        (8, 10), (17, 18), (18, 11), (18, 12), (11, 13), (13, 15), (12, 14), (14, 16),
    ),
    flip_pairs=((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16)),
    root=18,
)

# fmt: on

# Known joint sets by joint count, in order of preference when factorising J x D.
JOINT_SETS: dict[int, JointSet] = {18: H36M, 21: MUCO, 19: COCO, 17: H36M_17}

# Depth-bin counts seen in this lineage, most likely first.
KNOWN_DEPTH_BINS: tuple[int, ...] = (64, 32)


def generic_joint_set(num: int) -> JointSet:
    """A nameless joint set for a joint count we do not know: no bones, no flips, root 0."""
    return JointSet(
        name=f"unknown-{num}",
        joints=tuple(f"J{i}" for i in range(num)),
        bones=(),
        flip_pairs=(),
        root=0,
    )


@dataclass(frozen=True)
class Variant:
    """One published ConvNeXtPose configuration."""

    name: str
    depths: tuple[int, int, int, int]
    dims: tuple[int, int, int, int]
    head_channels: tuple[int, int, int]
    depth_dim: int
    joint_num: int = 18
    head_kernel: int = 3
    params_m: float = 0.0  # published/derived parameter count, millions
    note: str = ""
    results: dict[str, float] = field(default_factory=dict)


VARIANTS: dict[str, Variant] = {
    "XS": Variant(
        "XS", (2, 2, 6, 2), (40, 80, 160, 320), (128, 128, 128), 32, params_m=3.53,
        note='backbone ConvNeXt "Atto"', results={"mpjpe_p2_mm": 56.61},
    ),
    "S": Variant(
        "S", (3, 3, 9, 3), (48, 96, 192, 384), (256, 256, 256), 32, params_m=7.44,
        note='backbone "Femto-L"', results={"mpjpe_p2_mm": 51.80},
    ),
    "M": Variant(
        "M", (3, 3, 9, 3), (48, 96, 192, 384), (256, 256, 256), 64, params_m=7.59,
        results={"mpjpe_p2_mm": 51.05, "pa_mpjpe_p1_mm": 34.5, "gflops": 2.82},
    ),
    "L": Variant(
        "L", (3, 3, 9, 3), (48, 96, 192, 384), (512, 512, 512), 64, params_m=8.38,
        results={"mpjpe_p2_mm": 49.75, "pa_mpjpe_p1_mm": 32.8, "gflops": 4.30},
    ),
}  # fmt: skip

# torchvision ResNet stage depths, used by 3DMPPE PoseNet / RootNet backbones.
RESNET_LAYERS: dict[int, tuple[int, int, int, int]] = {
    18: (2, 2, 2, 2),
    34: (3, 4, 6, 3),
    50: (3, 4, 6, 3),
    101: (3, 4, 23, 3),
    152: (3, 8, 36, 3),
}

# Published demo conventions.
INPUT_SIZE: tuple[int, int] = (256, 256)  # (h, w)
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
BBOX_3D_MM: float = 2000.0  # the depth cube around the root
BOX_SCALE: float = 1.25
DEFAULT_FOCAL: float = 1500.0
