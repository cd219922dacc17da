"""What network is this? A pure function of tensor names and shapes.

`identify(shapes)` reads the architecture from the state dict's key names and tensor shapes
(never from file names or notes). The families (core/families/) are asked in the registry's
order (spandrel style): the first whose declared key conditions hold reads the hyperparameters
and compares them with its published variants; anything else is described ("looks like an
image classifier") and refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from posescope.core.checkpoint import CheckpointError, strip_prefix
from posescope.core.escape import escape
from posescope.core.families.base import IdentificationError, Shapes
from posescope.core.families.descriptor import Identification
from posescope.core.families.input_convention import read_input_convention
from posescope.core.families.registry import REGISTRY
from posescope.core.families.shapes import count_params
from posescope.core.variants import JOINT_SETS, generic_joint_set

if TYPE_CHECKING:
    from posescope.core.checkpoint import LoadedCheckpoint


class NotAPoseCheckpointError(CheckpointError):
    """A readable checkpoint that holds some other network (a classifier, a bare backbone)."""

    def __init__(self, path: str, reason: str, looks_like: str | None = None):
        Exception.__init__(self, reason)
        self.path = path
        self.reason = reason
        self.looks_like = looks_like

    def __str__(self) -> str:
        return self.reason


def describe_non_pose(s: Shapes) -> str:
    """A guess at what a state dict that is no pose network is."""
    keys = list(s)
    if not keys:
        return "an empty state dict"
    for fc in ("fc.weight", "classifier.weight", "head.fc.weight", "head.weight"):
        if fc in s and len(s[fc]) == 2:
            return f"an image classifier ({fc} with {s[fc][0]} classes)"
    joined = " ".join(keys[:200])
    if "attn" in joined or "attention" in joined:
        return "a transformer"
    if "backbone.downsample_layers" in joined or "downsample_layers.0.0" in joined:
        return "a ConvNeXt backbone"
    if any(k.startswith(("layer1.", "conv1.")) for k in keys):
        return "a ResNet without a pose head"
    return f"an unknown network ({len(keys)} tensors, e.g. '{keys[0]}')"


def identify(shapes: Shapes, filename: str | Path | None = None) -> Identification:
    """Identify a state dict from its names and shapes; `filename` only feeds the
    "named X, tensors say Y" warning and never the verdict."""
    stripped, prefix = strip_prefix(shapes)
    s = {k: tuple(int(d) for d in v) for k, v in stripped.items()}
    family = REGISTRY.detect(s)
    try:
        if family is None:
            what = describe_non_pose(s)
            raise IdentificationError(f"not a pose checkpoint: looks like {what}", what)
        ident = family.identify(s)
    except IdentificationError as exc:
        return Identification(
            family="unknown",
            evidence=[escape(exc.reason)],
            looks_like=escape(exc.looks_like) if exc.looks_like else exc.looks_like,
            params=count_params(s),
            key_prefix=prefix,
        )
    ident.key_prefix = prefix
    ident.params = count_params(s)
    assert ident.arch is not None
    ident.gflops = round(family.count_macs(ident.arch) / 1e9, 3)
    if family.is_pose:
        a = ident.arch
        ident.joint_set = JOINT_SETS.get(a.joint_num) or generic_joint_set(a.joint_num)
    if filename is not None:
        family.check_name(ident, Path(filename))
    # Names from the file reach the terminal and the panel: never raw (core/escape.py).
    ident.evidence = [escape(e) for e in ident.evidence]
    ident.warnings = [escape(w) for w in ident.warnings]
    return ident


def identify_checkpoint(ckpt: LoadedCheckpoint) -> Identification:
    """Identify an opened checkpoint and attach the facts about its file.

    Raises NotAPoseCheckpointError for files that hold some other network.
    """
    ident = identify(ckpt.shapes(), filename=ckpt.path)
    ident.path = str(ckpt.path)
    ident.file_size = ckpt.file_size
    ident.format = ckpt.format
    ident.wrapper = ckpt.wrapper
    ident.key_prefix = ckpt.prefix or ident.key_prefix
    if ident.family == "unknown":
        raise NotAPoseCheckpointError(str(ckpt.path), ident.evidence[0], ident.looks_like)
    family = REGISTRY[ident.family]
    ident.input = read_input_convention(ckpt.state_dict, family.stem)
    ident.evidence.append(f"input: {ident.input.describe()}")
    return ident
