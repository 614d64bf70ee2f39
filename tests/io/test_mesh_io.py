"""Meshes: GLB/OBJ/PLY round trips (synthetic and the real meshes), point clouds refused, bad files named."""

from __future__ import annotations

import numpy as np
import pytest

from vision3d.errors import InputError
from vision3d.io.mesh import read_mesh, write_mesh
from vision3d.io.ply import write_point_cloud

trimesh = pytest.importorskip("trimesh")


def _check_same(a, b, exact_count: bool = True) -> None:
    assert len(b.faces) == len(a.faces)
    if exact_count:
        assert len(b.vertices) == len(a.vertices)
    tol = 1e-5 * float(np.ptp(a.bounds, axis=0).max())  # GLB/PLY store float32
    np.testing.assert_allclose(b.bounds, a.bounds, atol=tol)


@pytest.mark.parametrize("suffix", [".glb", ".obj", ".ply", ".stl", ".off"])
def test_round_trip_box(tmp_path, suffix):
    box = trimesh.creation.box(extents=(1.0, 2.0, 3.0))
    back = read_mesh(write_mesh(tmp_path / f"box{suffix}", box))
    _check_same(box, back)
    assert back.is_watertight


def test_scene_is_concatenated(tmp_path):
    scene = trimesh.Scene()
    scene.add_geometry(trimesh.creation.box(), transform=trimesh.transformations.translation_matrix([5, 0, 0]))
    scene.add_geometry(trimesh.creation.icosphere(subdivisions=1))
    p = tmp_path / "scene.glb"
    p.write_bytes(scene.export(file_type="glb"))
    m = read_mesh(p)
    assert len(m.faces) == 12 + 80
    assert m.bounds[1, 0] == pytest.approx(5.5)  # the node transform was applied


def test_point_cloud_is_not_a_mesh(tmp_path):
    p = write_point_cloud(tmp_path / "cloud.ply", np.random.default_rng(0).normal(size=(30, 3)))
    with pytest.raises(InputError, match="point cloud, not a mesh") as e:
        read_mesh(p)
    assert str(p) in str(e.value)


def test_bad_mesh_inputs(tmp_path):
    with pytest.raises(InputError, match="not found") as e:
        read_mesh(tmp_path / "gone.obj")
    assert "gone.obj" in str(e.value)
    with pytest.raises(InputError, match=r"\.glb, \.gltf, \.obj"):
        read_mesh(tmp_path / "mesh.fbx")
    bad = tmp_path / "bad.glb"
    bad.write_bytes(b"glTF\x02\x00\x00\x00garbage")
    with pytest.raises(InputError, match="corrupt") as e:
        read_mesh(bad)
    assert str(bad) in str(e.value)
    with pytest.raises(InputError, match="no faces"):
        write_mesh(tmp_path / "empty.glb", trimesh.Trimesh())
    assert not (tmp_path / "empty.glb").exists()


# ---- real data -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["cow.obj", "spot.obj", "teapot.obj", "stanford-bunny.obj"])
def test_real_meshes_round_trip(data_dir, tmp_path, name):
    m = read_mesh(data_dir / "meshes" / name)
    assert len(m.vertices) > 0 and len(m.faces) > 0
    for suffix in (".glb", ".obj", ".ply"):
        _check_same(m, read_mesh(write_mesh(tmp_path / f"{name}{suffix}", m)))


def test_textured_obj_writes_its_material_beside_it(data_dir, tmp_path):
    m = read_mesh(data_dir / "meshes/spot.obj")
    assert m.visual.kind == "texture"
    p = write_mesh(tmp_path / "spot_out.obj", m)
    assert (tmp_path / "spot_out.mtl").exists()
    textures = list(tmp_path.glob("spot_out_*"))
    assert textures and f"map_Kd {textures[0].name}" in (tmp_path / "spot_out.mtl").read_text()
    back = read_mesh(p)
    assert back.visual.kind == "texture" and back.visual.material.image is not None


def test_backpack_glb(data_dir, tmp_path):
    m = read_mesh(data_dir / "one2345_backpack/backpack_gt.glb")  # 53 parts sharing one PBR material
    assert len(m.faces) == 3840 and len(m.vertices) > 3000
    scene = trimesh.load(data_dir / "one2345_backpack/backpack_gt.glb")
    np.testing.assert_allclose(m.bounds, scene.bounds)  # node transforms applied as trimesh does
    assert len(m.faces) == sum(len(scene.geometry[scene.graph[n][1]].faces) for n in scene.graph.nodes_geometry)
    for suffix in (".glb", ".obj", ".ply"):
        _check_same(m, read_mesh(write_mesh(tmp_path / f"bp{suffix}", m)))
    pred = read_mesh(data_dir / "one2345_backpack/backpack_ours_prediction.obj")
    assert len(pred.vertices) > 0 and len(pred.faces) > 0
