"""``GFlowConfig``: GFlow's knobs, with the paper's settings (``paper``) and a CPU preset (``fast``)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from vision3d.errors import InputError


@dataclass(frozen=True)
class GFlowConfig:
    """Iterations, learning rates, loss weights and densification of the per-frame optimisation.

    Paper/code values: short side 480, 50k initial Gaussians, frame 0 500 iterations, camera step (C1) 150,
    Gaussian step (C2) 300, Adam lr 4e-3 (Gaussians) / 1e-3 (camera) decayed linearly to 0.1×, λp = 1, λd = 0.1,
    λf = 0.01, λi = 50, densification at C2 start (new content) and twice on high error (0.05·N), colours frozen
    after frame 0. The ``paper`` preset keeps the resolution, counts, losses and schedule, but not the frozen
    colours nor the low colour/opacity rates (measured: −3.5 dB and −4.4 dB on blackswan, docs/methods/gflow.md).
    """

    short_side: int = 160
    n_init: int = 12000
    first_iters: int = 200
    cam_iters: int = 15
    gauss_iters: int = 40
    lr_gauss: float = 4e-3
    lr_cam: float = 1e-3
    lr_end_factor: float = 0.1
    lr_color: float | None = 0.02       # None: lr_gauss (the paper's 4e-3 moves a colour or an opacity too slowly)
    lr_opacity: float | None = 0.1
    lr_means: float | None = 1e-3       # Gaussian centres (None: lr_gauss); 4e-3 let moving ones drift ~6 px a frame
    # the depth prior's scale and shift are re-fitted to the rendered scene each frame only where the prior
    # correlates with that render at least this much; otherwise the last accepted fit stays (frame 0's at first):
    # fitting a prior that does not follow the scene to a render that earlier fits shaped collapses its scale
    prior_min_corr: float = 0.5
    prior_trust: float = 0.3            # relative disagreement with the rendered still scene beyond which the
                                        # prior is not used at a pixel (0: always used; video2scene uses 0 for
                                        # imported depth, which the user vouches for)
    # a moving Gaussian re-unprojected along the flow changes its depth by at most this share per frame: the
    # prior at a moving object is often the background's (geometric depth fills it from around) or an outlier,
    # and blackswan's moved Gaussians jumped 0.05–18× in depth from one frame to the next (0: no bound). On in
    # the paper preset (measured there with it); off in fast, where it cost 0.2 dB over blackswan's first 20
    # frames at 160p (28.62 vs 28.85 dB)
    max_depth_change: float = 0.0
    start_loss_ratio: float = 1.5      # the camera step starts from PnP unless its loss is this many times the
                                        # constant-velocity guess's (a failed PnP: 1.8 vs 0.21 on TartanAir)
    # the camera step stops early once its best loss has improved by less than ``cam_converged`` (relative) over
    # the last ``cam_window`` iterations (one host synchronisation per window; 0: run all ``cam_iters``)
    cam_window: int = 25
    cam_converged: float = 1e-3
    lambda_photo: float = 1.0
    lambda_depth: float = 0.1
    lambda_flow: float = 0.01
    lambda_iso: float = 50.0
    densify_ratio: float = 0.2         # new Gaussians per high-error densification, × n_init
    densify_error: float = 0.01        # photometric error threshold (mean |Δrgb|) for densification
    # starting opacity of the error-driven newborns (GFlow: 0.99, as at initialisation). Opaque newborns at the
    # prior's depth cover the fitted picture with flat discs and the next iterations first undo that (the loss
    # doubled at each densification); half-seen ones are raised where they help: blackswan, 20 frames, fast
    # preset 28.85 -> 35.55 dB (docs/bench/scene4d_sweep_densify_opacity.md)
    densify_opacity: float = 0.3
    densify_first: tuple[int, ...] = (70, 140)    # frame-0 densification steps (paper 150, 300)
    densify_steps: tuple[int, ...] = (15, 30)     # later frames (paper 100, 200)
    # active Gaussians (retired ones do not count). 60k, was 80k: half-seen newborns keep more of them in view,
    # and at 80k blackswan's 50 frames took 15.5 min instead of 12.4 on the dev CPU
    max_gaussians: int = 60000
    retire_after: int = 3               # frames outside the view before a Gaussian retires (0: never)
    prune_opacity: float = 0.005
    max_screen_frac: float = 0.05       # largest Gaussian axis, as a share of the short side, after each frame
    opacity_init: float = 0.99
    freeze_colors: bool = False        # the authors' code freezes colours after frame 0 (no preset does: −3.5 dB)
    # parameters of still Gaussians fixed after their birth frame (centres always); colours and opacities left free
    # are stored per frame in the scene file, so each frame is re-rendered exactly as it was fitted (scales and
    # rotations are stored once: left free, later frames would reshape what earlier frames saw)
    freeze_still: tuple[str, ...] = ("means", "quats", "log_scales")
    backend: str = "auto"

    @classmethod
    def fast(cls) -> GFlowConfig:
        """CPU preset: short side 160, 12k initial Gaussians (at most 60k active), 200 / 15 / 40 iterations (frame
        0 / C1 / C2), 0.2·N new Gaussians per error densification, still colours and opacities free per frame:
        5–13 s per frame on a 2-core CPU with the compiled cpu render backend."""
        return cls()

    @classmethod
    def paper(cls) -> GFlowConfig:
        """The paper's resolution and schedule (for CUDA + gsplat): short side 480, 50k initial Gaussians,
        500 / 150 / 300 iterations, lr 4e-3; appearance handled as in ``fast`` (see the class docstring); moved
        Gaussians' depth bounded (``max_depth_change``)."""
        return cls(short_side=480, n_init=50000, first_iters=500, cam_iters=150, gauss_iters=300,
                   densify_first=(150, 300), densify_steps=(100, 200), max_gaussians=400000, max_depth_change=0.3)

    @classmethod
    def preset(cls, name: str) -> GFlowConfig:
        presets = {"fast": cls.fast, "paper": cls.paper}
        if name not in presets:
            raise InputError(f"unknown GFlow preset {name!r}", fix=f"use one of {', '.join(presets)}")
        return presets[name]()

    def replace(self, **kw) -> GFlowConfig:
        return dataclasses.replace(self, **kw)

    def scaled(self, factor: float) -> GFlowConfig:
        """Every iteration count (and densification step) times ``factor``: a quality/time knob."""
        if not factor > 0:
            raise InputError(f"iteration scale {factor} must be positive")
        it = lambda v: max(1, int(round(v * factor)))  # noqa: E731
        return self.replace(first_iters=it(self.first_iters), cam_iters=it(self.cam_iters),
                            gauss_iters=it(self.gauss_iters), densify_first=tuple(it(v) for v in self.densify_first),
                            densify_steps=tuple(it(v) for v in self.densify_steps))
