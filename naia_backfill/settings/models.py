"""Building blocks of the point-set model: the strict base model, request-rate limits, authentication and
what every source shares (a Dagster pool) and every HTTP source shares (URL, timeouts, retries, TLS)."""

from __future__ import annotations

import re
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

NAME_RE = r"^[a-z][a-z0-9_]{0,62}$"
ENV_RE = r"^[A-Z_][A-Z0-9_]*$"


class Model(BaseModel):
    """Unknown fields are refused, values are frozen once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class RateLimit(Model):
    """At most ``requests`` requests in any window of ``per_seconds`` seconds, shared by every run of the source."""

    requests: int = Field(gt=0, description="Requests allowed per window.")
    per_seconds: float = Field(default=60.0, gt=0, description="Window length in seconds.")

    @property
    def per_second(self) -> float:
        return self.requests / self.per_seconds


class SourceBase(Model):
    pool: str | None = Field(
        default=None,
        description="Dagster concurrency pool shared by every point set reading this source; "
        "defaults to one pool per source kind and address.",
    )
    rate_limit: RateLimit | None = Field(default=None, description="Client-side request-rate limit.")
    rate_limit_key: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9_.:-]{1,100}$",
        description="Sources sharing this key share one request-rate limit; default: the source's address "
        "(scheme, host and port), so every point set reading one server shares its limit.",
    )

    @property
    def limit_key(self) -> str:
        """Which request-rate limit this source shares."""
        return self.rate_limit_key or self.address() or self.kind  # type: ignore[attr-defined]

    def address(self) -> str:
        """What identifies the source system (host and port for HTTP sources); no user info, no secrets."""
        return ""

    def default_pool(self) -> str:
        addr = re.sub(r"[^A-Za-z0-9]+", "_", self.address()).strip("_")
        return f"naia_{self.kind}" + (f"_{addr}" if addr else "")  # type: ignore[attr-defined]

    @property
    def pool_name(self) -> str:
        return self.pool or self.default_pool()


class BasicAuth(Model):
    kind: Literal["basic"]
    username_env: str = Field(pattern=ENV_RE, description="Environment variable holding the user name.")
    password_env: str = Field(pattern=ENV_RE, description="Environment variable holding the password.")


class BearerAuth(Model):
    kind: Literal["bearer"]
    token_env: str = Field(pattern=ENV_RE, description="Environment variable holding the bearer token.")


class NoAuth(Model):
    kind: Literal["none"]


Auth = Annotated[BasicAuth | BearerAuth | NoAuth, Field(discriminator="kind")]


class HttpSourceBase(SourceBase):
    base_url: str = Field(description="Root URL of the API.")
    timeout_seconds: float = Field(default=60.0, gt=0, description="Per-request timeout.")
    max_retries: int = Field(default=6, ge=0, le=50, description="Retries of 429/5xx/timeouts per request.")
    verify_tls: bool = Field(default=True, description="Verify the server certificate.")
    ca_bundle: str | None = Field(default=None, description="Path of a CA bundle to verify the server with.")

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        if not re.match(r"^https?://[^\s/]+", v):
            raise ValueError("must be an http:// or https:// URL")
        if "@" in (urlsplit(v).netloc or ""):
            raise ValueError(
                "must not contain credentials (user:password@): secrets belong in environment variables, "
                "name them with auth.*_env"
            )
        return v.rstrip("/")

    def address(self) -> str:
        parts = urlsplit(self.base_url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return f"{parts.scheme}://{(parts.hostname or '').lower()}:{port}"

    def default_pool(self) -> str:
        parts = urlsplit(self.base_url)
        host = re.sub(r"[^A-Za-z0-9]+", "_", (parts.hostname or "").lower())
        port = f"_{parts.port}" if parts.port else ""
        return f"naia_{self.kind}_{host}{port}"  # type: ignore[attr-defined]
