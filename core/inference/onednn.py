"""The folded ConvNeXtPose as direct oneDNN calls (CPU): weights packed once, post-ops fused.

`_onednn_form(folded, arch)` builds it and checks it against the folded network; None where
oneDNN is missing or the check fails (InferenceModel then takes the TorchScript form).
"""

from __future__ import annotations

import warnings
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from posescope.core.families.descriptor import Architecture
from posescope.core.inference.fold import (
    _bias,
    _FusedBlock,
    _FusedConvNeXtPose,
    _FusedHeadLayer,
)

_ONEDNN_AVAILABLE = torch.backends.mkldnn.is_available()


def _conv(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, p: int, s: int, g: int, attr: str):
    return torch.ops.mkldnn._convolution_pointwise(x, w, b, [p, p], [s, s], [1, 1], g, attr, [], "")


def _onednn_program(
    x: torch.Tensor,
    weights: list[torch.Tensor],
    biases: list[torch.Tensor],
    pads: list[int],
    strides: list[int],
    groups: list[int],
    depths: list[int],
    upsample: list[bool],
    norm_scale: torch.Tensor,
    norm_shift: torch.Tensor,
    final_weight: torch.Tensor,
) -> torch.Tensor:
    """The folded ConvNeXtPose as a flat list of packed convolutions (see _OneDNNConvNeXtPose).

    Order: stem; per stage its downsampling conv (not for the first) then (dw, pw1, pw2) per
    block; per head layer (dw, pw). TorchScript-compiled: a oneDNN op called from Python
    costs ~25 us of argument handling, from TorchScript ~3 us (measured, ~60 calls a pass).
    """
    i = 0
    x = _conv(x, weights[0], biases[0], pads[0], strides[0], groups[0], "none")
    i += 1
    for stage, depth in enumerate(depths):
        if stage > 0:
            x = _conv(x, weights[i], biases[i], pads[i], strides[i], groups[i], "none")
            i += 1
        for _ in range(depth):
            y = _conv(x, weights[i], biases[i], pads[i], 1, groups[i], "none")
            y = _conv(y, weights[i + 1], biases[i + 1], 0, 1, 1, "relu")
            # residual add fused into pw2, written into x in place
            x = torch.ops.mkldnn._convolution_pointwise_(
                x, y, weights[i + 2], biases[i + 2], [0, 0], [1, 1], [1, 1], 1,
                "add", 1.0, None, [], None,
            )  # fmt: skip
            i += 3
    x = torch.addcmul(norm_shift, x, norm_scale)
    for up in upsample:
        x = _conv(x, weights[i], biases[i], pads[i], 1, groups[i], "none")
        x = _conv(x, weights[i + 1], biases[i + 1], 0, 1, 1, "relu")
        i += 2
        if up:
            x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=True)
    n, c, h, w = x.shape
    features = x.permute(0, 2, 3, 1).reshape(n, h * w, c)  # channels-last: a view
    if n == 1:
        # heatmaps as a "linear" layer whose weight is the features: (J*D, H*W) rows, i.e.
        # NCHW straight from the GEMM, with the bias riding in the ones channel
        out = torch.ops.mkldnn._linear_pointwise(final_weight, features[0], None, "none", [], "")
    else:
        out = torch.bmm(final_weight.expand(n, -1, -1), features.transpose(1, 2))
    return out.view(n, -1, h, w)


_SCRIPTED: dict[str, object] = {}


def _scripted_program():
    if "program" not in _SCRIPTED:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript, torch >= 2.10
            _SCRIPTED["program"] = torch.jit.script(_onednn_program)
    return _SCRIPTED["program"]


class _OneDNNConvNeXtPose(nn.Module):
    """The folded ConvNeXtPose (`fuse_with_input`) as direct oneDNN calls (CPU only).

    What it saves over the TorchScript-traced form (`_optimize_cpu`):
    - weights reordered once into oneDNN's blocked layouts for this input size;
    - ReLU and the residual add fused into the convolutions as oneDNN post-ops (the add
      writes into the residual tensor in place), instead of separate passes over memory;
    - activations stay dense channels-last: no to_mkldnn / to_dense around the upsamplings;
    - the heatmap layer is one GEMM whose output is already (N, J*D, H*W) row-major, so the
      soft-argmax reads it with no layout copy; its bias rides in the GEMM (see
      `_with_ones_channel`).
    Needs a head (at least one head layer); `_onednn_form` checks it against the folded form.
    """

    def __init__(self, folded: _FusedConvNeXtPose, input_size: tuple[int, int]):
        super().__init__()
        layers = cast("list[_FusedHeadLayer]", list(folded.head))
        if not layers:
            raise ValueError("the oneDNN form needs at least one head layer")
        downs = cast("list[nn.Conv2d]", list(folded.downs))
        stages = cast("list[nn.Sequential]", list(folded.stages))
        convs: list[tuple[nn.Conv2d, int, int, int]] = []  # conv, its input's (c, h, w)
        h, w = input_size
        convs.append((downs[0], 3, h, w))
        h, w = h // 4, w // 4
        for i, stage in enumerate(stages):
            if i:
                convs.append((downs[i], downs[i].in_channels, h, w))
                h, w = h // 2, w // 2
            for b in cast("list[_FusedBlock]", stage):
                c = b.dw.in_channels
                convs += [(b.dw, c, h, w), (b.pw1, c, h, w), (b.pw2, b.pw2.in_channels, h, w)]
        final = cast(nn.Conv2d, folded.final)
        weight = final.weight.detach().reshape(final.out_channels, -1)
        for i, layer in enumerate(layers):
            c, pw = layer.dw.in_channels, layer.pw
            if i == len(layers) - 1:
                pw, weight = _with_ones_channel(pw, weight, _bias(final).detach())
            convs += [(layer.dw, c, h, w), (pw, c, h, w)]
            if layer.upsample:
                h, w = h * 2, w * 2
        self.weights = [
            torch.ops.mkldnn._reorder_convolution_weight(
                conv.weight.detach().contiguous(),
                list(conv.padding), list(conv.stride), [1, 1], conv.groups, [1, c, h_, w_],
            )
            for conv, c, h_, w_ in convs
        ]  # fmt: skip
        self.biases = [_bias(conv).detach().contiguous() for conv, *_ in convs]
        self.pads = [int(conv.padding[0]) for conv, *_ in convs]
        self.strides = [int(conv.stride[0]) for conv, *_ in convs]
        self.groups = [int(conv.groups) for conv, *_ in convs]
        self.depths = [len(stage) for stage in stages]
        self.upsample = [bool(layer.upsample) for layer in layers]
        self.norm_scale = folded.norm.scale
        self.norm_shift = folded.norm.shift
        self.final_weight = weight.contiguous()
        self._program = _scripted_program()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._program(
            x.contiguous(memory_format=torch.channels_last),
            self.weights, self.biases, self.pads, self.strides, self.groups,
            self.depths, self.upsample, self.norm_scale, self.norm_shift, self.final_weight,
        )  # fmt: skip


def _with_ones_channel(
    pw: nn.Conv2d, weight: torch.Tensor, bias: torch.Tensor
) -> tuple[nn.Conv2d, torch.Tensor]:
    """Move the heatmap layer's bias into its GEMM.

    Returns `pw` (the last head conv) with extra output channels [1, 0, ...], padded to a
    multiple of 8 (zero weights, biases 1 then 0: ReLU and bilinear upsampling keep them),
    and the heatmap `weight` (out, pw.out_channels) with the matching columns [bias, 0, ...].
    """
    extra = 8 - pw.out_channels % 8
    grown = nn.Conv2d(pw.in_channels, pw.out_channels + extra, 1)
    zeros = pw.weight.new_zeros(extra, pw.in_channels, 1, 1)
    grown.weight.data = torch.cat([pw.weight.detach(), zeros])
    ones = _bias(pw).new_zeros(extra)
    ones[0] = 1.0
    _bias(grown).data = torch.cat([_bias(pw).detach(), ones])
    columns = weight.new_zeros(weight.shape[0], extra)
    columns[:, 0] = bias
    return grown, torch.cat([weight, columns], dim=1)


def _onednn_form(folded: nn.Module, arch: Architecture) -> nn.Module | None:
    """The oneDNN form of a folded ConvNeXtPose, checked against it; None where unavailable."""
    if not _ONEDNN_AVAILABLE or not isinstance(folded, _FusedConvNeXtPose):
        return None
    try:
        with torch.no_grad():
            fast = _OneDNNConvNeXtPose(folded, arch.input_size)
            h, w = arch.input_size
            probe = torch.randint(0, 256, (1, h, w, 3), generator=torch.Generator().manual_seed(0))
            probe = probe.float().permute(0, 3, 1, 2)
            want, got = folded(probe), fast(probe)
        scale = float(want.abs().max()) or 1.0
        if got.shape != want.shape or float((got - want).abs().max()) > 1e-4 * scale:
            return None
    except Exception:  # an op this build of torch/oneDNN lacks: the next form runs
        return None
    return fast
