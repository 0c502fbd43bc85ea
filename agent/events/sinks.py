"""Where the call events' sinks are built from the process settings: the spool, and the webhook assembled from its
three parts (the outbox's files, the signed sender, the delivery policy), for the job's live sends and for the
main process's redeliverer alike.

A webhook is refused, with the reason logged (`webhook_from`) or printed by the CLI, when ``WEBCALL_EVENTS_SECRET``
is missing or not ``whsec_`` secrets (an unsigned event could be forged by anyone who can reach the receiver), or
when ``WEBCALL_EVENTS_URL`` is not ``https://`` (``http://`` only with ``WEBCALL_EVENTS_ALLOW_HTTP=true``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from agent.errors import SettingsError
from agent.events.delivery import WebhookSink
from agent.events.outbox import Outbox
from agent.events.payload import Event
from agent.events.policy import DeliveryPolicy
from agent.events.signing import Signer, parse_secrets
from agent.events.spool import SpoolSink
from agent.events.webhook import WebhookSender, url_refusal
from agent.log import get_logger
from agent.settings import Settings, secret_value

logger = get_logger(__name__)


class Sink(Protocol):
    async def send(self, event: Event, *, job_id: str) -> object: ...


@dataclass(frozen=True, kw_only=True)
class Webhook:
    """The webhook's parts, as the settings make them."""

    sender: WebhookSender
    policy: DeliveryPolicy
    outbox: Outbox


@dataclass(frozen=True, kw_only=True)
class Refused:
    """Why the settings' webhook is not built (static text naming settings, never their values)."""

    reason: str


def webhook_from(settings: Settings) -> Webhook | Refused | None:
    """The webhook the settings ask for; None when no URL is set."""
    if not settings.events_url:
        return None
    secret = secret_value(settings.events_secret) or ""
    if not secret:
        return Refused(reason="WEBCALL_EVENTS_SECRET is not set")
    refusal = url_refusal(settings.events_url, allow_http=settings.events_allow_http)
    if refusal is not None:
        return Refused(reason=refusal)
    try:
        secrets = parse_secrets(secret)
    except SettingsError as error:
        return Refused(reason=error.reason)
    return Webhook(
        sender=WebhookSender(url=settings.events_url, signer=Signer(secrets, legacy=settings.events_legacy_signature)),
        policy=DeliveryPolicy.from_settings(settings),
        outbox=Outbox(settings.outbox_dir()),
    )


def sinks_from(settings: Settings) -> list[Sink]:
    """The sinks the settings ask for (possibly none); a refused webhook is logged."""
    sinks: list[Sink] = []
    if settings.events_dir is not None:
        sinks.append(SpoolSink(settings.events_dir))
    webhook = webhook_from(settings)
    if isinstance(webhook, Refused):
        logger.error("call events webhook disabled", extra={"reason": webhook.reason})
    elif webhook is not None:
        sinks.append(WebhookSink(sender=webhook.sender, policy=webhook.policy, outbox=webhook.outbox))
    return sinks
