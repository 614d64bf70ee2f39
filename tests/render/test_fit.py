"""Posed-dataset loading and 3DGS fitting on tiny scenes with exact ground truth; the fit-splats command."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.cli.test_cli import assert_one_line_error, v3d
from tests.render.posed_data import write_colmap_dataset, write_nerf_synthetic
from vision3d.errors import InputError
from vision3d.io.posed_images import load_posed_dataset
from vision3d.io.splats import read_splat_ply
from vision3d.render.fit import FitConfig, fit_splats


@pytest.fixture(scope="module")
def nerf_dir(tmp_path_factory):
    return write_nerf_synthetic(tmp_path_factory.mktemp("nerf"))


def test_load_nerf_synthetic(nerf_dir):
    d = load_posed_dataset(nerf_dir)
    assert d.kind == "nerf-synthetic" and len(d.train) == 8 and len(d.test) == 2
    assert d.background == (1.0, 1.0, 1.0)
    assert d.train.images.shape == (8, 32, 32, 3)
    assert d.train.images.max() <= 1 and d.train.images[:, 0, 0].min() > 0.99  # corners are white background
    assert d.train.alpha.shape == (8, 32, 32) and d.train.alpha[:, 0, 0].max() < 0.01  # kept for random backgrounds
    half = load_posed_dataset(nerf_dir, downscale=2)
    assert half.train.images.shape == (8, 16, 16, 3)
    assert np.allclose(half.train.cameras.K[0, 0, 0], d.train.cameras.K[0, 0, 0] / 2)


def test_load_colmap_with_points(tmp_path):
    d = load_posed_dataset(write_colmap_dataset(tmp_path / "c"))
    assert d.kind == "colmap" and len(d.train) + len(d.test) == 9 and len(d.test) == 2
    assert d.points is not None and len(d.points) == 100


def test_missing_images_are_skipped_and_counted(nerf_dir, tmp_path):
    import shutil

    root = tmp_path / "n"
    shutil.copytree(nerf_dir, root)
    (root / "train" / "r_3.png").unlink()
    d = load_posed_dataset(root)
    assert len(d.train) == 7 and d.info["train_missing"] == 1


@pytest.mark.parametrize("case", ["empty", "file", "bad_json"])
def test_bad_datasets(tmp_path, case):
    p = tmp_path / "d"
    p.mkdir()
    if case == "file":
        p = tmp_path / "x.txt"
        p.write_text("hi")
    elif case == "bad_json":
        (p / "transforms_train.json").write_text("{not json")
    with pytest.raises(InputError):
        load_posed_dataset(p)


def test_fit_improves_test_views(nerf_dir):
    d = load_posed_dataset(nerf_dir)
    cfg = FitConfig.for_steps(200, init_points=2000, sh_degree=1)
    res = fit_splats(d, cfg)
    start = fit_splats(d, FitConfig.for_steps(1, init_points=2000, sh_degree=1))
    assert res.metrics["eval_split"] == "test"
    assert res.metrics["psnr"] > start.metrics["psnr"] + 5
    assert res.metrics["psnr"] > 15
    assert 0 < res.metrics["ssim"] <= 1
    assert len(res.gaussians) == res.metrics["n_gaussians"]
    assert res.history[-1]["step"] == 200


def test_fit_splats_command(nerf_dir, tmp_path):
    out = tmp_path / "run"
    r = v3d("fit-splats", str(nerf_dir), "-o", str(out), "--steps", "40", "--init-points", "1000",
                "--sh-degree", "1", "--eval-every", "20")
    assert r.returncode == 0, r.stderr
    assert "PSNR" in r.stdout
    g = read_splat_ply(out / "fit" / "splats.ply")
    assert len(g) > 0 and g.sh_degree == 1
    man = json.loads((out / "manifest.json").read_text())
    assert man["metrics"]["fit.psnr"] > 5 and 0 < man["metrics"]["fit.ssim"] <= 1
    assert (out / "render" / "renders" / "r_8.png").is_file()
    assert "step,minutes,n,loss,psnr,ssim" in (out / "fit" / "curve.csv").read_text()
    again = v3d("fit-splats", str(nerf_dir), "-o", str(out), "--steps", "40", "--init-points", "1000",
                    "--sh-degree", "1", "--eval-every", "20")
    assert again.returncode == 0 and "2 up to date" in again.stdout


def test_fit_splats_bad_input(tmp_path):
    assert_one_line_error(v3d("fit-splats", str(tmp_path), "-o", str(tmp_path / "o")), "not a posed image dataset")
    r = v3d("fit-splats", str(tmp_path), "-o", str(tmp_path / "o"), "--steps", "0")
    assert r.returncode == 2
