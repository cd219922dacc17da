"""An independent reference of the published networks, for making checkpoints and parity checks.

Mirrors the published code (ConvNeXtPose, 3DMPPE PoseNet and RootNet) so that module names are
the published `state_dict` names; see docs/checkpoints.md. Torch only; written without looking
at the engine's own model (core/families/), so the two can be checked against each other.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from posescope.core.variants import RESNET_LAYERS, VARIANTS, Variant

SPELLINGS = ("modern", "legacy", "list")

# --------------------------------------------------------------------------------------------
# ConvNeXt with BatchNorm (the ConvNeXtPose backbone)


class Block(nn.Module):
    """ConvNeXt block with BN and no layer scale: x + pwconv2(relu(pwconv1(norm(dwconv(x)))))."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = nn.BatchNorm2d(dim)
        self.pwconv1 = nn.Conv2d(dim, 4 * dim, kernel_size=1)
        self.act = nn.ReLU()
        self.pwconv2 = nn.Conv2d(4 * dim, dim, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dwconv(x)
        y = self.norm(y)
        y = self.pwconv1(y)
        y = self.act(y)
        y = self.pwconv2(y)
        return x + y


class ConvNeXtBN(nn.Module):
    """ConvNeXt backbone: stem /4, three /2 downsamplings, BN after the last stage (stride 32)."""

    def __init__(self, depths: Sequence[int], dims: Sequence[int]) -> None:
        super().__init__()
        self.downsample_layers = nn.ModuleList()
        self.downsample_layers.append(
            nn.Sequential(nn.Conv2d(3, dims[0], kernel_size=4, stride=4), nn.BatchNorm2d(dims[0]))
        )
        for i in range(1, 4):
            self.downsample_layers.append(
                nn.Sequential(
                    nn.BatchNorm2d(dims[i - 1]),
                    nn.Conv2d(dims[i - 1], dims[i], kernel_size=2, stride=2),
                )
            )
        self.stages = nn.ModuleList(
            nn.Sequential(*(Block(dims[i]) for _ in range(depths[i]))) for i in range(4)
        )
        self.norm = nn.BatchNorm2d(dims[3])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i in range(4):
            x = self.downsample_layers[i](x)
            x = self.stages[i](x)
        return self.norm(x)


# --------------------------------------------------------------------------------------------
# ConvNeXtPose head, in its three spellings


class DeConv(nn.Module):
    """Depthwise kxk conv, BN, 1x1 conv, ReLU, then bilinear x2 (align_corners) if `up`."""

    def __init__(self, inplanes: int, planes: int, kernel_size: int = 3, up: bool = True) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(
            inplanes, inplanes, kernel_size=kernel_size, padding=kernel_size // 2, groups=inplanes
        )
        self.norm = nn.BatchNorm2d(inplanes)
        self.pwconv = nn.Conv2d(inplanes, planes, kernel_size=1)
        self.act = nn.ReLU()
        self.upsample1 = nn.UpsamplingBilinear2d(scale_factor=2) if up else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dwconv(x)
        x = self.norm(x)
        x = self.pwconv(x)
        x = self.act(x)
        return self.upsample1(x)


def legacy_deconv(inplanes: int, planes: int, kernel_size: int = 3, up: bool = True) -> nn.Module:
    """Legacy DeConv: a Sequential, so keys are .0 (dwconv), .1 (norm), .2 (pwconv)."""
    return nn.Sequential(
        nn.Conv2d(
            inplanes, inplanes, kernel_size=kernel_size, padding=kernel_size // 2, groups=inplanes
        ),
        nn.BatchNorm2d(inplanes),
        nn.Conv2d(inplanes, planes, kernel_size=1),
        nn.ReLU(),
        nn.UpsamplingBilinear2d(scale_factor=2) if up else nn.Identity(),
    )


class HeadNet(nn.Module):
    """`deconv_layers_1..n` (all but the last upsample) and `final_layer` (J*D channels).

    spelling "modern" uses DeConv children (dwconv/norm/pwconv), "legacy" Sequentials (0/1/2).
    """

    def __init__(
        self,
        joint_num: int,
        in_channel: int,
        channels: Sequence[int] = (256, 256, 256),
        depth_dim: int = 64,
        kernels: Sequence[int] = (3, 3, 3),
        spelling: str = "modern",
    ) -> None:
        super().__init__()
        if spelling not in ("modern", "legacy"):
            raise ValueError(f"HeadNet spelling must be modern or legacy, not {spelling!r}")
        make = DeConv if spelling == "modern" else legacy_deconv
        self.num_layers = len(channels)
        inplanes = in_channel
        for i, (planes, k) in enumerate(zip(channels, kernels, strict=True)):
            up = i < len(channels) - 1
            setattr(self, f"deconv_layers_{i + 1}", make(inplanes, planes, k, up))
            inplanes = planes
        self.final_layer = nn.Conv2d(inplanes, joint_num * depth_dim, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i in range(self.num_layers):
            x = getattr(self, f"deconv_layers_{i + 1}")(x)
        return self.final_layer(x)


class ListHeadNet(nn.Module):
    """The community "list" spelling: `deconv_layers.{0..n-1}`, every layer upsamples."""

    def __init__(
        self,
        joint_num: int,
        in_channel: int,
        channels: Sequence[int] = (256, 256, 256),
        depth_dim: int = 64,
        kernels: Sequence[int] = (3, 3, 3),
    ) -> None:
        super().__init__()
        layers = []
        inplanes = in_channel
        for planes, k in zip(channels, kernels, strict=True):
            layers.append(DeConv(inplanes, planes, k, up=True))
            inplanes = planes
        self.deconv_layers = nn.ModuleList(layers)
        self.final_layer = nn.Conv2d(inplanes, joint_num * depth_dim, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.deconv_layers:
            x = layer(x)
        return self.final_layer(x)


def soft_argmax(heatmaps: torch.Tensor, joint_num: int, depth_dim: int) -> torch.Tensor:
    """Integral regression as published: (N, J*D, H, W) -> (N, J, 3) as (x, y, z) in bins."""
    height, width = heatmaps.shape[2], heatmaps.shape[3]
    heatmaps = heatmaps.reshape((-1, joint_num, depth_dim * height * width))
    heatmaps = F.softmax(heatmaps, 2)
    heatmaps = heatmaps.reshape((-1, joint_num, depth_dim, height, width))

    accu_x = heatmaps.sum(dim=(2, 3))
    accu_y = heatmaps.sum(dim=(2, 4))
    accu_z = heatmaps.sum(dim=(3, 4))

    accu_x = accu_x * torch.arange(width, device=heatmaps.device).float()[None, None, :]
    accu_y = accu_y * torch.arange(height, device=heatmaps.device).float()[None, None, :]
    accu_z = accu_z * torch.arange(depth_dim, device=heatmaps.device).float()[None, None, :]

    accu_x = accu_x.sum(dim=2, keepdim=True)
    accu_y = accu_y.sum(dim=2, keepdim=True)
    accu_z = accu_z.sum(dim=2, keepdim=True)
    return torch.cat((accu_x, accu_y, accu_z), dim=2)


class ConvNeXtPose(nn.Module):
    """backbone -> head -> soft-argmax; forward gives (N, J, 3) in heatmap/depth-bin units."""

    def __init__(self, backbone: nn.Module, head: nn.Module, joint_num: int, depth_dim: int):
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.joint_num = joint_num
        self.depth_dim = depth_dim

    def forward(self, input_img: torch.Tensor) -> torch.Tensor:
        fm = self.backbone(input_img)
        hm = self.head(fm)
        return soft_argmax(hm, self.joint_num, self.depth_dim)


def make_convnextpose(
    depths: Sequence[int],
    dims: Sequence[int],
    head_channels: Sequence[int],
    depth_dim: int,
    joint_num: int = 18,
    kernels: Sequence[int] | None = None,
    spelling: str = "modern",
) -> ConvNeXtPose:
    """A ConvNeXtPose of any shape; `spelling` picks the head's key layout (and upsampling)."""
    if kernels is None:
        kernels = (3,) * len(head_channels)
    backbone = ConvNeXtBN(depths, dims)
    if spelling == "list":
        head: nn.Module = ListHeadNet(joint_num, dims[-1], head_channels, depth_dim, kernels)
    else:
        head = HeadNet(joint_num, dims[-1], head_channels, depth_dim, kernels, spelling)
    return ConvNeXtPose(backbone, head, joint_num, depth_dim).eval()


def make_from_variant(variant: Variant, spelling: str = "modern") -> ConvNeXtPose:
    """A ConvNeXtPose built from a `core.variants.Variant` (published or made up)."""
    return make_convnextpose(
        variant.depths,
        variant.dims,
        variant.head_channels,
        variant.depth_dim,
        variant.joint_num,
        (variant.head_kernel,) * len(variant.head_channels),
        spelling,
    )


def make_variant(name: str, spelling: str = "modern") -> ConvNeXtPose:
    """One of the published variants "XS", "S", "M", "L" (default init; see `randomize_`)."""
    return make_from_variant(VARIANTS[name], spelling)


# --------------------------------------------------------------------------------------------
# 3DMPPE: torchvision-style ResNet, PoseNet and RootNet


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(
        self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + residual)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(
        self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + residual)


class ResNetBackbone(nn.Module):
    """torchvision ResNet without avgpool/fc (3DMPPE `ResNetBackbone`); output stride 32."""

    def __init__(self, depth: int = 50) -> None:
        super().__init__()
        block: type[BasicBlock | Bottleneck] = BasicBlock if depth < 50 else Bottleneck
        layers = RESNET_LAYERS[depth]
        self.inplanes = 64
        self.out_channels = 512 * block.expansion
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2)

    def _make_layer(
        self, block: type[BasicBlock | Bottleneck], planes: int, blocks: int, stride: int = 1
    ) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        return self.layer4(x)


def deconv_stack(inplanes: int = 2048, outplanes: int = 256, num_layers: int = 3) -> nn.Sequential:
    """3DMPPE `_make_deconv_layer`: [ConvTranspose2d(k4, s2, p1, no bias), BN, ReLU] x n."""
    layers: list[nn.Module] = []
    for _ in range(num_layers):
        layers.append(
            nn.ConvTranspose2d(
                inplanes, outplanes, 4, stride=2, padding=1, output_padding=0, bias=False
            )
        )
        layers.append(nn.BatchNorm2d(outplanes))
        layers.append(nn.ReLU(inplace=True))
        inplanes = outplanes
    return nn.Sequential(*layers)


class PoseNetHead(nn.Module):
    """3DMPPE PoseNet head: three x2 deconvolutions, then a 1x1 conv to J*D channels."""

    def __init__(self, joint_num: int, depth_dim: int = 64, in_channels: int = 2048) -> None:
        super().__init__()
        self.deconv_layers = deconv_stack(in_channels, 256, 3)
        self.final_layer = nn.Conv2d(256, joint_num * depth_dim, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.final_layer(self.deconv_layers(x))


class PoseNet(nn.Module):
    """3DMPPE ResPoseNet: (N, 3, H, W) -> (N, J, 3)."""

    def __init__(self, backbone: nn.Module, head: nn.Module, joint_num: int, depth_dim: int = 64):
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.joint_num = joint_num
        self.depth_dim = depth_dim

    def forward(self, input_img: torch.Tensor) -> torch.Tensor:
        hm = self.head(self.backbone(input_img))
        return soft_argmax(hm, self.joint_num, self.depth_dim)


class RootNetHead(nn.Module):
    """3DMPPE RootNet head: x, y by soft-argmax on a 1-channel map; gamma from pooled features."""

    def __init__(self, in_channels: int = 2048) -> None:
        super().__init__()
        self.deconv_layers = deconv_stack(in_channels, 256, 3)
        self.xy_layer = nn.Conv2d(256, 1, kernel_size=1, stride=1, padding=0)
        self.depth_layer = nn.Conv2d(in_channels, 1, kernel_size=1, stride=1, padding=0)

    def forward(self, x: torch.Tensor, k_value: torch.Tensor) -> torch.Tensor:
        # x, y
        xy = self.deconv_layers(x)
        xy = self.xy_layer(xy)
        height, width = xy.shape[2], xy.shape[3]
        xy = xy.view(-1, 1, height * width)
        xy = F.softmax(xy, 2)
        xy = xy.view(-1, 1, height, width)
        hm_x = xy.sum(dim=2)
        hm_y = xy.sum(dim=3)
        coord_x = hm_x * torch.arange(width, device=xy.device).float()
        coord_y = hm_y * torch.arange(height, device=xy.device).float()
        coord_x = coord_x.sum(dim=2)
        coord_y = coord_y.sum(dim=2)
        # z
        img_feat = torch.mean(x.view(x.size(0), x.size(1), x.size(2) * x.size(3)), dim=2)
        img_feat = torch.unsqueeze(img_feat, 2)
        img_feat = torch.unsqueeze(img_feat, 3)
        gamma = self.depth_layer(img_feat)
        gamma = gamma.view(-1, 1)
        depth = gamma * k_value.view(-1, 1)
        return torch.cat((coord_x, coord_y, depth), dim=1)


class RootNet(nn.Module):
    """3DMPPE RootNet (ResPoseNet with `root`): (N, 3, H, W), k (N,) -> (N, 3) = x, y, depth."""

    def __init__(self, backbone: nn.Module, root: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.root = root

    def forward(self, input_img: torch.Tensor, k_value: torch.Tensor) -> torch.Tensor:
        fm = self.backbone(input_img)
        return self.root(fm, k_value)


class ResNetClassifier(nn.Module):
    """A torchvision-style ResNet classifier (keys conv1.*, layer1.*, fc.*): not a pose net."""

    def __init__(self, depth: int = 18, num_classes: int = 1000) -> None:
        super().__init__()
        backbone = ResNetBackbone(depth)
        for name in ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"):
            setattr(self, name, getattr(backbone, name))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(backbone.out_channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def make_posenet(depth: int = 50, joint_num: int = 18, depth_dim: int = 64) -> PoseNet:
    backbone = ResNetBackbone(depth)
    head = PoseNetHead(joint_num, depth_dim, backbone.out_channels)
    return PoseNet(backbone, head, joint_num, depth_dim).eval()


def make_rootnet(depth: int = 50) -> RootNet:
    backbone = ResNetBackbone(depth)
    return RootNet(backbone, RootNetHead(backbone.out_channels)).eval()


# --------------------------------------------------------------------------------------------
# Random but sane weights


def _fan_in(module: nn.Module) -> int:
    w = module.weight
    if isinstance(module, nn.ConvTranspose2d):
        # each output pixel sums in_channels * (k / stride)^2 inputs
        k = math.prod(module.kernel_size) / math.prod(module.stride)
        return max(1, int(module.in_channels * k / module.groups))
    return max(1, w[0].numel())


@torch.no_grad()
def randomize_(module: nn.Module, seed: int = 0) -> nn.Module:
    """Random weights that keep activations in range through deep nets; returns `module`.

    Convs/linears ~ N(0, 1/fan_in) (halved on the last conv of a residual branch, x5 on the
    heatmap layers so that soft-argmax is far from uniform), biases small,
    BN weight ~ U(0.8, 1.2), bias ~ N(0, 0.05), running_mean ~ N(0, 0.1), running_var ~
    U(0.5, 1.5) (255 and 255² times that for the BN after the first conv, as a file
    trained on the published 0..255 input has), num_batches_tracked a positive count.
    """
    g = torch.Generator().manual_seed(seed)

    def normal(t: torch.Tensor, std: float, mean: float = 0.0) -> None:
        t.normal_(mean, std, generator=g)

    def uniform(t: torch.Tensor, lo: float, hi: float) -> None:
        t.uniform_(lo, hi, generator=g)

    residual_ends = set()
    for m in module.modules():
        if isinstance(m, Block):
            residual_ends.add(id(m.pwconv2))
        elif isinstance(m, Bottleneck):
            residual_ends.add(id(m.bn3))
        elif isinstance(m, BasicBlock):
            residual_ends.add(id(m.bn2))
    for name, m in module.named_modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
            gain = 0.5 if id(m) in residual_ends else 1.0
            if name.endswith(("final_layer", "xy_layer")):
                gain = 5.0  # peaked heatmaps, so that soft-argmax results are informative
            normal(m.weight, gain / math.sqrt(_fan_in(m)))
            if m.bias is not None:
                normal(m.bias, 0.01)
        elif isinstance(m, nn.BatchNorm2d):
            if id(m) in residual_ends:
                uniform(m.weight, 0.2, 0.4)
            else:
                uniform(m.weight, 0.8, 1.2)
            normal(m.bias, 0.05)
            assert m.running_mean is not None and m.running_var is not None
            normal(m.running_mean, 0.1)
            uniform(m.running_var, 0.5, 1.5)
            if m.num_batches_tracked is not None:
                m.num_batches_tracked.fill_(1000 + seed)
    # The BN after the first conv records the pixel scale of the training inputs: a file
    # trained on the published 0..255 input has running statistics ~255x (variance 255²x)
    # those of 0..1 inputs. Random files look like published ones (the engine reads this:
    # core/families/input_convention.py); tests/calibration.py measures real statistics.
    for m in module.modules():
        stem = _stem_norm(m)
        if stem is not None:
            assert stem.running_mean is not None and stem.running_var is not None
            stem.running_mean.mul_(255.0)
            stem.running_var.mul_(255.0**2)
    return module


def _stem_norm(m: nn.Module) -> nn.BatchNorm2d | None:
    """The BatchNorm right after a backbone's first conv, or None for other modules."""
    if isinstance(m, ConvNeXtBN):
        return m.downsample_layers[0][1]  # type: ignore[index, return-value]
    if isinstance(m, ResNetBackbone | ResNetClassifier):
        return m.bn1
    return None
