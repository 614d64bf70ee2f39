"""``sample_scene``: draw a random layered scene from a ``SynthConfig``, deterministic for a given seed.

Scene: an infinite back wall (and sometimes a ground plane) so every pixel of every frame hits a surface,
2–8 textured, masked, possibly tilted foreground patches, some moving rigidly on their own, and a smooth
camera path. Draws that would break the guarantees (wall not covering the view, a patch crossing the
camera) are redrawn from the same generator, so results stay deterministic.
"""

from __future__ import annotations

import math

import numpy as np

from vision3d.core.camera import fov_to_focal, intrinsics, invert_pose
from vision3d.errors import InputError
from vision3d.synth.config import SynthConfig
from vision3d.synth.motion import RigidMotion, so3_exp
from vision3d.synth.scene import LayerSpec, SceneSpec
from vision3d.synth.textures import TexturePool, get_texture_pool, random_mask


def as_rng(rng, default_seed: int = 0) -> np.random.Generator:
    """A ``numpy.random.Generator`` from a Generator, an int seed or None (``default_seed``)."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None:
        return np.random.default_rng(default_seed)
    if isinstance(rng, (int, np.integer)):
        return np.random.default_rng(int(rng))
    raise InputError(f"rng must be a numpy Generator or an int seed, got {type(rng).__name__}")


def texture_pool_for(config: SynthConfig) -> TexturePool:
    """The (cached) texture pool a config draws from."""
    return get_texture_pool(config.texture_source, config.photo_dirs, config.texture_pool_res,
                            config.texture_pool_size, config.seed)


def _unit(rng: np.random.Generator, z_weight: float = 1.0) -> np.ndarray:
    v = rng.normal(size=3)
    v[2] *= z_weight
    return v / max(math.sqrt(float(v @ v)), 1e-12)


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.array([a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]])


def _frame_from_normal(normal: np.ndarray, spin: float) -> np.ndarray:
    """Rotation whose z column is ``normal`` and whose x column is spun by ``spin`` radians in the plane."""
    n = normal / np.linalg.norm(normal)
    ref = np.array([0.0, 1.0, 0.0]) if abs(n[1]) < 0.9 else np.array([1.0, 0.0, 0.0])
    ex = _cross(ref, n)
    ex /= np.linalg.norm(ex)
    ey = _cross(n, ex)
    c, s = np.cos(spin), np.sin(spin)
    ex, ey = c * ex + s * ey, -s * ex + c * ey
    return np.stack([ex, ey, n], 1)


def _tilt(rng: np.random.Generator, normal: np.ndarray, max_deg: float) -> np.ndarray:
    """A random axis-angle vector perpendicular to ``normal`` with an angle up to ``max_deg``."""
    axis = _cross(normal, _unit(rng))
    axis /= max(np.linalg.norm(axis), 1e-12)
    return axis * np.radians(rng.uniform(0.0, max_deg))


def _tilted(rng: np.random.Generator, normal: np.ndarray, max_deg: float) -> np.ndarray:
    """``normal`` rotated by up to ``max_deg`` about a random axis perpendicular to it."""
    return so3_exp(_tilt(rng, normal, max_deg)) @ normal


def _random_motion(rng, pose0, trans_range, rot_range_deg, metres_per_px, accel, z_weight=0.5) -> RigidMotion:
    speed = rng.uniform(*trans_range) * metres_per_px
    velocity = _unit(rng, z_weight) * speed
    omega = _unit(rng) * np.radians(rng.uniform(*rot_range_deg))
    a = rng.normal(size=3) * accel * speed / np.sqrt(3)
    alpha = rng.normal(size=3) * accel * np.linalg.norm(omega) / np.sqrt(3)
    return RigidMotion(pose0, velocity, a, omega, alpha)


def _scaled(m: RigidMotion, s: float) -> RigidMotion:
    return RigidMotion(m.pose0, m.velocity * s, m.accel * s, m.omega * s, m.alpha * s)


def _corner_rays(K: np.ndarray, w: int, h: int) -> np.ndarray:
    px = np.array([[-0.5, -0.5, 1], [w - 0.5, -0.5, 1], [w - 0.5, h - 0.5, 1], [-0.5, h - 0.5, 1]], float)
    return px @ np.linalg.inv(K).T


def _wall_covers(wall_pose: np.ndarray, w2c: np.ndarray, rays: np.ndarray, max_depth: float) -> bool:
    """Every corner ray of every frame hits the (infinite) wall in front of the camera, closer than ``max_depth``."""
    m = w2c @ wall_pose  # (T,4,4) wall-local -> camera
    n, o = m[:, :3, 2], m[:, :3, 3]
    num = np.einsum("ti,ti->t", n, o)
    invz = (rays @ n.T) / num  # (4,T)
    return bool(np.all(invz > 1.0 / max_depth))


def _patch_ok(motion: RigidMotion, extent, w2c: np.ndarray, min_depth: float) -> bool:
    """The patch's corners stay in front of every camera, at least ``min_depth`` away."""
    hx, hy = extent
    corners = np.array([[-hx, -hy, 0, 1], [hx, -hy, 0, 1], [hx, hy, 0, 1], [-hx, hy, 0, 1]], float)
    for t in range(len(w2c)):
        z = (w2c[t] @ motion.pose(t) @ corners.T)[2]
        if np.any(z < min_depth):
            return False
    return True


def sample_scene(config: SynthConfig | None = None, rng=None, textures: TexturePool | None = None) -> SceneSpec:
    """Draw a random scene; ``rng`` is a Generator or an int seed (default ``config.seed``).

    The same seed gives bitwise identical scenes (and so frames). ``textures`` overrides the config's pool.
    """
    cfg = config or SynthConfig()
    if not isinstance(cfg, SynthConfig):
        raise InputError(f"config must be a SynthConfig, got {type(cfg).__name__}")
    rng = as_rng(rng, cfg.seed)
    pool = textures or texture_pool_for(cfg)
    W, H, T = cfg.width, cfg.height, int(cfg.n_frames)
    near, far = (float(v) for v in cfg.depth_range)
    z_ref = float(np.sqrt(near * far))

    fov = np.radians(rng.uniform(*cfg.fov_deg))
    f = fov_to_focal(fov, W)
    K = intrinsics(f, f, (W - 1) / 2, (H - 1) / 2)
    metres_per_px = z_ref / f
    rays = _corner_rays(K, W, H)

    # Camera: a small random initial orientation and a smooth (quadratic) path.
    c2w0 = np.eye(4)
    c2w0[:3, :3] = so3_exp(rng.normal(size=3) * np.radians(2.0))
    if rng.random() < cfg.static_camera_prob:
        cam_motion = RigidMotion.static(c2w0)
    else:
        cam_motion = _random_motion(rng, c2w0, cfg.magnitude("camera_translation_px"),
                                    cfg.magnitude("camera_rotation_deg"), metres_per_px, cfg.acceleration)

    # Back wall, facing the first camera, slightly tilted; infinite with mirrored texture.
    fwd0 = c2w0[:3, 2]
    wall_depth = far * rng.uniform(0.85, 1.0)
    tilt = _tilt(rng, -fwd0, cfg.background_tilt_deg)
    spin = rng.uniform(0, 2 * np.pi)
    wall_pose = np.eye(4)
    wall_pose[:3, 3] = c2w0[:3, 3] + wall_depth * fwd0
    still = invert_pose(c2w0)[None]
    for _ in range(30):  # a wide view of a steep wall can miss its corners: straighten the wall until it fits
        wall_pose[:3, :3] = _frame_from_normal(so3_exp(tilt) @ -fwd0, spin)
        if _wall_covers(wall_pose, still, rays, 40.0 * far):
            break
        tilt = tilt * 0.5 if np.linalg.norm(tilt) > 1e-3 else np.zeros(3)
    for _ in range(40):  # slow the camera until the wall fills every frame
        w2c = invert_pose(cam_motion.poses(T))
        if _wall_covers(wall_pose, w2c, rays, 40.0 * far):
            break
        cam_motion = _scaled(cam_motion, 0.6)
    else:
        cam_motion = RigidMotion.static(c2w0)
        w2c = invert_pose(cam_motion.poses(T))
    wall_half = 0.5 * W * wall_depth / f * rng.uniform(1.1, 1.6)
    wall_texels = int(np.clip(2 * wall_half * f / wall_depth * rng.uniform(0.8, 1.2), 32, 1024))
    layers = [LayerSpec(RigidMotion.static(wall_pose), (wall_half, wall_half),
                        pool.sample(rng, wall_texels, wall_texels, as_uint8=True), None, bounded=False,
                        name="wall", kind="background")]

    ground_y = None
    if rng.random() < cfg.ground_plane_prob:
        ground_y = rng.uniform(0.5, 2.0) * near
        g_pose = np.eye(4)
        g_pose[:3, :3] = np.stack([[1.0, 0, 0], [0, 0, 1.0], [0, -1.0, 0]], 1)  # x, z span it; normal up (-y)
        g_pose[:3, 3] = c2w0[:3, 3] + np.array([0.0, ground_y, 0.5 * wall_depth])
        g_half = 0.5 * wall_depth * rng.uniform(0.5, 1.0)
        g_tex = int(np.clip(1.5 * W, 64, 1024))
        layers.append(LayerSpec(RigidMotion.static(g_pose), (g_half, g_half),
                                pool.sample(rng, g_tex, g_tex, as_uint8=True), None, bounded=False, name="ground",
                                kind="background"))

    n_fg = int(rng.integers(cfg.n_layers[0], cfg.n_layers[1] + 1))
    for k in range(n_fg):
        for _attempt in range(20):
            px = rng.uniform(-0.1, 1.1) * W
            py = rng.uniform(-0.1, 1.1) * H
            z = 1.0 / rng.uniform(1.0 / (0.85 * wall_depth), 1.0 / near)
            centre_cam = np.linalg.solve(K, [px, py, 1.0]) * z
            centre = c2w0[:3, :3] @ centre_cam + c2w0[:3, 3]
            size = rng.uniform(*cfg.layer_size)
            aspect = float(np.exp(rng.uniform(-0.5, 0.5)))
            hx = 0.5 * size * W * z / f * np.sqrt(aspect)
            hy = hx / aspect
            view = centre - c2w0[:3, 3]
            normal = _tilted(rng, -view / np.linalg.norm(view), cfg.max_tilt_deg)
            pose0 = np.eye(4)
            pose0[:3, :3] = _frame_from_normal(normal, rng.uniform(0, 2 * np.pi))
            pose0[:3, 3] = centre
            moving = rng.random() < cfg.moving_fraction
            if moving:
                motion = _random_motion(rng, pose0, cfg.magnitude("object_translation_px"),
                                        cfg.magnitude("object_rotation_deg"), metres_per_px * z / z_ref,
                                        cfg.acceleration)
            else:
                motion = RigidMotion.static(pose0)
            if ground_y is not None and centre[1] > c2w0[1, 3] + ground_y:
                continue  # below the ground: it would be hidden
            if _patch_ok(motion, (hx, hy), w2c, 0.3 * near):
                break
        else:
            continue  # no valid placement for this layer: leave it out
        proj = size * W * rng.uniform(1.0, 1.5)
        tw = int(np.clip(proj * np.sqrt(aspect), 16, 768))
        th = int(np.clip(proj / np.sqrt(aspect), 16, 768))
        tex = pool.sample(rng, th, tw, as_uint8=True)
        mask = random_mask(rng, th, tw)
        layers.append(LayerSpec(motion, (hx, hy), tex, mask, bounded=True, name=f"layer{k}"))

    meta = {"motion": cfg.motion, "fov_x_deg": float(np.degrees(fov)), "wall_depth": float(wall_depth),
            "ground_plane": ground_y is not None, "texture_source": cfg.texture_source}
    return SceneSpec(layers, K, W, H, w2c, camera_motion=cam_motion, meta=meta)
