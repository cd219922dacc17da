"""Reading hyperparameters from tensor names and shapes: helpers every family uses."""

from __future__ import annotations

import re

from posescope.core.families.base import IdentificationError, Shapes
from posescope.core.variants import JOINT_SETS, KNOWN_DEPTH_BINS

_STATS = ("running_mean", "running_var", "num_batches_tracked")


def count_params(shapes: Shapes) -> int:
    """Weights + biases + BN affine; running statistics are not parameters."""
    total = 0
    for k, shape in shapes.items():
        if k.rsplit(".", 1)[-1] in _STATS:
            continue
        n = 1
        for s in shape:
            n *= int(s)
        total += n
    return total


def indices(shapes: Shapes, prefix: str) -> list[int]:
    """Sorted distinct integers i in keys `prefix{i}.…`."""
    pat = re.compile(re.escape(prefix) + r"(\d+)\.")
    return sorted({int(m.group(1)) for k in shapes if (m := pat.match(k))})


def shape_of(shapes: Shapes, key: str) -> tuple[int, ...]:
    """A tensor's shape; a missing tensor makes the checkpoint incomplete."""
    if key not in shapes:
        raise IdentificationError(f"incomplete checkpoint: tensor '{key}' is missing")
    return tuple(shapes[key])


def conv_macs(out_hw: tuple[int, int], cout: int, cin_per_group: int, k: int) -> int:
    """Multiply-accumulates of one kxk convolution producing `out_hw` x `cout`."""
    return out_hw[0] * out_hw[1] * cout * cin_per_group * k * k


def factorize_output(channels: int, prefer_depth: int | None = None) -> tuple[int, int, list[str]]:
    """Split `final_layer`'s channels into joints x depth bins.

    Prefers known joint sets with the usual depth-bin counts; returns (joints, bins, notes),
    the notes saying how the choice was made and whether it was ambiguous.
    """
    known = [
        (j, d) for j in JOINT_SETS for d in KNOWN_DEPTH_BINS if j * d == channels
    ]  # ordered by joint-set then depth preference
    notes: list[str] = []
    if prefer_depth is not None:
        pref = [(j, d) for j, d in known if d == prefer_depth]
        known = pref + [c for c in known if c not in pref]
    if known:
        j, d = known[0]
        notes.append(
            f"{channels} output channels = {j} joints ({JOINT_SETS[j].name}) x {d} depth bins"
        )
        if len(known) > 1:
            alts = ", ".join(f"{a} x {b}" for a, b in known[1:])
            notes.append(f"ambiguous: {channels} could also be {alts}; chose {j} x {d}")
        return j, d, notes
    generic = [(channels // d, d) for d in KNOWN_DEPTH_BINS if channels % d == 0]
    if generic:
        j, d = generic[0]
        msg = f"{channels} output channels: no known joint set fits; read as {j} joints x {d} bins"
        if len(generic) > 1:
            alts = ", ".join(f"{a} x {b}" for a, b in generic[1:])
            msg += f" (ambiguous: could also be {alts})"
        notes.append(msg)
        return j, d, notes
    raise IdentificationError(
        f"final layer has {channels} output channels, which is no joints x depth-bins product "
        f"with {' or '.join(map(str, KNOWN_DEPTH_BINS))} bins"
    )
