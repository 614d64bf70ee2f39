"""Every writer is atomic: a failure midway leaves no target file, no temp file, and an old target untouched."""

from __future__ import annotations

import numpy as np
import pytest

from vision3d.core.camera import Camera, intrinsics
from vision3d.core.flow import FlowField
from vision3d.io import ply
from vision3d.io.cameras import write_colmap
from vision3d.io.depth import write_depth
from vision3d.io.flow import write_flow
from vision3d.io.mesh import write_mesh


class Boom(RuntimeError):
    pass


def _listing(folder) -> list[str]:
    return sorted(p.name for p in folder.rglob("*"))


def _half_then_boom(fh, *args, **kwargs):
    fh.write(b"\x93NUMPY partial")
    raise Boom("disk full")


@pytest.mark.parametrize("name", ["f.npy", "d.npy"])
def test_numpy_writer_failure_leaves_nothing(tmp_path, monkeypatch, name):
    monkeypatch.setattr(np, "save", _half_then_boom)
    with pytest.raises(Boom):
        if name == "f.npy":
            write_flow(tmp_path / name, FlowField(np.zeros((2, 3, 4))))
        else:
            write_depth(tmp_path / name, np.ones((3, 4)))
    assert _listing(tmp_path) == []


def test_failure_keeps_old_file(tmp_path, monkeypatch):
    target = tmp_path / "f.npy"
    write_flow(target, FlowField(np.ones((2, 3, 4))))
    before = target.read_bytes()
    monkeypatch.setattr(np, "save", _half_then_boom)
    with pytest.raises(Boom):
        write_flow(target, FlowField(np.zeros((2, 3, 4))))
    assert target.read_bytes() == before and _listing(tmp_path) == ["f.npy"]


def test_ply_writer_failure_leaves_nothing(tmp_path, monkeypatch):
    real = ply.np.empty

    def empty_then_boom(*a, **k):
        out = real(*a, **k)
        if out.dtype.names:
            raise Boom("out of memory")
        return out

    monkeypatch.setattr(ply.np, "empty", empty_then_boom)
    with pytest.raises(Boom):
        ply.write_point_cloud(tmp_path / "cloud.ply", np.zeros((5, 3)))
    assert _listing(tmp_path) == []


class _BadMesh:
    faces = np.zeros((1, 3), int)

    def export(self, file_type=None):
        raise Boom("exporter crashed")


def test_mesh_writer_failure_leaves_nothing(tmp_path):
    with pytest.raises(Boom):
        write_mesh(tmp_path / "m.glb", _BadMesh())
    assert _listing(tmp_path) == []


def test_colmap_writer_failure_leaves_nothing(tmp_path):
    good = Camera(intrinsics(10, 10, 4.5, 4.5), np.eye(4), 10, 10, "a.png")
    with pytest.raises(AttributeError):
        write_colmap(tmp_path / "model", [good, "not a camera"])
    assert not (tmp_path / "model" / "cameras.txt").exists()
    assert [p for p in _listing(tmp_path) if p != "model"] == []


def test_checkpoint_failure_leaves_nothing(tmp_path):
    torch = pytest.importorskip("torch")
    from vision3d.io.checkpoint import save_checkpoint

    with pytest.raises(TypeError):
        save_checkpoint(tmp_path / "c", {"w": torch.zeros(2), "oops": [1, 2]}, {}, model="m")
    assert _listing(tmp_path) == []
