"""Per-call configuration: dialects in, one frozen `CallConfig` out. Pure; no LiveKit job machinery."""
