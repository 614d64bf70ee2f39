"""``v3d``: one command line for vision3d's jobs. Errors in user input print one line and exit with 2."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import typer

from vision3d.errors import InputError

app = typer.Typer(
    name="v3d",
    help="vision3d: video → 4D scene, image → mesh, web viewer, mobile export; and the stages behind them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@dataclass
class GlobalOptions:
    """Options every command sees (set by the top-level callback)."""

    device: str = "auto"
    debug: bool = False
    verbosity: int = 1  # 0 quiet, 1 normal, 2 verbose


OPTS = GlobalOptions()


@app.callback()
def main(
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda | cuda:N"),
    debug: bool = typer.Option(False, "--debug", help="show full tracebacks on errors"),
    quiet: bool = typer.Option(False, "-q", "--quiet", help="print only results and errors"),
    verbose: bool = typer.Option(False, "-v", "--verbose", help="print stage logs"),
) -> None:
    """Global options go before the command: ``v3d --device cpu demo``."""
    OPTS.device, OPTS.debug = device, debug
    OPTS.verbosity = 0 if quiet else (2 if verbose else 1)


def register() -> None:
    """Attach the command modules (each adds its commands to ``app``)."""
    from vision3d.cli import commands  # noqa: F401


def _debug_requested() -> bool:
    return OPTS.debug or "--debug" in sys.argv[1:]


def entry(argv: Optional[list[str]] = None) -> None:
    """Console entry point: runs the app; ``InputError`` → one line + exit 2, other errors → one line + exit 1.

    Usage errors (unknown option, missing argument) are typer's own, also exit code 2.
    """
    register()
    try:
        app(args=argv)
    except InputError as e:
        if _debug_requested():
            raise
        sys.stderr.write(f"error: {e}\n")
        sys.exit(2)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
    except Exception as e:
        if _debug_requested():
            raise
        msg = str(e).splitlines()[0] if str(e) else ""
        sys.stderr.write(f"internal error: {type(e).__name__}: {msg} (rerun with --debug for the traceback)\n")
        sys.exit(1)


if __name__ == "__main__":
    entry()
