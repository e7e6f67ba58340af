"""How the browser tests and the bench launch Debian's Chromium (Playwright's own browser download does not work
on these machines)."""

from __future__ import annotations

import os
from pathlib import Path

# Debian's package; PHOTOSKY_CHROMIUM points elsewhere (another distribution's path) if need be.
CHROMIUM = Path(os.environ.get("PHOTOSKY_CHROMIUM") or "/usr/bin/chromium")
# Without the background-networking flags Chromium phones home at start and this machine's closed network
# refuses it; no GPU and no sandbox in a container.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
