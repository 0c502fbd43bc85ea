"""The dev page: a browser page to talk to the agent, served by a small aiohttp app (``python -m agent.devpage``).

`run-local` starts it next to the worker and prints its URL. The page (``static/``: ``index.html``, ``app.js``,
``app.css`` and the committed ``livekit-client.js`` bundle built by ``web/build.mjs``) joins a room with the
unmodified LiveKit JS SDK; this package is its back end:

- `examples`: the ``config/examples`` cases, as payloads ready to dispatch (editable on the page);
- `calls`: minting the caller's token, creating the room and the dispatch (Twirp, ``livekit-api``), and reading
  back what the worker reads to resolve the call's config;
- `redact`: the resolved config as the page shows it, caller data replaced;
- `events`: the call events webhook receiver (Standard Webhooks, verified) and their fan-out to the page (SSE);
- `app`: the routes.

It works against the sandbox and any LiveKit server (``LIVEKIT_URL``, ``LIVEKIT_API_KEY``, ``LIVEKIT_API_SECRET``).
It is a development tool: it listens on 127.0.0.1 by default and anyone who can reach it can start calls.
"""
