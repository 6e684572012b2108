"""The Notifier resource: where a namespace's operation events go.

Why a resource of its own and not a field on each App: the people who want to hear about
operations (an on-call channel, an incident tool) are the namespace's, not one App's, and a
delivery that keeps failing needs somewhere to say so (`status.conditions`) that `kubectl get`
shows. One Notifier is one destination; a namespace may have several.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from bosun.models.base import Condition, KubeModel


class NotifierFormat(StrEnum):
    CLOUDEVENTS = "CloudEvents"  # CloudEvents 1.0, structured JSON, HMAC-signed when a secret is given
    SLACK = "Slack"  # a Slack-compatible incoming webhook: {"text": ...}


class EventKind(StrEnum):
    CREATED = "Created"
    WAITING_FOR_WINDOW = "WaitingForWindow"
    AWAITING_APPROVAL = "AwaitingApproval"
    STARTED = "Started"
    ROLLING_BACK = "RollingBack"
    ENDED = "Ended"


class SecretKey(KubeModel):
    """A key of a Secret in the Notifier's namespace."""

    name: str = Field(min_length=1, max_length=253, description="Secret name.")
    key: str = Field(min_length=1, max_length=253, description="Key in the Secret's data.")


class NotifierSpec(KubeModel):
    """One destination for the operation events of this namespace."""

    url: str = Field(
        min_length=8,
        max_length=2048,
        pattern=r"^https?://[^\s]+$",
        description="Where events are POSTed (http:// or https://).",
    )
    format: NotifierFormat = Field(default=NotifierFormat.CLOUDEVENTS, description="CloudEvents or Slack.")
    signing_secret: SecretKey | None = Field(
        default=None,
        description="CloudEvents: sign each body with HMAC-SHA256 under this Secret's key "
        "(header X-Bosun-Signature: sha256=<hex>).",
    )
    events: list[EventKind] | None = Field(
        default=None,
        max_length=6,
        description="Which events to send (default: all): Created, WaitingForWindow, AwaitingApproval, Started, "
        "RollingBack, Ended.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )


class NotifierStatus(KubeModel):
    """How delivery goes, written only by Bosun."""

    conditions: list[Condition] = Field(
        default_factory=list, description="Delivering: True while deliveries succeed, False (with why) while they fail."
    )
    last_delivered_at: str | None = Field(default=None, description="When an event was last delivered.")
    last_error: str = Field(default="", description="The last failed delivery, and why.")
    last_error_at: str | None = Field(default=None, description="When it failed.")
    given_up: int = Field(default=0, description="Events given up on after retrying for the whole retry time.")
