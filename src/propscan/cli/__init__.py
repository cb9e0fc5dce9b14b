"""The command line (``propscan``): thin commands over the library. Nothing in the library imports it."""

from propscan.cli.common import err, fail, progress_bar, say
from propscan.cli.main import app, main

__all__ = ["app", "main", "err", "fail", "progress_bar", "say"]
