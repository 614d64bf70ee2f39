"""Start the viewer for a path (``start``), or write a static export (``export_static``): viser's prebuilt client
from the installed package + a ``.viser`` recording of the scene whose timeline plays back in the browser, with no
Python running."""

from __future__ import annotations

import contextlib
import io
import shutil
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from viewers.content import DEFAULT_MAX_GAUSSIANS, Content, load
from vision3d.errors import InputError

RECORDING = "scene.viser"
OPEN_PAGE = "open.html"


def _viser():
    try:
        import viser
    except ImportError:
        raise InputError("the viewer needs viser", fix="pip install 'vision3d[viewer]'") from None
    return viser


def _quiet_server(viser, host: str, port: int):
    """A viser server without its start-up banner (the CLI prints the one URL that matters)."""
    with contextlib.redirect_stdout(io.StringIO()):
        return viser.ViserServer(host=host, port=port, verbose=False)


@dataclass
class Running:
    """A live viewer: the viser server, the scene logic and the URL it answers on."""

    server: object
    viewer: object
    url: str
    requested_port: int

    def stop(self) -> None:
        self.viewer.stop()
        self.server.stop()


def start(path: str | Path, host: str = "127.0.0.1", port: int = 8080,
          max_gaussians: int = DEFAULT_MAX_GAUSSIANS, fps: float = 10.0, content: Content | None = None) -> Running:
    """Serve ``path`` (a run folder or a file) on ``host:port``; when the port is taken viser moves to the next free
    one, and ``url`` says which. Only viser's client and the scene are served, never files from disk."""
    from viewers.app import Viewer

    content = content or load(path, max_gaussians)
    viser = _viser()
    if not 0 <= port <= 65535:
        raise InputError(f"--port {port} is not a TCP port (0..65535)")
    try:
        server = _quiet_server(viser, host, port)
    except OSError as e:
        raise InputError(f"cannot listen on {host}:{port} ({e.strerror or e})",
                         fix="pick another --port, or --host 127.0.0.1") from None
    viewer = Viewer(server, content, fps=fps)
    shown = "localhost" if host in ("127.0.0.1", "0.0.0.0") else host
    return Running(server, viewer, f"http://{shown}:{server.get_port()}", port)


def client_build_dir() -> Path:
    """viser's prebuilt web client inside the installed package."""
    viser = _viser()
    build = Path(viser.__file__).parent / "client" / "build"
    if not (build / "index.html").is_file():
        raise InputError("the installed viser has no prebuilt client (client/build/index.html)",
                         fix="reinstall viser from PyPI: pip install --force-reinstall viser")
    return build


def export_static(path: str | Path, out_dir: str | Path, max_gaussians: int = DEFAULT_MAX_GAUSSIANS,
                  fps: float = 10.0, content: Content | None = None) -> Path:
    """Write ``out_dir`` with viser's client, ``scene.viser`` (the timeline recorded frame by frame, played back by
    the client) and ``open.html`` (the client pointed at the recording and the initial camera). Written to a
    temporary folder and renamed at the end: nothing half-written."""
    from viewers.app import Viewer

    content = content or load(path, max_gaussians)
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()) and not (out / RECORDING).is_file():
        raise InputError("export folder exists and is not an earlier export", path=out,
                         fix="give a new or empty folder")
    viser = _viser()
    build = client_build_dir()
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    server = _quiet_server(viser, "127.0.0.1", 0)
    try:
        viewer = Viewer(server, content, fps=fps)
        viewer.stop()                                   # no live playback thread while recording
        rec = server.get_scene_serializer()
        for t in range(1, content.n_frames):
            rec.insert_sleep(1.0 / fps)
            viewer.set_frame(t)
        if content.n_frames > 1:
            rec.insert_sleep(1.0 / fps)
        data = rec.serialize()
        pos, target, up = viewer.initial_pose()
    finally:
        server.stop()
    shutil.copytree(build, tmp)
    (tmp / RECORDING).write_bytes(data)
    q = {"playbackPath": RECORDING, "initialCameraPosition": ",".join(f"{v:.5g}" for v in pos),
         "initialCameraLookAt": ",".join(f"{v:.5g}" for v in target),
         "initialCameraUp": ",".join(f"{v:.5g}" for v in up)}
    url = "index.html?" + urllib.parse.urlencode(q, safe=",/")
    (tmp / OPEN_PAGE).write_text(
        f'<!doctype html><meta charset="utf-8"><title>{content.title}</title>'
        f'<meta http-equiv="refresh" content="0; url={url}"><a href="{url}">open the viewer</a>\n')
    (tmp / "README.txt").write_text(
        f"vision3d static viewer export of {content.title}\n\n"
        "Serve this folder with any static file server and open open.html, e.g.\n"
        f"  python -m http.server --directory {out.name} 8000\n"
        f"  then http://localhost:8000/{OPEN_PAGE}\n"
        "(browsers do not load the recording from file:// URLs).\n")
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return out
