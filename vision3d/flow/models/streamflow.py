"""StreamFlow (Sun et al., NeurIPS 2024, arXiv 2311.17099): multi-frame optical flow, T-1 flows in one pass.

Pipeline ("SIM", simultaneous in-batch multi-frame), following the official code (littlespray/StreamFlow,
``SKFlow_MF8`` + ``Twins_CSC`` + ``SKUpdateBlock_TAM_v3``):

1. frames ``(B,T,3,H,W)`` in [0,1] → [-1,1];
2. ISC encoders (``streamflow_encoder``): a Twins-SVT (first two stages, stride 8) whose attention runs over the
   tokens of all frames jointly; the feature net sees frames 0..T-1, the context net frames 0..T-2;
3. RAFT all-pairs correlation for the T-1 adjacent pairs only (4 levels, radius 4), batched as B·(T-1) pairs;
4. GTR decoder (``streamflow_decoder``): SKFlow motion encoder + GMA + zero-initialised temporal transformer +
   PCBlock update + joint flow head over the T-1 flows, iterated ``iters`` times, RAFT convex ×8 upsampling;
5. loss: RAFT sequence loss (L1, γ = 0.8, |flow| < 400), summed over the T-1 flows.

``StreamFlowConfig.small()`` (the default) is a CPU-trainable reduction; ``StreamFlowConfig.paper()`` is the
published model (Twins-SVT-Large stages 1-2, 128-d hidden/context, k_conv (1, 15), T = 4, 12/15 iterations).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
from torch import nn

from vision3d.errors import InputError
from vision3d.flow.models.streamflow_decoder import CorrPyramid, GMAAttention, GTRUpdateBlock, convex_upsample
from vision3d.flow.models.streamflow_encoder import ISCEncoder

__all__ = ["StreamFlow", "StreamFlowConfig", "sequence_loss"]


@dataclass
class StreamFlowConfig:
    """Hyper-parameters; the defaults are ``small()``. Hidden and context width are each half the encoder's
    output width (``encoder_dims[-1]``), as in the paper (256 → 128 + 128)."""

    T: int = 3                                   # frames per clip; the model predicts T-1 flows t → t+1
    encoder_dims: tuple[int, ...] = (32, 64)     # Twins stage widths (paper: Twins-SVT-L 128, 256)
    encoder_heads: tuple[int, ...] = (1, 2)      # (4, 8)
    encoder_depths: tuple[int, ...] = (2, 2)     # LSA + GSA per stage
    encoder_sr_ratios: tuple[int, ...] = (4, 2)  # GSA key sub-sampling (8, 4)
    encoder_mlp_ratio: float = 2.0               # 4
    encoder_window: int = 7                      # LSA window
    motion_dims: tuple[int, ...] = (64, 48, 32, 16)  # SKFlow motion encoder (256, 192, 128, 64)
    k_conv: tuple[int, ...] = (1, 7)             # depthwise kernels of the motion encoder / flow head (1, 15)
    update_k_conv: tuple[int, ...] = (1, 5)      # kernels of the PCBlock update ("GRU") (1, 7)
    corr_levels: int = 4
    corr_radius: int = 3                         # 4 (3 keeps small's first motion PCBlock at 196 channels, as RAFT-small)
    use_gma: bool = True
    gma_heads: int = 1
    temporal_heads: int = 1
    temporal_mlp_ratio: float = 2.0
    iters: int = 6                               # refinement steps in train() mode (paper 12)
    eval_iters: int = 8                          # in eval() mode (paper 15)
    gamma: float = 0.8                           # sequence-loss decay
    max_flow: float = 400.0                      # ground truth above this magnitude is ignored

    @classmethod
    def small(cls) -> StreamFlowConfig:
        """About 0.8 M parameters, ~12 GFLOP per forward at 256×192 (T = 3, 6 iterations): CPU-trainable."""
        return cls()

    @classmethod
    def paper(cls) -> StreamFlowConfig:
        """The published StreamFlow (official ``scripts/infer.sh``: T = 4, 15 iterations at test time)."""
        return cls(T=4, encoder_dims=(128, 256), encoder_heads=(4, 8), encoder_depths=(2, 2),
                   encoder_sr_ratios=(8, 4), encoder_mlp_ratio=4.0, encoder_window=7,
                   motion_dims=(256, 192, 128, 64), k_conv=(1, 15), update_k_conv=(1, 7),
                   corr_levels=4, corr_radius=4, use_gma=True, gma_heads=1, temporal_heads=1,
                   temporal_mlp_ratio=2.0, iters=12, eval_iters=15, gamma=0.8, max_flow=400.0)

    @classmethod
    def preset(cls, name: str) -> StreamFlowConfig:
        """``"small"`` or ``"paper"``."""
        presets = {"small": cls.small, "paper": cls.paper}
        if name not in presets:
            raise InputError(f"unknown StreamFlow preset {name!r}", fix=f"use one of {sorted(presets)}")
        return presets[name]()

    @property
    def hidden_dim(self) -> int:
        return self.encoder_dims[-1] // 2

    @property
    def context_dim(self) -> int:
        return self.encoder_dims[-1] - self.hidden_dim

    def validate(self) -> None:
        if self.T < 2:
            raise InputError(f"StreamFlow needs T >= 2 frames per clip, got {self.T}")
        if len(self.encoder_dims) != 2:
            raise InputError("the StreamFlow encoder has exactly two Twins stages (output stride 8)",
                             fix="give two encoder_dims")
        n = len(self.encoder_dims)
        for f in ("encoder_heads", "encoder_depths", "encoder_sr_ratios"):
            if len(getattr(self, f)) != n:
                raise InputError(f"{f} needs one entry per encoder stage ({n})")
        if self.encoder_dims[-1] % 2 or self.hidden_dim % self.gma_heads or self.hidden_dim % self.temporal_heads:
            raise InputError("encoder_dims[-1] must be even and its half divisible by gma_heads/temporal_heads")
        if len(self.motion_dims) != 4:
            raise InputError("motion_dims are (corr1, corr2, flow1, flow2)")
        if any(k % 2 == 0 for k in (*self.k_conv, *self.update_k_conv)):
            raise InputError("k_conv / update_k_conv kernels must be odd")
        if min(self.iters, self.eval_iters, self.corr_levels) < 1 or self.corr_radius < 0:
            raise InputError("iters, eval_iters and corr_levels must be >= 1, corr_radius >= 0")

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> StreamFlowConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise InputError(f"unknown StreamFlow config keys {unknown}", fix=f"known keys: {sorted(known)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


def sequence_loss(preds, flow_gt: torch.Tensor, valid: torch.Tensor, gamma: float = 0.8,
                  max_flow: float = 400.0) -> torch.Tensor:
    """RAFT sequence loss over the T-1 flows of a clip.

    ``preds``: a list of ``(B,T-1,2,H,W)`` (one per iteration) or one such tensor; iteration i of N weighs
    ``gamma**(N-1-i)``. The per-pixel error is the L1 error averaged over (x, y), as in RAFT; each flow t is
    averaged over its valid pixels (valid ≥ 0.5 and |gt| < max_flow) across the batch, and the T-1 flows are
    summed (official ``train_mf.py`` sums the per-flow losses). RAFT's ``.mean()`` divides by all pixels
    instead; with everything valid the two agree.
    """
    if isinstance(preds, torch.Tensor):
        preds = [preds]
    if not preds:
        raise InputError("no flow predictions to compute a loss on")
    if flow_gt.dim() != 5 or flow_gt.shape[2] != 2:
        raise InputError(f"flow_gt must be (B,T-1,2,H,W), got {tuple(flow_gt.shape)}")
    if tuple(valid.shape) != (flow_gt.shape[0], flow_gt.shape[1], *flow_gt.shape[3:]):
        raise InputError(f"valid must be (B,T-1,H,W) matching flow_gt, got {tuple(valid.shape)}")
    gt = torch.nan_to_num(flow_gt.float())
    mask = (valid.float() >= 0.5) & (gt.square().sum(dim=2).sqrt() < max_flow) & torch.isfinite(flow_gt).all(2)
    count = mask.sum(dim=(0, 2, 3)).clamp_min(1)                                  # valid pixels per flow t
    n = len(preds)
    total = gt.new_zeros(())
    for i, p in enumerate(preds):
        if p.shape != flow_gt.shape:
            raise InputError(f"prediction {i} has shape {tuple(p.shape)}, ground truth {tuple(flow_gt.shape)}")
        err = torch.where(mask, (p - gt).abs().mean(dim=2), torch.zeros((), dtype=p.dtype, device=p.device))
        total = total + gamma ** (n - 1 - i) * (err.sum(dim=(0, 2, 3)) / count).sum()
    return total


class StreamFlow(nn.Module):
    """StreamFlow: ``forward(frames (B,T,3,H,W) in [0,1])`` → T-1 flows ``(B,T-1,2,H,W)`` (pixels, x first,
    frame t → t+1). In ``eval()`` mode the final iteration's flow; in ``train()`` mode a list with one flow per
    iteration. H and W must be multiples of ``stride`` (8) and at least ``min_size`` (64 with 4 levels)."""

    name = "streamflow"
    stride = 8
    config_class = StreamFlowConfig

    def __init__(self, config: StreamFlowConfig | None = None):
        super().__init__()
        cfg = StreamFlowConfig.small() if config is None else config
        cfg.validate()
        self.config = cfg
        self.frames_per_clip = cfg.T
        enc = {"dims": cfg.encoder_dims, "heads": cfg.encoder_heads, "depths": cfg.encoder_depths,
               "sr_ratios": cfg.encoder_sr_ratios, "mlp_ratio": cfg.encoder_mlp_ratio, "window": cfg.encoder_window}
        self.fnet = ISCEncoder(**enc)
        self.cnet = ISCEncoder(**enc)
        hd, cd = cfg.hidden_dim, cfg.context_dim
        self.att = GMAAttention(cd, heads=cfg.gma_heads, dim_head=cd) if cfg.use_gma else None
        self.update_block = GTRUpdateBlock(
            hidden_dim=hd, n_flows=cfg.T - 1, corr_planes=cfg.corr_levels * (2 * cfg.corr_radius + 1) ** 2,
            motion_dims=cfg.motion_dims, k_conv=cfg.k_conv, update_k_conv=cfg.update_k_conv,
            gma_heads=cfg.gma_heads, use_gma=cfg.use_gma, temporal_heads=cfg.temporal_heads,
            temporal_mlp_ratio=cfg.temporal_mlp_ratio, upsample=self.stride)

    @property
    def min_size(self) -> int:
        return self.stride * 2 ** (self.config.corr_levels - 1)

    # -------------------------------------------------------------------------------------- checkpoints
    @classmethod
    def from_config(cls, config: dict | StreamFlowConfig | None = None) -> StreamFlow:
        if config is None or isinstance(config, StreamFlowConfig):
            return cls(config)
        return cls(StreamFlowConfig.from_dict(dict(config)))

    def config_dict(self) -> dict:
        return self.config.to_dict()

    # -------------------------------------------------------------------------------------------- model
    def _check(self, frames: torch.Tensor) -> None:
        T = self.config.T
        if not isinstance(frames, torch.Tensor) or frames.dim() != 5 or frames.shape[1] != T or frames.shape[2] != 3:
            shape = tuple(frames.shape) if isinstance(frames, torch.Tensor) else type(frames).__name__
            raise InputError(f"StreamFlow expects frames (B,{T},3,H,W), got {shape}",
                             fix=f"this config runs clips of T={T} frames")
        H, W = frames.shape[-2:]
        if H % self.stride or W % self.stride:
            raise InputError(f"StreamFlow needs H and W divisible by {self.stride}, got {H}x{W}",
                             fix="pad the frames (e.g. replicate) to a multiple of 8")
        if min(H, W) < self.min_size:
            raise InputError(f"StreamFlow needs H, W >= {self.min_size} for its correlation pyramid, got {H}x{W}",
                             fix="pad or upscale the frames")

    def forward(self, frames: torch.Tensor, iters: int | None = None, flow_init: torch.Tensor | None = None,
                return_lowres: bool = False):
        """``frames (B,T,3,H,W)`` in [0,1]. ``iters`` overrides the config's (``iters`` when training,
        ``eval_iters`` otherwise). ``flow_init (B,T-1,2,H/8,W/8)`` warm-starts the 1/8-resolution flows
        (RAFT-style); ``return_lowres=True`` (eval only) also returns the final 1/8-resolution flows for that."""
        self._check(frames)
        cfg = self.config
        B, T, _, H, W = frames.shape
        n = T - 1
        h, w = H // self.stride, W // self.stride
        iters = (cfg.iters if self.training else cfg.eval_iters) if iters is None else int(iters)
        if iters < 1:
            raise InputError(f"iters must be >= 1, got {iters}")

        x = 2.0 * frames - 1.0
        fmaps = self.fnet(x)                                                   # (B, T, C, h, w)
        cnets = self.cnet(x[:, :-1])                                           # (B, T-1, C, h, w)
        corr_fn = CorrPyramid(fmaps[:, :-1].flatten(0, 1), fmaps[:, 1:].flatten(0, 1),
                              levels=cfg.corr_levels, radius=cfg.corr_radius)
        net, inp = cnets.flatten(0, 1).split([cfg.hidden_dim, cfg.context_dim], dim=1)
        net, inp = torch.tanh(net), torch.relu(inp)
        attention = self.att(inp) if self.att is not None else None

        ys, xs = torch.meshgrid(torch.arange(h, dtype=x.dtype, device=x.device),
                                torch.arange(w, dtype=x.dtype, device=x.device), indexing="ij")
        coords0 = torch.stack([xs, ys])[None]                                  # (1, 2, h, w)
        if flow_init is not None:
            if tuple(flow_init.shape) != (B, n, 2, h, w):
                raise InputError(f"flow_init must be (B,T-1,2,H/8,W/8) = {(B, n, 2, h, w)}, "
                                 f"got {tuple(flow_init.shape)}")
            flow = flow_init.flatten(0, 1).to(x.dtype)
        else:
            flow = x.new_zeros(B * n, 2, h, w)

        preds = []
        for it in range(iters):
            flow = flow.detach()
            corr = corr_fn(coords0 + flow)
            net, mask, delta = self.update_block(net, inp, corr, flow, attention)
            flow = flow + delta
            if self.training or it == iters - 1:
                preds.append(convex_upsample(flow, mask, self.stride).view(B, n, 2, H, W))
        if self.training:
            return preds
        if return_lowres:
            return preds[-1], flow.view(B, n, 2, h, w)
        return preds[-1]

    def loss(self, outputs, flow_gt: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """RAFT sequence loss (see ``sequence_loss``) with the config's γ and max flow."""
        return sequence_loss(outputs, flow_gt, valid, gamma=self.config.gamma, max_flow=self.config.max_flow)
