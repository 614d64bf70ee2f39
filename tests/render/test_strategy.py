"""Clone / split / prune / reset with Adam moments that follow every edit."""

from __future__ import annotations

import math
from types import SimpleNamespace

import torch

from vision3d.render.strategy import DensifyConfig, DensifyStrategy


def _setup(n=6):
    params = torch.nn.ParameterDict({
        "means": torch.nn.Parameter(torch.zeros(n, 3)),
        "scales": torch.nn.Parameter(torch.log(torch.tensor([0.001, 0.001, 0.5, 0.5, 0.001, 0.001]))[:, None]
                                     .repeat(1, 3)),
        "quats": torch.nn.Parameter(torch.tensor([[1.0, 0, 0, 0]]).repeat(n, 1)),
        "opacities": torch.nn.Parameter(torch.tensor([2.0, 2.0, 2.0, 2.0, -8.0, 2.0])),
        "sh0": torch.nn.Parameter(torch.rand(n, 1, 3)),
        "shN": torch.nn.Parameter(torch.zeros(n, 3, 3)),
    })
    opts = {k: torch.optim.Adam([p], lr=1e-3) for k, p in params.items()}
    loss = sum((p ** 2).sum() for p in params.values())
    loss.backward()
    for o in opts.values():
        o.step()
    return params, opts


def _info(grad_xy):
    g = torch.tensor(grad_xy, dtype=torch.float32)[None]  # (1,N,2)
    return {"out": SimpleNamespace(screen_grad=lambda: g, visible=torch.ones(1, g.shape[1], dtype=torch.bool)),
            "width": 100, "height": 100}


def test_clone_split_prune():
    params, opts = _setup()
    s = DensifyStrategy(DensifyConfig(refine_start_iter=0, refine_every=1, grow_grad2d=0.01, grow_scale3d=0.01,
                                      reset_every=1000))
    state = s.initialize_state(scene_scale=1.0)
    # NDC gradient = |g|·W/2: 0.001 → 0.05 (high), 0 → low. Gaussians 0 (small, high) clone, 2 (large, high)
    # split, 4 has opacity sigmoid(-8) < 0.005 and is pruned.
    grads = [[0.001, 0], [0, 0], [0.001, 0], [0, 0], [0, 0], [0, 0]]
    changed = s.step_post_backward(params, opts, state, step=1, info=_info(grads))
    assert changed == {"cloned": 1, "split": 1, "pruned": 1}
    n = 6 + 1 + 1 - 1  # one clone, one split (−1 + 2), one pruned
    assert len(params["means"]) == n
    for name, p in params.items():
        assert p.shape[0] == n
        st = opts[name].state[p]
        assert st["exp_avg"].shape == p.shape and st["exp_avg_sq"].shape == p.shape
        assert opts[name].param_groups[0]["params"][0] is p
    # split children have scale / 1.6
    big = torch.exp(params["scales"].detach()).max(1).values
    assert torch.isclose(big, torch.tensor(0.5 / 1.6), rtol=0.01).sum() == 2
    assert torch.isclose(big, torch.tensor(0.5), rtol=0.01).sum() == 1
    # the optimiser still works on the new tensors
    sum((p ** 2).sum() for p in params.values()).backward()
    for o in opts.values():
        o.step()


def test_opacity_reset_and_growth_cap():
    params, opts = _setup()
    s = DensifyStrategy(DensifyConfig(refine_start_iter=0, refine_every=1, grow_grad2d=0.01, reset_every=2,
                                      max_gaussians=6))
    state = s.initialize_state(1.0)
    s.step_post_backward(params, opts, state, step=1, info=_info([[0.001, 0]] * 6))
    assert len(params["means"]) <= 6  # the cap holds even though every Gaussian asked to grow
    s.step_post_backward(params, opts, state, step=2, info=_info([[0, 0]] * len(params["means"])))
    assert float(torch.sigmoid(params["opacities"].detach()).max()) <= 0.01 + 1e-6
    assert float(opts["opacities"].state[params["opacities"]]["exp_avg"].abs().max()) == 0


def test_no_refinement_outside_the_window():
    params, opts = _setup()
    s = DensifyStrategy(DensifyConfig(refine_start_iter=100, refine_stop_iter=200, refine_every=1))
    state = s.initialize_state(1.0)
    assert s.step_post_backward(params, opts, state, step=50, info=_info([[1, 0]] * 6)) == {}
    assert s.step_post_backward(params, opts, state, step=250, info=_info([[1, 0]] * 6)) == {}
    assert len(params["means"]) == 6
    assert math.isfinite(float(state["grad2d"].sum()))
