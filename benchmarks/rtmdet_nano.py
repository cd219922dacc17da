"""RTMDet-nano's architecture in plain torch, with random weights, for timing only.

Written from MMDetection's configs (CSPNeXt backbone with deepen 0.33 / widen 0.25 and
depthwise convolutions, CSPNeXtPAFPN with 64 channels, RTMDetSepBNHead with shared convs,
one class) so that the benchmark measures a network of the real detector's shape and cost
(~1 M parameters, ~0.3 GFLOPs at 320x320) without its weights. Its output is decoded into the
raw-head layout (1, A, 4 + 1 + 1) our loader reads, so the timing includes decoding and NMS.
Not used by PoseScope itself; exported to ONNX by benchmarks/detector.py.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class ConvBN(nn.Sequential):
    def __init__(self, cin: int, cout: int, k: int = 1, s: int = 1, groups: int = 1):
        super().__init__(
            nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
            nn.SiLU(inplace=True),
        )


class DWConv(nn.Sequential):
    """Depthwise k x k, then pointwise (MMDetection's DepthwiseSeparableConvModule)."""

    def __init__(self, cin: int, cout: int, k: int = 3, s: int = 1):
        super().__init__(ConvBN(cin, cin, k, s, groups=cin), ConvBN(cin, cout, 1))


class CSPNeXtBlock(nn.Module):
    def __init__(self, c: int, identity: bool):
        super().__init__()
        self.conv1 = DWConv(c, c, 3)
        self.conv2 = DWConv(c, c, 5)
        self.identity = identity

    def forward(self, x):
        y = self.conv2(self.conv1(x))
        return x + y if self.identity else y


class ChannelAttention(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.fc = nn.Conv2d(c, c, 1)
        self.act = nn.Hardsigmoid()

    def forward(self, x):
        return x * self.act(self.fc(x.mean(dim=(2, 3), keepdim=True)))


class CSPLayer(nn.Module):
    def __init__(self, cin: int, cout: int, blocks: int, identity: bool, attention: bool):
        super().__init__()
        mid = cout // 2
        self.main = ConvBN(cin, mid)
        self.short = ConvBN(cin, mid)
        self.blocks = nn.Sequential(*[CSPNeXtBlock(mid, identity) for _ in range(blocks)])
        self.attention = ChannelAttention(2 * mid) if attention else nn.Identity()
        self.final = ConvBN(2 * mid, cout)

    def forward(self, x):
        y = torch.cat([self.blocks(self.main(x)), self.short(x)], dim=1)
        return self.final(self.attention(y))


class SPPF(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        mid = cin // 2
        self.conv1 = ConvBN(cin, mid)
        self.pools = nn.ModuleList(nn.MaxPool2d(k, 1, k // 2) for k in (5, 9, 13))
        self.conv2 = ConvBN(mid * 4, cout)

    def forward(self, x):
        x = self.conv1(x)
        return self.conv2(torch.cat([x, *(p(x) for p in self.pools)], dim=1))


class CSPNeXt(nn.Module):
    """Backbone, P5 arch, deepen 0.33, widen 0.25: outputs strides 8, 16, 32."""

    def __init__(self, deepen: float = 0.33, widen: float = 0.25):
        super().__init__()
        arch = [(64, 128, 3, True, False), (128, 256, 6, True, False),
                (256, 512, 6, True, False), (512, 1024, 3, False, True)]  # fmt: skip
        stem = int(arch[0][0] * widen)
        self.stem = nn.Sequential(
            ConvBN(3, stem // 2, 3, 2), ConvBN(stem // 2, stem // 2, 3), ConvBN(stem // 2, stem, 3)
        )
        self.stages = nn.ModuleList()
        for cin, cout, n, identity, spp in arch:
            cin, cout = int(cin * widen), int(cout * widen)
            n = max(round(n * deepen), 1)
            layers = [DWConv(cin, cout, 3, 2)]
            if spp:
                layers.append(SPPF(cout, cout))
            layers.append(CSPLayer(cout, cout, n, identity, attention=True))
            self.stages.append(nn.Sequential(*layers))

    def forward(self, x):
        x = self.stem(x)
        outs = []
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i >= 1:
                outs.append(x)
        return outs


class PAFPN(nn.Module):
    """CSPNeXtPAFPN: in (64, 128, 256), out 64 per level, one block per CSP layer."""

    def __init__(self, chans=(64, 128, 256), out: int = 64):
        super().__init__()
        c3, c4, c5 = chans
        self.reduce5 = ConvBN(c5, c4)
        self.top4 = CSPLayer(2 * c4, c4, 1, False, False)
        self.reduce4 = ConvBN(c4, c3)
        self.top3 = CSPLayer(2 * c3, c3, 1, False, False)
        self.down3 = DWConv(c3, c3, 3, 2)
        self.bottom4 = CSPLayer(2 * c3, c4, 1, False, False)
        self.down4 = DWConv(c4, c4, 3, 2)
        self.bottom5 = CSPLayer(2 * c4, c5, 1, False, False)
        self.outs = nn.ModuleList(DWConv(c, out, 3) for c in chans)

    def forward(self, feats):
        p3, p4, p5 = feats
        r5 = self.reduce5(p5)
        t4 = self.top4(torch.cat([nn.functional.interpolate(r5, scale_factor=2.0), p4], 1))
        r4 = self.reduce4(t4)
        t3 = self.top3(torch.cat([nn.functional.interpolate(r4, scale_factor=2.0), p3], 1))
        b4 = self.bottom4(torch.cat([self.down3(t3), r4], 1))
        b5 = self.bottom5(torch.cat([self.down4(b4), r5], 1))
        return [conv(x) for conv, x in zip(self.outs, (t3, b4, b5), strict=True)]


class SepBNHead(nn.Module):
    """RTMDetSepBNHead: two depthwise conv stacks (cls, reg) per level, 1x1 predictions."""

    def __init__(self, c: int = 64, classes: int = 1, levels: int = 3):
        super().__init__()
        self.cls = nn.ModuleList(nn.Sequential(DWConv(c, c), DWConv(c, c)) for _ in range(levels))
        self.reg = nn.ModuleList(nn.Sequential(DWConv(c, c), DWConv(c, c)) for _ in range(levels))
        self.cls_pred = nn.ModuleList(nn.Conv2d(c, classes, 1) for _ in range(levels))
        self.reg_pred = nn.ModuleList(nn.Conv2d(c, 4, 1) for _ in range(levels))


class RTMDetNano(nn.Module):
    """(1, 3, 320, 320) normalised BGR -> (1, A, 6) in the raw YOLOX layout: cx, cy offsets
    and log w, h per grid cell, objectness 1, person score."""

    def __init__(self, size: int = 320):
        super().__init__()
        self.backbone = CSPNeXt()
        self.neck = PAFPN()
        self.head = SepBNHead()
        self.size = size

    def forward(self, x):
        outs = []
        feats = self.neck(self.backbone(x))
        for i, f in enumerate(feats):
            cls = self.head.cls_pred[i](self.head.cls[i](f)).sigmoid()
            reg = self.head.reg_pred[i](self.head.reg[i](f))  # distances (l, t, r, b) / stride
            n = f.shape[2] * f.shape[3]
            reg = reg.flatten(2).transpose(1, 2)
            cls = cls.flatten(2).transpose(1, 2)
            xy = (reg[..., 2:] - reg[..., :2]) / 2  # centre offset from the cell, in strides
            wh = torch.log((reg[..., :2] + reg[..., 2:]).abs() + 1e-3)
            outs.append(torch.cat([xy, wh, torch.ones(1, n, 1), cls], dim=2))
        return torch.cat(outs, dim=1)


def build(seed: int = 0) -> RTMDetNano:
    torch.manual_seed(seed)
    m = RTMDetNano().eval()
    for mod in m.modules():  # BN statistics of a trained net, roughly
        if isinstance(mod, nn.BatchNorm2d):
            mod.running_var.fill_(1.0)
            nn.init.uniform_(mod.weight, 0.5, 1.5)
        elif isinstance(mod, nn.Conv2d):
            nn.init.kaiming_normal_(mod.weight, nonlinearity="relu")
            mod.weight.data /= math.sqrt(2)
    for pred in m.head.cls_pred:  # a trained detector is sure of little: few candidates
        nn.init.constant_(pred.bias, -6.0)
    return m


if __name__ == "__main__":
    m = build()
    print(f"{sum(p.numel() for p in m.parameters()) / 1e6:.2f} M params")
    print(m(torch.zeros(1, 3, 320, 320)).shape)
