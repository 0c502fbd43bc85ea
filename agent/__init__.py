"""webcall-agent: a LiveKit Agents worker that runs web calls minted by web-call APIs."""

__version__ = "0.1.0"
