import io
import zipfile

import numpy as np

from vision3d.io.npz import write_npz


def test_write_npz_round_trips_and_deflates_only_the_index_arrays():
    rng = np.random.default_rng(0)
    arrays = {"means": rng.normal(size=(1000, 3)).astype(np.float32), "half": rng.normal(size=50).astype(np.float16),
              "rows": np.repeat(np.arange(100), 30).astype(np.int32), "flags": rng.random(500) > 0.5,
              "name": np.array("vision3d-scene4d/2"), "empty": np.zeros((0, 4), np.float32)}
    buf = io.BytesIO()
    write_npz(buf, arrays)
    z = np.load(io.BytesIO(buf.getvalue()), allow_pickle=False)
    assert sorted(z.files) == sorted(arrays)
    for k, a in arrays.items():
        assert z[k].dtype == a.dtype and np.array_equal(z[k], a), k
    kinds = {i.filename[:-4]: i.compress_type for i in zipfile.ZipFile(io.BytesIO(buf.getvalue())).infolist()}
    assert kinds["rows"] == kinds["flags"] == zipfile.ZIP_DEFLATED
    assert kinds["means"] == kinds["half"] == kinds["name"] == zipfile.ZIP_STORED
    rows = next(i for i in zipfile.ZipFile(io.BytesIO(buf.getvalue())).infolist() if i.filename == "rows.npy")
    assert rows.compress_size < rows.file_size / 4
