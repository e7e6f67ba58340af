"""What the dev stack's own HTTP servers share (the media endpoint, the WebSocket API; the API's gateway takes the
backlog)."""

from __future__ import annotations

from http.server import ThreadingHTTPServer

# Pending connections the listening socket holds while every worker thread is busy starting (socketserver's default
# is 5: a burst of browsers and tests got connection resets and timeouts).
LISTEN_BACKLOG = 128


class DevServer(ThreadingHTTPServer):
    """A thread per connection; stopping never waits for those threads (each server closes its own connections)."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = LISTEN_BACKLOG
