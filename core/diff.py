"""Are two checkpoints the same network, with the same weights? (`posescope diff A B`)

Both files are opened and identified as `inspect` does; the architectures are compared field
by field (family, backbone depths and widths, head layers, joints, depth bins, input size:
not the head's key spelling, which names the same layers), and the weights after
canonicalisation: wrappers and prefixes are stripped by the loader (`open_checkpoint`), and
the three ConvNeXtPose head spellings are mapped onto one by the family's key renaming
(`canonical_key`), so the same tensors saved in a zip with `module.` prefixes and in a
safetensors file with legacy head names compare identical. BatchNorm's `num_batches_tracked`
(a training counter, unused at inference, absent from some files) is not compared.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from posescope.core.checkpoint import LoadedCheckpoint, open_checkpoint
from posescope.core.families.descriptor import Architecture, Identification
from posescope.core.families.registry import REGISTRY
from posescope.core.identify import identify_checkpoint

EXIT_IDENTICAL, EXIT_DIFFERENT, EXIT_ERROR = 0, 1, 2


@dataclass(frozen=True)
class TensorChange:
    """The tensor whose values changed most, relative to its size in A."""

    tensor: str  # canonical name
    relative: float  # ||a - b|| / ||a|| (1.0 when a is all zeros and b is not)


@dataclass
class CheckpointDiff:
    """What differs between checkpoints A and B. `to_dict()` is `diff --json`'s document."""

    same_architecture: bool
    identical: bool
    architecture_differences: list[str]
    tensors: int  # canonical tensor names in A or B
    differing: int  # in one only, of another shape, or with other values
    max_abs_diff: float  # over tensors present in both with equal shapes
    largest_change: TensorChange | None  # None when no shared tensor changed value
    # not in the JSON document: for the readable summary (and the app's side-by-side panel)
    a: Identification | None = field(default=None, repr=False)
    b: Identification | None = field(default=None, repr=False)
    only_in_a: list[str] = field(default_factory=list, repr=False)
    only_in_b: list[str] = field(default_factory=list, repr=False)
    shape_changes: list[str] = field(default_factory=list, repr=False)
    notes: list[str] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "same_architecture": self.same_architecture,
            "identical": self.identical,
            "architecture_differences": list(self.architecture_differences),
            "tensors": self.tensors,
            "differing": self.differing,
            "max_abs_diff": self.max_abs_diff,
            "largest_change": asdict(self.largest_change) if self.largest_change else None,
        }

    @property
    def exit_code(self) -> int:
        return EXIT_IDENTICAL if self.identical else EXIT_DIFFERENT


def _arch_fields(ident: Identification) -> dict[str, object]:
    a: Architecture | None = ident.arch
    if a is None:
        return {"family": ident.family}
    return {
        "family": ident.family,
        "backbone": a.backbone_type if a.resnet_depth is None else f"ResNet-{a.resnet_depth}",
        "depths": list(a.depths),
        "widths": list(a.dims),
        "head channels": [h.out_channels for h in a.head_layers],
        "head kernels": [h.kernel for h in a.head_layers],
        "head upsampling": [h.upsample for h in a.head_layers],
        "joints": a.joint_num,
        "depth bins": a.depth_dim,
        "input size": list(a.input_size),
    }


def architecture_differences(a: Identification, b: Identification) -> list[str]:
    """'field: A vs B' for each architecture field that differs (empty: same network)."""
    fa, fb = _arch_fields(a), _arch_fields(b)
    out = []
    for key in dict.fromkeys([*fa, *fb]):
        va, vb = fa.get(key), fb.get(key)
        if va != vb:
            out.append(f"{key}: {_show(va)} vs {_show(vb)}")
    return out


def _show(value: object) -> str:
    if isinstance(value, list):
        return "-".join(str(v).lower() if isinstance(v, bool) else str(v) for v in value)
    return "-" if value is None else str(value)


def canonical_state_dict(ckpt: LoadedCheckpoint, ident: Identification) -> dict[str, torch.Tensor]:
    """Tensors under the names the model loads them by (head spellings unified)."""
    family = REGISTRY.get(ident.family)
    return {
        (family.canonical_key(k) if family else k): v
        for k, v in ckpt.state_dict.items()
        if not k.endswith("num_batches_tracked")
    }


def compare_tensors(
    sa: Mapping[str, torch.Tensor], sb: Mapping[str, torch.Tensor]
) -> tuple[int, int, float, TensorChange | None, list[str], list[str], list[str]]:
    """(tensors, differing, max_abs_diff, largest change, only in A, only in B, shape changes)."""
    names = sorted(set(sa) | set(sb))
    only_a = [k for k in names if k not in sb]
    only_b = [k for k in names if k not in sa]
    differing = len(only_a) + len(only_b)
    shapes: list[str] = []
    max_abs = 0.0
    largest: TensorChange | None = None
    for k in names:
        if k not in sa or k not in sb:
            continue
        ta, tb = sa[k], sb[k]
        if tuple(ta.shape) != tuple(tb.shape):
            shapes.append(f"{k}: {tuple(ta.shape)} vs {tuple(tb.shape)}")
            differing += 1
            continue
        if ta.dtype == tb.dtype and torch.equal(ta, tb):
            continue
        da, db = ta.detach().double(), tb.detach().double()
        delta = (da - db).abs()
        top = float(delta.max()) if delta.numel() else 0.0
        if top == 0.0:
            continue  # same values in another dtype
        differing += 1
        max_abs = max(max_abs, top)
        norm_a = float(torch.linalg.vector_norm(da))
        rel = float(torch.linalg.vector_norm(da - db)) / norm_a if norm_a > 0 else 1.0
        if largest is None or rel > largest.relative:
            largest = TensorChange(k, rel)
    return len(names), differing, max_abs, largest, only_a, only_b, shapes


def diff_checkpoints(
    a: LoadedCheckpoint, ia: Identification, b: LoadedCheckpoint, ib: Identification
) -> CheckpointDiff:
    """Compare two opened and identified checkpoints."""
    arch = architecture_differences(ia, ib)
    n, differing, max_abs, largest, only_a, only_b, shapes = compare_tensors(
        canonical_state_dict(a, ia), canonical_state_dict(b, ib)
    )
    notes = []
    if ia.arch and ib.arch and ia.arch.head_style != ib.arch.head_style:
        notes.append(
            f"head keys spelled {ia.arch.head_style} in A, {ib.arch.head_style} in B "
            "(compared under one spelling)"
        )
    for what, va, vb in (
        ("container", a.format, b.format),
        ("key prefix", a.prefix, b.prefix),
        ("wrapper", a.wrapper, b.wrapper),
    ):
        if va != vb:
            notes.append(f"{what}: {va or 'none'} in A, {vb or 'none'} in B (not a difference)")
    dtypes_a = {str(t.dtype).replace("torch.", "") for t in a.state_dict.values()}
    dtypes_b = {str(t.dtype).replace("torch.", "") for t in b.state_dict.values()}
    if dtypes_a != dtypes_b:
        notes.append(f"dtypes: {', '.join(sorted(dtypes_a))} in A, {', '.join(sorted(dtypes_b))}")
    return CheckpointDiff(
        same_architecture=not arch,
        identical=not arch and differing == 0,
        architecture_differences=arch,
        tensors=n,
        differing=differing,
        max_abs_diff=max_abs,
        largest_change=largest,
        a=ia,
        b=ib,
        only_in_a=only_a,
        only_in_b=only_b,
        shape_changes=shapes,
        notes=notes,
    )


def diff_paths(a: str | Path, b: str | Path, trust: bool = False) -> CheckpointDiff:
    """Open, identify and compare two files (CheckpointError and friends propagate)."""
    ca = open_checkpoint(a, trust=trust)
    cb = open_checkpoint(b, trust=trust)
    return diff_checkpoints(ca, identify_checkpoint(ca), cb, identify_checkpoint(cb))


def format_diff(d: CheckpointDiff, name_a: str = "A", name_b: str = "B") -> str:
    """The readable summary `posescope diff` prints (and the app can show)."""
    ta = d.a.title if d.a else "?"
    tb = d.b.title if d.b else "?"
    lines = [f"A  {name_a}: {ta}", f"B  {name_b}: {tb}"]
    if d.identical:
        lines.append(f"identical: same architecture, all {d.tensors} tensors equal")
    else:
        if d.same_architecture:
            lines.append("same architecture")
        else:
            lines.append("different architectures:")
            lines += [f"  {x}" for x in d.architecture_differences]
        lines.append(f"weights: {d.differing} of {d.tensors} tensors differ")
        if d.largest_change:
            lines.append(
                f"  largest change  {d.largest_change.tensor}  "
                f"(relative {_num(d.largest_change.relative)}, max abs diff {_num(d.max_abs_diff)})"
            )
        for label, items in (
            ("only in A", d.only_in_a),
            ("only in B", d.only_in_b),
            ("shape", d.shape_changes),
        ):
            if items:
                more = f" (+{len(items) - 3} more)" if len(items) > 3 else ""
                lines.append(f"  {label:<15} {', '.join(items[:3])}{more}")
    lines += [f"note: {n}" for n in d.notes]
    return "\n".join(lines)


def _num(x: float) -> str:
    return f"{x:.3g}" if math.isfinite(x) else str(x)


def run_diff(args: Any) -> int:
    """`posescope diff A B [--json] [--trust]`: 0 identical, 1 different, 2 error."""
    import json
    import sys

    from posescope.core.checkpoint import CheckpointError
    from posescope.core.cli import _error_line

    opened = []
    for path in (args.a, args.b):
        try:
            ckpt = open_checkpoint(path, trust=args.trust)
            opened.append((ckpt, identify_checkpoint(ckpt)))
        except (CheckpointError, OSError, ValueError) as exc:
            print(_error_line(path, exc), file=sys.stderr)
            return EXIT_ERROR
    (ca, ia), (cb, ib) = opened
    d = diff_checkpoints(ca, ia, cb, ib)
    if args.json:
        print(json.dumps(d.to_dict(), indent=2))
    else:
        print(format_diff(d, str(args.a), str(args.b)))
    return d.exit_code
