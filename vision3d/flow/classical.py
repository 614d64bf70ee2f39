"""OpenCV's classical flow methods, the baselines every learned method is compared with.

DIS (Kroeger et al., ECCV'16) with its three presets, and Farnebäck's polynomial expansion.
"""

from __future__ import annotations

import cv2
import numpy as np

from vision3d.errors import InputError

DIS_PRESETS = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
               "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}


def gray_u8(img: np.ndarray) -> np.ndarray:
    img = np.asarray(img)
    if img.ndim == 3:
        img = img.mean(axis=2) if img.shape[2] == 3 else img[..., 0]
    if img.dtype != np.uint8:
        img = (np.clip(np.nan_to_num(img), 0, 1) * 255 + 0.5).astype(np.uint8)
    return np.ascontiguousarray(img)


def _check_pair(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape[:2] != b.shape[:2]:
        raise InputError(f"frames differ in size: {a.shape[1]}x{a.shape[0]} vs {b.shape[1]}x{b.shape[0]}",
                         fix="resize both frames to one size")


def dis_flow(img0: np.ndarray, img1: np.ndarray, preset: str = "medium") -> np.ndarray:
    """DIS flow from ``img0`` to ``img1`` as ``(2,H,W)`` float32 (images float [0,1] or uint8)."""
    _check_pair(img0, img1)
    if preset not in DIS_PRESETS:
        raise InputError(f"unknown DIS preset {preset!r}", fix=f"use one of {', '.join(DIS_PRESETS)}")
    dis = cv2.DISOpticalFlow_create(DIS_PRESETS[preset])
    f = dis.calc(gray_u8(img0), gray_u8(img1), None)
    return np.ascontiguousarray(np.moveaxis(f, -1, 0))


def farneback_flow(img0: np.ndarray, img1: np.ndarray) -> np.ndarray:
    """Farnebäck flow (OpenCV defaults used in the literature: 5 levels, window 15) as ``(2,H,W)``."""
    _check_pair(img0, img1)
    f = cv2.calcOpticalFlowFarneback(gray_u8(img0), gray_u8(img1), None, pyr_scale=0.5, levels=5, winsize=15,
                                     iterations=3, poly_n=5, poly_sigma=1.2, flags=0)
    return np.ascontiguousarray(np.moveaxis(f, -1, 0))
