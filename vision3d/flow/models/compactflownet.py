"""CompactFlowNet (Znobishchev, Filev, Kudashev, Orlov, Shi; Picsart AI Research; arXiv 2412.13273, Dec 2024):
a PWC-Net-style coarse-to-fine flow network made for phones.

What comes from the paper (abstract, reviews and a figure description; no code was published):
- PWC-Net's structure (Sun et al., CVPR'18): a feature pyramid shared by both frames, at each level a backward
  warp of frame-1 features by the upsampled flow, a local cost volume, and a flow estimator; coarse to fine.
- The estimator is *sequentially connected* (conv -> conv -> ... ) instead of PWC-Net's DenseNet concatenation,
  which the authors found dominates latency and memory on device. Reported channel plan at the lowest level:
  245 -> 128 -> 128 -> 96 -> 64 -> 32 -> 2 (from a machine-generated figure description: medium confidence).
  245 = 81 (cost volume, d = 4) + 160 (MobileNetV3-Large's stride-32 channels) + 2 (flow) + 2 (PWC's "upfeat")
  fits a MobileNetV3-Large pyramid, which the ``paper()`` preset uses. How many levels the paper has is not
  known: in ``paper()`` the stride-32 level is the coarsest, so it has no flow inputs (81 + 160 = 241).
- A MobileNetV3 backbone (depthwise-separable inverted residuals, squeeze-excite, hard-swish).
- Training by knowledge distillation from a larger teacher. **We have no teacher here**: this module trains on
  ground truth with PWC-Net's multi-scale loss; a distillation target can be passed to ``loss`` in place of
  the ground truth by the training script if one becomes available.

What is from PWC-Net: cost volume with max displacement 4 and channel-mean normalisation, LeakyReLU(0.1) in the
estimator, the flow scaled by 1/20 inside the network, prediction at 1/4 resolution upsampled x4 bilinearly,
the dilated context network (dilations 1, 2, 4, 8, 16, 1) at the finest level, the multi-scale loss weights
(0.32, 0.08, 0.02, 0.01, 0.005 for levels 6..2) on area-downsampled ground truth, the robust fine-tuning loss
(|e|_1 + eps)^q with q = 0.4, eps = 0.01.

Our choices (not stated in the paper): the exact block tables (the ``small()`` default is a cut-down
MobileNetV3 whose first bneck already has stride 2, as in MobileNetV3-Small; ``paper()`` is MobileNetV3-Large
up to its 160-channel stride-32 stage); 4 predicted levels (strides 32..4) rather than PWC-Net's 5 (64..4); depthwise-separable convs in the estimator and context network
(``estimator_conv="full"`` gives plain 3x3 convs); residual flow updates (as in FastFlowNet / IRR); bilinear
upsampling of flow and a 1x1 conv + bilinear for the "upfeat" instead of PWC-Net's 4x4 deconvolutions;
ImageNet mean/std input normalisation; flow heads initialised near zero; the loss normalised by pixel count (insensitive to batch size and
resolution, PWC-Net's relative level weights kept) and masked by the validity of the ground truth.

Interface: ``forward(frames (B,2,3,H,W) in [0,1])`` -> in ``eval()`` the flow frame0->frame1 in pixels
``(B,1,2,H,W)``; in ``train()`` a list of per-level flows ``(B,2,H/2^l,W/2^l)`` coarse -> fine, in full-resolution
pixels, which ``loss(outputs, flow_gt (B,1,2,H,W), valid (B,1,H,W))`` consumes. H and W must be multiples of
``stride``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from vision3d.errors import InputError
from vision3d.flow.models.blocks import (
    ConvBNAct,
    DepthwiseSeparableConv,
    FullConv,
    InvertedResidual,
    backward_warp,
    cost_volume,
)

# MobileNetV3 block rows: (kernel, expanded channels, out channels, squeeze-excite, activation RE|HS, stride).
SMALL_ENCODER: tuple[tuple[int, int, int, bool, str, int], ...] = (
    (3, 16, 16, True, "RE", 2),      # stride 4 (MobileNetV3-Small's first bneck: nothing runs at stride 2
    (3, 64, 24, False, "RE", 1),     #           but the stem, which keeps the encoder cheap at high resolution)
    (3, 72, 24, False, "RE", 1),
    (5, 72, 40, True, "RE", 2),      # stride 8
    (5, 120, 40, True, "RE", 1),
    (3, 160, 64, False, "HS", 2),    # stride 16
    (3, 192, 64, False, "HS", 1),
    (5, 256, 96, True, "HS", 2),     # stride 32
    (5, 288, 96, True, "HS", 1),
)

# MobileNetV3-Large (Howard et al. 2019, Table 1) up to the 160-channel stride-32 stage (no final 1x1 / head).
MOBILENETV3_LARGE: tuple[tuple[int, int, int, bool, str, int], ...] = (
    (3, 16, 16, False, "RE", 1),
    (3, 64, 24, False, "RE", 2),
    (3, 72, 24, False, "RE", 1),
    (5, 72, 40, True, "RE", 2),
    (5, 120, 40, True, "RE", 1),
    (5, 120, 40, True, "RE", 1),
    (3, 240, 80, False, "HS", 2),
    (3, 200, 80, False, "HS", 1),
    (3, 184, 80, False, "HS", 1),
    (3, 184, 80, False, "HS", 1),
    (3, 480, 112, True, "HS", 1),
    (3, 672, 112, True, "HS", 1),
    (5, 672, 160, True, "HS", 2),
    (5, 960, 160, True, "HS", 1),
    (5, 960, 160, True, "HS", 1),
)

# PWC-Net's multi-scale loss weight per pyramid level l (stride 2^l).
PWC_LEVEL_WEIGHTS = {2: 0.005, 3: 0.01, 4: 0.02, 5: 0.08, 6: 0.32}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class CompactFlowNetConfig:
    """Architecture and loss settings. ``small()`` (the default) and ``paper()`` are presets.

    Pyramid level ``l`` has stride ``2^l``; the stem gives level 1 and each stride-2 row of ``encoder`` starts the
    next level, so ``encoder`` must hold ``num_levels - 1`` stride-2 rows. Flow is estimated from level
    ``num_levels`` (coarsest) down to ``finest_level`` and upsampled bilinearly to full resolution.
    """

    stem_channels: int = 16
    encoder: tuple[tuple[int, int, int, bool, str, int], ...] = SMALL_ENCODER
    num_levels: int = 5
    finest_level: int = 2
    max_displacement: int = 4
    estimator_channels: tuple[int, ...] = (128, 128, 96, 64, 32)
    estimator_conv: str = "dwsep"               # "dwsep" (depthwise-separable) or "full" (plain 3x3)
    context_channels: tuple[int, ...] = (64, 64, 64, 48, 32)   # () disables the context network
    context_dilations: tuple[int, ...] = (1, 2, 4, 8, 16)
    upfeat_channels: int = 2
    residual: bool = True
    flow_scale: float = 20.0
    loss_type: str = "l2"                       # "l2" (EPE) or "robust" ((|e|_1 + eps)^q)
    loss_weights: tuple[float, ...] | None = None   # coarse -> fine; None: PWC-Net's per-level weights
    robust_q: float = 0.4
    robust_eps: float = 0.01

    def __post_init__(self):
        strides = [int(row[5]) for row in self.encoder]
        n2 = sum(s == 2 for s in strides)
        checks = [
            (all(len(row) == 6 for row in self.encoder), "each encoder row is (kernel, exp, out, se, act, stride)"),
            (all(s in (1, 2) for s in strides), "encoder strides must be 1 or 2"),
            (all(row[4] in ("RE", "HS") and int(row[0]) % 2 == 1 for row in self.encoder),
             "encoder activations must be RE or HS and kernels odd"),
            (n2 == self.num_levels - 1,
             f"encoder has {n2} stride-2 rows; num_levels={self.num_levels} needs {self.num_levels - 1}"),
            (1 <= self.finest_level <= self.num_levels, "need 1 <= finest_level <= num_levels"),
            (self.max_displacement >= 0, "max_displacement must be >= 0"),
            (len(self.estimator_channels) >= 1, "estimator_channels must not be empty"),
            (self.estimator_conv in ("dwsep", "full"), "estimator_conv must be 'dwsep' or 'full'"),
            (len(self.context_channels) == len(self.context_dilations),
             "context_channels and context_dilations must have the same length"),
            (self.loss_type in ("l2", "robust"), "loss_type must be 'l2' or 'robust'"),
            (self.loss_weights is None or len(self.loss_weights) == self.num_levels - self.finest_level + 1,
             "loss_weights needs one weight per predicted level (coarse -> fine)"),
        ]
        for ok, msg in checks:
            if not ok:
                raise InputError(f"bad CompactFlowNet config: {msg}")

    # presets ------------------------------------------------------------------------------------------------
    @classmethod
    def small(cls, **overrides) -> CompactFlowNetConfig:
        """The default: cut-down MobileNetV3 encoder, the paper's estimator plan with depthwise-separable convs
        (0.54 M parameters)."""
        return cls(**overrides)

    @classmethod
    def paper(cls, **overrides) -> CompactFlowNetConfig:
        """Closest to the paper as far as it is known: MobileNetV3-Large encoder, PWC-size context network."""
        base = {"encoder": MOBILENETV3_LARGE, "context_channels": (128, 128, 128, 96, 64, 32),
                "context_dilations": (1, 2, 4, 8, 16, 1)}
        return cls(**{**base, **overrides})

    @classmethod
    def preset(cls, size: str, **overrides) -> CompactFlowNetConfig:
        presets = {"small": cls.small, "paper": cls.paper}
        if size not in presets:
            raise InputError(f"unknown CompactFlowNet size {size!r}", fix=f"use one of {sorted(presets)}")
        return presets[size](**overrides)

    # (de)serialisation ----------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """JSON-ready dict (tuples become lists)."""
        return json.loads(json.dumps(asdict(self)))

    @classmethod
    def from_dict(cls, d: dict | None) -> CompactFlowNetConfig:
        """Inverse of ``to_dict``; an optional ``"size"`` key picks the preset the other keys override."""
        d = dict(d or {})
        size = d.pop("size", "small")
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise InputError(f"unknown CompactFlowNet config keys {unknown}", fix=f"known keys: {sorted(names)}")
        if "encoder" in d:
            rows = [tuple(r) for r in d["encoder"]]
            if any(len(r) != 6 for r in rows):
                raise InputError("bad CompactFlowNet config: each encoder row is (kernel, exp, out, se, act, stride)")
            d["encoder"] = tuple((int(k), int(e), int(o), bool(se), str(a), int(s)) for k, e, o, se, a, s in rows)
        for key in ("estimator_channels", "context_channels", "context_dilations"):
            if key in d:
                d[key] = tuple(int(v) for v in d[key])
        if d.get("loss_weights") is not None:
            d["loss_weights"] = tuple(float(v) for v in d["loss_weights"])
        return cls.preset(size, **d)

    @property
    def levels(self) -> list[int]:
        """Predicted pyramid levels, coarse -> fine."""
        return list(range(self.num_levels, self.finest_level - 1, -1))

    def level_weights(self) -> list[float]:
        """Loss weight per predicted level (coarse -> fine)."""
        if self.loss_weights is not None:
            return [float(w) for w in self.loss_weights]
        return [PWC_LEVEL_WEIGHTS.get(lv, 0.32 * 4.0 ** (lv - 6) if lv > 6 else 0.005) for lv in self.levels]


class MobileEncoder(nn.Module):
    """MobileNetV3-style feature pyramid: ``forward(x)`` -> features of levels 1..num_levels (strides 2..2^L)."""

    def __init__(self, stem_channels: int, rows):
        super().__init__()
        self.stem = ConvBNAct(3, stem_channels, 3, 2, act="HS")
        stages: list[list[nn.Module]] = [[]]
        cin = stem_channels
        for k, exp, out, se, act, s in rows:
            if s == 2:
                stages.append([])
            stages[-1].append(InvertedResidual(cin, k, exp, out, se, act, s))
            cin = out
        self.stages = nn.ModuleList(nn.Sequential(*blocks) for blocks in stages)
        self.channels: list[int] = [stem_channels]     # output channels of level l at index l-1
        for row in rows:
            if row[5] == 2:
                self.channels.append(row[2])
            else:
                self.channels[-1] = row[2]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats


def _conv(kind: str, cin: int, cout: int, dilation: int = 1) -> nn.Module:
    return DepthwiseSeparableConv(cin, cout, 3, dilation) if kind == "dwsep" else FullConv(cin, cout, 3, dilation)


class FlowEstimator(nn.Module):
    """Sequentially connected estimator (the paper's change to PWC-Net): conv chain -> 3x3 conv to 2 channels.

    Returns ``(flow_update, last_features)``; the update is in the network's internal unit (pixels / flow_scale).
    """

    def __init__(self, cin: int, channels, kind: str):
        super().__init__()
        layers, c = [], cin
        for cout in channels:
            layers.append(_conv(kind, c, cout))
            c = cout
        self.body = nn.Sequential(*layers)
        self.head = nn.Conv2d(c, 2, 3, padding=1)
        _small_init(self.head)
        self.out_channels = c

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(x)
        return self.head(h), h


class ContextNetwork(nn.Module):
    """PWC-Net's dilated context network refining the finest flow (residual output)."""

    def __init__(self, cin: int, channels, dilations, kind: str):
        super().__init__()
        layers, c = [], cin
        for cout, dil in zip(channels, dilations):
            layers.append(_conv(kind, c, cout, dil))
            c = cout
        layers.append(nn.Conv2d(c, 2, 3, padding=1))
        _small_init(layers[-1])
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _small_init(conv: nn.Conv2d, gain: float = 0.1) -> None:
    """Flow heads start near zero (weights x0.1, zero bias): the untrained net predicts small flow, not noise of
    ``flow_scale`` pixels; gradients still reach every layer."""
    with torch.no_grad():
        conv.weight.mul_(gain)
        conv.bias.zero_()


def _up2(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)


class CompactFlowNet(nn.Module):
    """CompactFlowNet: see the module docstring. ``CompactFlowNet()`` builds the ``small()`` configuration."""

    name = "compactflownet"
    frames_per_clip = 2
    config_class = CompactFlowNetConfig

    def __init__(self, config: CompactFlowNetConfig | None = None):
        super().__init__()
        cfg = config or CompactFlowNetConfig()
        self.config = cfg
        self.stride = 2 ** cfg.num_levels
        self.encoder = MobileEncoder(cfg.stem_channels, cfg.encoder)
        chans = self.encoder.channels          # index l-1 -> level l
        ncorr = (2 * cfg.max_displacement + 1) ** 2
        self.estimators = nn.ModuleDict()
        self.upfeat = nn.ModuleDict()
        for lv in cfg.levels:
            coarsest = lv == cfg.num_levels
            cin = ncorr + chans[lv - 1] + (0 if coarsest else 2 + cfg.upfeat_channels)
            est = FlowEstimator(cin, cfg.estimator_channels, cfg.estimator_conv)
            self.estimators[str(lv)] = est
            if lv > cfg.finest_level:
                self.upfeat[str(lv)] = nn.Conv2d(est.out_channels, cfg.upfeat_channels, 1)
        self.context = (ContextNetwork(cfg.estimator_channels[-1] + 2, cfg.context_channels,
                                       cfg.context_dilations, cfg.estimator_conv)
                        if cfg.context_channels else None)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    # checkpoints ----------------------------------------------------------------------------------------------
    @classmethod
    def from_config(cls, config: dict | CompactFlowNetConfig | None = None) -> CompactFlowNet:
        """Build from a checkpoint's config dict (see ``CompactFlowNetConfig.from_dict``; ``{}`` = default)."""
        if isinstance(config, CompactFlowNetConfig):
            return cls(config)
        return cls(CompactFlowNetConfig.from_dict(config))

    def config_dict(self) -> dict:
        """The JSON config that ``from_config`` turns back into this architecture."""
        return self.config.to_dict()

    def check_input(self, shape) -> None:
        """Raise ``InputError`` unless ``shape`` is ``(B,2,3,H,W)`` with H and W multiples of ``stride``."""
        if len(shape) != 5 or shape[1] != 2 or shape[2] != 3:
            raise InputError(f"CompactFlowNet takes frames (B,2,3,H,W), got {tuple(shape)}")
        if shape[-2] % self.stride or shape[-1] % self.stride:
            raise InputError(f"CompactFlowNet needs H and W multiples of {self.stride}, got {shape[-2]}x{shape[-1]}",
                             fix="pad the frames (vision3d.flow.learned pads for you)")

    # forward --------------------------------------------------------------------------------------------------
    def forward(self, frames: torch.Tensor):
        """``frames (B,2,3,H,W)`` in [0,1] -> eval: ``(B,1,2,H,W)`` flow in pixels; train: list of level flows."""
        if not torch.jit.is_tracing():   # shape checks only (no data-dependent control flow)
            self.check_input(frames.shape)
        cfg = self.config
        b = frames.shape[0]
        x = (torch.cat([frames[:, 0], frames[:, 1]], dim=0) - self.mean) / self.std
        feats = self.encoder(x)
        preds: list[torch.Tensor] = []
        flow = upflow = upfeat = hidden = None
        for lv in cfg.levels:
            f = feats[lv - 1]
            f1, f2 = f[:b], f[b:]
            if upflow is None:
                corr = cost_volume(f1, f2, cfg.max_displacement)
                inp = torch.cat([F.leaky_relu(corr, 0.1), f1], dim=1)
            else:
                f2w = backward_warp(f2, upflow * (1.0 / 2 ** lv))
                corr = cost_volume(f1, f2w, cfg.max_displacement)
                inp = torch.cat([F.leaky_relu(corr, 0.1), f1, upflow * (1.0 / cfg.flow_scale), upfeat], dim=1)
            delta, hidden = self.estimators[str(lv)](inp)
            flow = delta * cfg.flow_scale
            if cfg.residual and upflow is not None:
                flow = flow + upflow
            if lv == cfg.finest_level and self.context is not None:
                flow = flow + self.context(torch.cat([hidden, flow * (1.0 / cfg.flow_scale)], dim=1)) * cfg.flow_scale
            preds.append(flow)
            if lv > cfg.finest_level:
                upflow = _up2(flow)
                upfeat = _up2(self.upfeat[str(lv)](hidden))
        if self.training:
            return preds
        full = F.interpolate(flow, scale_factor=float(2 ** cfg.finest_level), mode="bilinear", align_corners=False)
        return full.unsqueeze(1)

    # loss -----------------------------------------------------------------------------------------------------
    @staticmethod
    def downsample_gt(flow_gt: torch.Tensor, valid: torch.Tensor, size) -> tuple[torch.Tensor, torch.Tensor]:
        """Area-downsample ``flow_gt (B,2,H,W)`` (pixels, values kept in full-resolution units) over valid pixels
        to ``size``; returns ``(flow, weight)`` with ``weight (B,1,h,w)`` the fraction of valid pixels."""
        size = (int(size[0]), int(size[1]))
        v = valid.unsqueeze(1).to(flow_gt.dtype)
        if tuple(flow_gt.shape[-2:]) == size:
            return flow_gt, v
        wsum = F.adaptive_avg_pool2d(v, size)
        fsum = F.adaptive_avg_pool2d(flow_gt * v, size)
        return fsum / wsum.clamp_min(1e-6), wsum

    def multiscale_targets(self, flow_gt: torch.Tensor, valid: torch.Tensor | None, sizes):
        """Ground truth for each predicted level: list of ``(flow (B,2,h,w), weight (B,1,h,w))`` for ``sizes``."""
        flow_gt, valid = _gt_layout(flow_gt, valid)
        return [self.downsample_gt(flow_gt, valid, s) for s in sizes]

    def loss(self, outputs, flow_gt: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        """PWC-Net multi-scale loss: ``sum_l a_l sum_x v_l(x) e_l(x) / sum_l a_l N_l``.

        ``e`` is the L2 end-point error (``loss_type="l2"``) or ``(|d|_1 + eps)^q`` (``"robust"``), in pixels of
        the full resolution, against ground truth area-downsampled over valid pixels; ``N_l`` is the pixel count of
        level ``l`` (batch included). With PWC-Net's weights this is PWC-Net's loss up to one constant factor, and
        it reads as a level-weighted mean EPE. ``outputs``: the train-mode list, or an eval-mode ``(B,1,2,H,W)``.
        ``flow_gt (B,1,2,H,W)`` or ``(B,2,H,W)``; ``valid (B,1,H,W)``/``(B,H,W)`` (None: all valid).
        """
        cfg = self.config
        if isinstance(outputs, torch.Tensor):
            preds, weights = [outputs[:, 0] if outputs.dim() == 5 else outputs], [1.0]
        else:
            preds, weights = list(outputs), cfg.level_weights()
            if len(preds) != len(weights):
                raise InputError(f"loss got {len(preds)} predictions, the config has {len(weights)} levels")
        targets = self.multiscale_targets(flow_gt, valid, [p.shape[-2:] for p in preds])
        num = preds[0].new_zeros(())
        den = 0.0
        for p, (g, v), a in zip(preds, targets, weights):
            d = p - g
            if cfg.loss_type == "l2":
                e = torch.sqrt((d * d).sum(dim=1, keepdim=True) + 1e-12) - 1e-6
            else:
                e = (d.abs().sum(dim=1, keepdim=True) + cfg.robust_eps) ** cfg.robust_q - cfg.robust_eps ** cfg.robust_q
            num = num + a * (e * v).sum()
            den += a * p.shape[0] * p.shape[-2] * p.shape[-1]
        return num / den


def _gt_layout(flow_gt: torch.Tensor, valid: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(B,1,2,H,W)``/``(B,2,H,W)`` flow and ``(B,1,H,W)``/``(B,H,W)``/None valid -> ``(B,2,H,W)``, ``(B,H,W)``."""
    if flow_gt.dim() == 5:
        flow_gt = flow_gt[:, 0]
    if flow_gt.dim() != 4 or flow_gt.shape[1] != 2:
        raise InputError(f"flow_gt must be (B,1,2,H,W) or (B,2,H,W), got {tuple(flow_gt.shape)}")
    if valid is None:
        valid = torch.ones_like(flow_gt[:, 0])
    elif valid.dim() == 4:
        valid = valid[:, 0]
    if tuple(valid.shape) != (flow_gt.shape[0], *flow_gt.shape[-2:]):
        raise InputError(f"valid must be (B,1,H,W) matching flow_gt, got {tuple(valid.shape)}")
    return flow_gt, valid


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


__all__ = ["CompactFlowNet", "CompactFlowNetConfig", "count_parameters"]
