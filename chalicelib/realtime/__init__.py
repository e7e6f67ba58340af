"""Live status over the WebSocket API: connections, token checks on connect, and the messages pushed."""
