"""What the native routes' requests and the simple acknowledgement share."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Native(BaseModel):
    model_config = ConfigDict(extra="forbid")


class KeyInBody(BaseModel):
    """PostHog clients send the key in the body; the others use a header."""

    # Excluded from dumps: a key must never travel on with the data.
    api_key: str | None = Field(None, exclude=True, description="API key, if not in a header.")
    token: str | None = Field(None, exclude=True, description="API key, PostHog's spelling.")


class Ack(BaseModel):
    accepted: int = Field(description="Records accepted.")
    durable: bool = Field(description="True when they were on disk before this response.")
