"""Segmentation networks by name: U-Net and V-Net from MONAI, a TransUNet-style hybrid in torch.

All take ``(N, C, *spatial)`` tensors (2D or 3D) and return ``(N, out_channels, *spatial)``
logits. :func:`build_network` is the one place that turns an architecture name and its
keyword arguments (as stored in a checkpoint) into a module, so loading a model never
executes code from the file.
"""

from __future__ import annotations

import itertools
from typing import Any

import torch
from torch import nn

__all__ = ["ARCHITECTURES", "SIZE_MULTIPLE", "TransUNet", "build_network", "ceil16",
           "for_inference"]

ARCHITECTURES = ("unet", "vnet", "transunet")
SIZE_MULTIPLE = 16  # inputs whose sides are multiples of this pass every network's strides


def ceil16(n: int) -> int:
    """``n`` rounded up to a multiple of :data:`SIZE_MULTIPLE` (16)."""
    return -(-int(n) // SIZE_MULTIPLE) * SIZE_MULTIPLE


def build_network(architecture: str, dims: int, in_channels: int, out_channels: int,
                  **kwargs: Any) -> nn.Module:
    """Build an (untrained) network.

    Parameters
    ----------
    architecture : {"unet", "vnet", "transunet"}
    dims : {2, 3}
        Spatial dimensions.
    in_channels, out_channels : int
    **kwargs
        Architecture options: ``channels`` and ``strides`` for "unet"
        (MONAI ``UNet``), ``base`` / ``layers`` / ``heads`` for "transunet";
        "vnet" is MONAI's ``VNet`` and takes ``dropout_prob``.
    """
    if dims not in (2, 3):
        raise ValueError(f"dims must be 2 or 3, got {dims}.")
    if architecture == "unet":
        from monai.networks.nets import UNet

        channels = tuple(kwargs.pop("channels", (32, 64, 128, 256)))
        strides = tuple(kwargs.pop("strides", (2,) * (len(channels) - 1)))
        return UNet(spatial_dims=dims, in_channels=in_channels, out_channels=out_channels,
                    channels=channels, strides=strides,
                    num_res_units=kwargs.pop("num_res_units", 2), **kwargs)
    if architecture == "vnet":
        from monai.networks.nets import VNet

        # MONAI's VNet works on 16-channel multiples internally; any in/out count is fine.
        return VNet(spatial_dims=dims, in_channels=in_channels, out_channels=out_channels,
                    dropout_prob_down=kwargs.pop("dropout_prob", 0.0),
                    dropout_prob_up=(0.0, 0.0), **kwargs)
    if architecture == "transunet":
        return TransUNet(dims, in_channels, out_channels, **kwargs)
    raise ValueError(f"unknown architecture {architecture!r}; choose one of {ARCHITECTURES}.")


def for_inference(network: nn.Module, dims: int, channels_last: bool = True) -> nn.Module:
    """An inference copy of ``network``: batch norm folded into the convolution before it,
    weights in channels-last layout, which CPUs convolve fastest on large inputs (feed it
    ``x.contiguous(memory_format=torch.channels_last)``); ``network`` is unchanged.
    ``channels_last=False`` keeps the layout: for small inputs, where the layout changes
    cost more than they save (the box + click network's 64x64 crops: 1.5x slower per click
    channels-last on an AVX2 CPU).
    """
    import copy

    copied = copy.deepcopy(network).eval()
    _fold_batch_norm(copied)
    if not channels_last:
        return copied
    return copied.to(memory_format=torch.channels_last if dims == 2 else torch.channels_last_3d)


_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def _fold_batch_norm(network: nn.Module) -> None:
    """Fold, in place, every batch norm that a convolution feeds directly into it: in an
    ``nn.Sequential``, the next module, or the first module of the next one if that is a
    Sequential too (MONAI's Convolution: its conv, then ADN starting with the norm).

    A walk over the module tree, not torch.fx: fx patches ``nn.Module.__call__`` for the
    whole process while it traces, which breaks networks running in other threads
    (a box preview while the tool preloads its networks).
    """
    import itertools

    from torch.nn.utils.fusion import fuse_conv_bn_eval

    for parent in list(network.modules()):
        if not isinstance(parent, nn.Sequential):  # elsewhere the order of use is unknown
            continue
        children = list(parent.named_children())
        for (conv_name, conv), (name, after) in itertools.pairwise(children):
            if not isinstance(conv, _CONVS):
                continue
            holder = parent
            while isinstance(after, nn.Sequential) and len(after):
                holder, (name, after) = after, next(iter(after.named_children()))
            if isinstance(after, _BATCH_NORMS):
                setattr(parent, conv_name, fuse_conv_bn_eval(conv, after))
                setattr(holder, name, nn.Identity())


def _conv(dims: int):
    return nn.Conv2d if dims == 2 else nn.Conv3d


def _norm(dims: int):
    return nn.InstanceNorm2d if dims == 2 else nn.InstanceNorm3d


class _DoubleConv(nn.Sequential):
    def __init__(self, dims: int, cin: int, cout: int):
        conv, norm = _conv(dims), _norm(dims)
        super().__init__(conv(cin, cout, 3, padding=1), norm(cout, affine=True),
                         nn.LeakyReLU(0.01, inplace=True), conv(cout, cout, 3, padding=1),
                         norm(cout, affine=True), nn.LeakyReLU(0.01, inplace=True))


class TransUNet(nn.Module):
    """TransUNet-style hybrid: CNN encoder, transformer on the coarsest features, CNN decoder.

    As in Chen et al. (2021), convolutional stages extract features at 1, 1/2,
    1/4 and 1/8 resolution; the 1/8 features are tokens for a transformer
    encoder, whose output is decoded with skip connections like a U-Net. Position
    is given by a depthwise convolution on the token grid (a conditional positional
    encoding), so any input size divisible by 8 works, in 2D and 3D.

    Parameters
    ----------
    dims : {2, 3}
    in_channels, out_channels : int
    base : int
        Channels of the first stage (doubled per stage; the transformer works at 8x).
    layers, heads : int
        Transformer depth and attention heads.
    """

    def __init__(self, dims: int, in_channels: int, out_channels: int, base: int = 24,
                 layers: int = 4, heads: int = 4):
        super().__init__()
        conv = _conv(dims)
        widths = [base, base * 2, base * 4, base * 8]
        self.down = nn.ModuleList([_DoubleConv(dims, in_channels, widths[0])])
        self.pool = nn.MaxPool2d(2) if dims == 2 else nn.MaxPool3d(2)
        for a, b in itertools.pairwise(widths):
            self.down.append(_DoubleConv(dims, a, b))
        width = widths[-1]
        self.position = conv(width, width, 3, padding=1, groups=width)
        layer = nn.TransformerEncoderLayer(width, heads, dim_feedforward=2 * width, dropout=0.0,
                                           batch_first=True, norm_first=True)
        self.transformer = nn.TransformerEncoder(layer, layers)
        up = nn.ConvTranspose2d if dims == 2 else nn.ConvTranspose3d
        self.up = nn.ModuleList()
        self.merge = nn.ModuleList()
        for a, b in zip(widths[::-1], widths[-2::-1], strict=False):
            self.up.append(up(a, b, 2, stride=2))
            self.merge.append(_DoubleConv(dims, 2 * b, b))
        self.head = conv(widths[0], out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for k, stage in enumerate(self.down):
            x = stage(x if k == 0 else self.pool(x))
            skips.append(x)
        x = x + self.position(x)
        shape = x.shape
        tokens = self.transformer(x.flatten(2).transpose(1, 2))
        x = tokens.transpose(1, 2).reshape(shape)
        for up, merge, skip in zip(self.up, self.merge, skips[-2::-1], strict=True):
            x = merge(torch.cat([up(x), skip], 1))
        return self.head(x)
