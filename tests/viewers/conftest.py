"""Fixtures for the viewer tests: a small real video2scene run (DAVIS blackswan when the shared data is there,
else the shipped synthetic clip), a real mesh, a 3DGS file and a point cloud."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import REPO, shared_data_dir


@pytest.fixture(scope="session")
def small_run(tmp_path_factory):
    """A finished 3-frame video2scene run at short side 96 (about 15 s on 2 cores)."""
    from pipelines.video2scene import Video2SceneConfig, run_video2scene

    seq = shared_data_dir() / "davis2016_480p" / "JPEGImages" / "blackswan"
    video = seq if seq.is_dir() else REPO / "assets" / "samples" / "synth_clip" / "clip.mp4"
    cfg = Video2SceneConfig.preset("fast")
    cfg.frames.short_side, cfg.frames.max_frames = 96, 3
    cfg.scene.iterations = 0.3
    cfg.renders.orbit_frames = 4
    run = tmp_path_factory.mktemp("viewer") / "run"
    run_video2scene(video, run, cfg)
    return run


@pytest.fixture(scope="session")
def mesh_file(tmp_path_factory):
    p = shared_data_dir() / "meshes" / "spot.obj"
    if p.is_file():
        return p
    import trimesh

    out = tmp_path_factory.mktemp("mesh") / "box.glb"
    box = trimesh.creation.box(extents=(1, 0.6, 0.4))
    box.visual.face_colors = [70, 110, 200, 255]     # untextured meshes render near-white on viser's white background
    box.export(out)
    return out


@pytest.fixture(scope="session")
def splat_file(tmp_path_factory):
    from vision3d.core.gaussians import Gaussians
    from vision3d.io.splats import write_splat_ply

    rng = np.random.default_rng(0)
    n = 3000
    g = Gaussians.from_points(rng.normal(size=(n, 3)) * 0.5, rng.random((n, 3)), scale=0.03, opacity=0.9)
    return write_splat_ply(tmp_path_factory.mktemp("splats") / "splats.ply", g)


@pytest.fixture(scope="session")
def cloud_file(tmp_path_factory):
    from vision3d.io.ply import write_point_cloud

    rng = np.random.default_rng(1)
    return write_point_cloud(tmp_path_factory.mktemp("cloud") / "cloud.ply", rng.normal(size=(500, 3)),
                             (rng.random((500, 3)) * 255).astype(np.uint8))
