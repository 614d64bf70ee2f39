"""``write_npz``: an ``.npz`` that ``numpy.load`` reads, with only the arrays that compress well compressed.

Index and flag arrays (integers, booleans) shrink 2–100× under deflate; float parameters of fitted Gaussians
shrink by 7–25 % at some 30× the write time (a 480p GFlow scene of 20 frames: 85 MB in 7 s with
``savez_compressed``, 99 MB in well under a second this way, and three times faster to load).
"""

from __future__ import annotations

import io
import zipfile
from typing import BinaryIO

import numpy as np


def write_npz(file: BinaryIO, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` to an open binary file as an ``.npz``: integer and boolean arrays deflated (fast level),
    the rest stored, streamed without a copy."""
    with zipfile.ZipFile(file, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, a in arrays.items():
            a = np.asanyarray(a)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            if a.dtype.kind in "biu":
                buf = io.BytesIO()
                np.lib.format.write_array(buf, a, allow_pickle=False)
                zf.writestr(info, buf.getbuffer(), compress_type=zipfile.ZIP_DEFLATED, compresslevel=1)
            else:
                with zf.open(info, "w", force_zip64=True) as f:
                    np.lib.format.write_array(f, a, allow_pickle=False)
