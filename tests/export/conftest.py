"""Small models for the export tests: a conv net that samples with grid_sample (opset >= 16 matters)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn


class TinyWarpNet(nn.Module):
    """Two images → a 2-channel field; warps image 2 with ``grid_sample`` by a predicted offset."""

    input_names = ("image1", "image2")
    output_names = ("flow",)

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(6, 8, 3, padding=1)
        self.c2 = nn.Conv2d(8, 2, 3, padding=1)

    def forward(self, image1, image2):
        f = self.c2(F.relu(self.c1(torch.cat([image1, image2], 1))))
        h, w = image1.shape[-2:]
        ys = (torch.arange(h, dtype=image1.dtype) * (2.0 / (h - 1)) - 1.0).view(1, h, 1).expand(1, h, w)
        xs = (torch.arange(w, dtype=image1.dtype) * (2.0 / (w - 1)) - 1.0).view(1, 1, w).expand(1, h, w)
        grid = torch.stack([xs, ys], -1) + 0.2 * torch.tanh(f).permute(0, 2, 3, 1)
        warped = F.grid_sample(image2, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
        return f + warped[:, :2]


class LinspaceWarpNet(TinyWarpNet):
    """The same with ``torch.linspace`` grids: torch.export specialises the sizes, the TorchScript exporter
    turns the grid into float64."""

    def forward(self, image1, image2):
        f = self.c2(F.relu(self.c1(torch.cat([image1, image2], 1))))
        h, w = image1.shape[-2:]
        ys = torch.linspace(-1.0, 1.0, h).view(1, h, 1).expand(1, h, w)
        xs = torch.linspace(-1.0, 1.0, w).view(1, 1, w).expand(1, h, w)
        grid = torch.stack([xs, ys], -1) + 0.2 * torch.tanh(f).permute(0, 2, 3, 1)
        return f + F.grid_sample(image2, grid, align_corners=True)[:, :2]


@pytest.fixture(scope="session")
def tiny_model():
    torch.manual_seed(0)
    return TinyWarpNet().eval()


@pytest.fixture(scope="session")
def tiny_inputs():
    g = torch.Generator().manual_seed(1)
    return torch.rand(1, 3, 32, 48, generator=g), torch.rand(1, 3, 32, 48, generator=g)


@pytest.fixture(scope="session")
def tiny_checks():
    g = torch.Generator().manual_seed(2)
    return [(torch.rand(1, 3, 32, 48, generator=g), torch.rand(1, 3, 32, 48, generator=g)) for _ in range(2)]


def mean_metric(outputs):
    """A stand-in task metric: the mean of the first output over the check inputs."""
    return {"mean": float(sum(o[0].mean() for o in outputs) / len(outputs))}
