"""pytest fixtures for the sandbox LiveKit-compatible server (filled in by the sandbox work)."""
