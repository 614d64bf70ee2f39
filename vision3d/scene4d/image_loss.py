"""The image terms of GFlow's loss — photometric ``λp(MSE + 1 − SSIM)`` (optionally over a mask) and the depth
term — as one function of the rendered colour, depth and alpha; on a GPU replayed from a CUDA graph.

At 480p the GPU needs ~1.5 ms for a fitting iteration but the loop took ~6 ms (docs/bench/gflow_step_cuda.md): it
is bound by launching small kernels, and these terms with their backward are ~70 of them. They depend only on
images of a fixed size, so they are captured once per solver step (target, prior and mask fixed) and replayed as
one graph that also writes their gradients; the render (gsplat's tile lists change size every iteration) and the
per-Gaussian terms stay eager. The first replay is checked against the eager terms; a mismatch or a failed
capture falls back to eager evaluation.
"""

from __future__ import annotations

import warnings

import torch

from vision3d.render.ssim import SSIMTarget


class ImageLoss:
    """``loss(colors (H,W,3), depth (H,W), alpha (H,W)) -> scalar`` against ``target`` with ``depth_target`` and
    per-pixel ``depth_weights`` (already normalised; None: no depth term) and an optional photometric ``mask``
    (pixels also need rendered alpha > 0.5 there)."""

    def __init__(self, target: torch.Tensor, depth_target: torch.Tensor | None, depth_weights: torch.Tensor | None,
                 lambda_photo: float, lambda_depth: float, mask: torch.Tensor | None = None,
                 graph: bool | None = None):
        self.gt, self.D, self.Dw, self.mask = target, depth_target, depth_weights, mask
        self.lp, self.ld = lambda_photo, lambda_depth
        self.ssim = SSIMTarget(target)
        want = target.is_cuda if graph is None else graph
        self._graph = None
        self._checked = False
        self.graphed = False
        if want:
            try:
                self._capture()
                self.graphed = True
            except Exception as e:  # noqa: BLE001 - any capture failure: eager terms are always right
                warnings.warn(f"CUDA graph capture of the image loss failed ({e}); running it eagerly", stacklevel=2)

    # --------------------------------------------------------------------------------------------- the terms
    def terms(self, colors: torch.Tensor, depth: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        if self.mask is None:
            mse = (colors - self.gt).square().mean()
            s = self.ssim.mean(colors)
        else:
            m = (self.mask & (alpha > 0.5)).float()
            n = m.sum().clamp_min(1)
            mse = ((colors - self.gt).square() * m[..., None]).sum() / (3 * n)
            s = (self.ssim.map(colors).mean(-1) * m).sum() / n
        loss = self.lp * (mse + (1 - s))
        if self.Dw is not None and self.D is not None:
            loss = loss + self.ld * ((depth - self.D).abs() * self.Dw).sum()
        return loss

    def _grads(self, loss, inputs):
        g = torch.autograd.grad(loss, inputs, allow_unused=True)
        return [torch.zeros_like(x) if gi is None else gi for gi, x in zip(g, inputs)]

    # ------------------------------------------------------------------------------------------- the graph
    def _capture(self) -> None:
        h, w = self.gt.shape[:2]
        dev = self.gt.device
        self._in = [torch.zeros(h, w, 3, device=dev, requires_grad=True),
                    torch.zeros(h, w, device=dev, requires_grad=True),
                    torch.zeros(h, w, device=dev, requires_grad=True)]
        side = torch.cuda.Stream(dev)
        side.wait_stream(torch.cuda.current_stream(dev))
        with torch.cuda.stream(side):          # warm-up off the default stream, as capture requires
            for _ in range(2):
                self._grads(self.terms(*self._in), self._in)
        torch.cuda.current_stream(dev).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            loss = self.terms(*self._in)
            self._out = self._grads(loss, self._in)
        self._loss = loss.detach()           # the static output, without the (freed) graph that made it
        self._graph = graph

    def _replay(self, colors, depth, alpha):
        with torch.no_grad():
            for buf, x in zip(self._in, (colors, depth, alpha)):
                buf.copy_(x)
        self._graph.replay()
        if not self._checked:                 # the first replay against the eager terms
            self._checked = True
            xs = [x.detach().requires_grad_(True) for x in (colors, depth, alpha)]
            ref = self.terms(*xs)
            gref = self._grads(ref, xs)
            ok = torch.allclose(self._loss, ref, rtol=1e-4, atol=1e-6) and all(
                torch.allclose(a, b, rtol=1e-3, atol=1e-7 + 1e-3 * float(b.abs().max())) for a, b in zip(self._out, gref))
            if not ok:
                warnings.warn("the CUDA graph of the image loss disagrees with the eager terms; running it eagerly",
                              stacklevel=3)
                self._graph, self.graphed = None, False
                return None
        return self._loss, self._out

    def __call__(self, colors: torch.Tensor, depth: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        if self._graph is not None:
            res = self._replay(colors, depth, alpha)
            if res is not None:
                return _Replayed.apply(res[0], *res[1], colors, depth, alpha)
        return self.terms(colors, depth, alpha)


class _Replayed(torch.autograd.Function):
    """A scalar whose gradients were computed with it (by the graph replay): backward only scales them."""

    @staticmethod
    def forward(ctx, loss, g_colors, g_depth, g_alpha, colors, depth, alpha):
        ctx.save_for_backward(g_colors, g_depth, g_alpha)
        return loss.detach().clone()

    @staticmethod
    def backward(ctx, grad):
        gc, gd, ga = ctx.saved_tensors
        return None, None, None, None, gc * grad, gd * grad, ga * grad
