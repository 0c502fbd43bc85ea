"""Access tokens: verifying the JWTs clients present and minting the ones the server hands to agent workers.

The server trusts exactly one API key/secret pair, like ``livekit-server --dev`` (``devkey`` / ``secret``).
A token that does not verify is an ``AuthError``; callers turn it into HTTP 401 without echoing the token.
"""

from __future__ import annotations

import datetime

from livekit import api

DEV_API_KEY = "devkey"
DEV_API_SECRET = "secret"


class AuthError(Exception):
    """A token is missing, does not verify, or lacks the grant an operation needs."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class Keys:
    """The API key pair the server verifies and mints with."""

    def __init__(self, api_key: str = DEV_API_KEY, api_secret: str = DEV_API_SECRET) -> None:
        self.api_key = api_key
        self.api_secret = api_secret
        self._verifier = api.TokenVerifier(api_key, api_secret)

    def verify(self, token: str | None) -> api.access_token.Claims:
        """Return the claims of a valid token; raise ``AuthError`` otherwise."""
        if not token:
            raise AuthError("missing_token")
        try:
            return self._verifier.verify(token)
        except Exception:
            # PyJWT's messages can quote the token; keep only a stable code.
            raise AuthError("invalid_token") from None

    def verify_bearer(self, header: str | None) -> api.access_token.Claims:
        """Verify an ``Authorization: Bearer <jwt>`` header value."""
        if not header or not header.lower().startswith("bearer "):
            raise AuthError("missing_token")
        return self.verify(header[7:].strip())

    def mint_agent_token(
        self,
        *,
        room: str,
        identity: str,
        name: str = "",
        metadata: str = "",
        attributes: dict[str, str] | None = None,
    ) -> str:
        """The join token a worker receives in ``JobAssignment`` (kind agent, roomJoin for one room)."""
        token = (
            api.AccessToken(self.api_key, self.api_secret)
            .with_identity(identity)
            .with_kind("agent")
            .with_name(name)
            .with_metadata(metadata)
            .with_ttl(datetime.timedelta(hours=6))
            .with_grants(api.VideoGrants(room_join=True, room=room, agent=True, can_update_own_metadata=True))
        )
        if attributes:
            token = token.with_attributes(dict(attributes))
        return token.to_jwt()

    def mint_join_token(self, *, room: str, identity: str, name: str = "") -> str:
        """A plain participant token; a convenience for tests and the README walkthrough."""
        return (
            api.AccessToken(self.api_key, self.api_secret)
            .with_identity(identity)
            .with_name(name)
            .with_grants(api.VideoGrants(room_join=True, room=room, can_update_own_metadata=True))
            .to_jwt()
        )


def require_video(claims: api.access_token.Claims) -> api.VideoGrants:
    """The video grant of a token, or ``AuthError`` when it has none."""
    if claims.video is None:
        raise AuthError("no_video_grant")
    return claims.video
