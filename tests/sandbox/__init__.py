"""Tests of the sandbox LiveKit-compatible server and its tools."""
