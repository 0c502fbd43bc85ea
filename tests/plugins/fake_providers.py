"""pytest fixtures for the fake OpenAI/Deepgram providers (filled in by the fake-provider work)."""
