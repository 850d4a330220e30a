"""Settings: the only reader of the environment (prefix `VIPPS_PROXY_`), read once at start-up."""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit, urlunsplit

import phonenumbers
from pydantic import (
    AnyHttpUrl,
    BeforeValidator,
    Field,
    ValidationError,
    field_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from policies.audit.ratelimit import parse_limits
from policies.core.engine import PolicyMode
from policies.core.model import Action
from policies.rules.amounts import parse_bounds

ENV_PREFIX = "VIPPS_PROXY_"


def split_rule_actions(value: object) -> object:
    """Split `amount.bounds=block,phone.format=report` into `{rule: action}` text pairs.

    The field's type then checks each action against `Action`; rule names are checked when the
    engine is built, against the rules in force.
    """
    if not isinstance(value, str):
        return value
    pairs: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in value.split(","))):
        rule, sep, action = (s.strip() for s in part.partition("="))
        if not sep or not rule:
            raise ValueError(f"{part!r} is not of the form rule=action")
        pairs[rule] = action
    return pairs


class Settings(BaseSettings):
    """Every setting of the proxy; each field is the variable `VIPPS_PROXY_<NAME>`."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, case_sensitive=False, extra="ignore", frozen=True
    )

    upstream_url: AnyHttpUrl = Field(
        default=AnyHttpUrl("https://apitest.vipps.no"),
        description="Where requests go; production is https://api.vipps.no.",
    )
    upstream_ca_bundle: Path | None = Field(
        default=None,
        description="PEM file of CAs to trust for the upstream instead of the system's.",
    )
    listen_host: str = Field(default="127.0.0.1", description="Address the merchant app calls.")
    listen_port: int = Field(default=8080, ge=1, le=65535)
    admin_host: str = Field(
        default="127.0.0.1", description="Address of /metrics, /livez, /readyz."
    )
    admin_port: int = Field(default=9180, ge=1, le=65535)
    upstream_connect_timeout_seconds: float = Field(default=3.0, gt=0, le=60)
    upstream_timeout_seconds: float = Field(default=20.0, gt=0, le=300)
    # Above `policies.catalogue.body_limits.LARGEST_DOCUMENTED_BODY` (5.3 MiB): a limit is a block
    # too.
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    max_response_bytes: int = Field(default=16 * 1024 * 1024, ge=1024, le=1024 * 1024 * 1024)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_body_max_bytes: int = Field(default=4096, ge=0, le=1024 * 1024)
    shutdown_grace_seconds: float = Field(default=20.0, ge=0, le=600)
    policy_mode: PolicyMode = PolicyMode.ENFORCE
    rule_actions: Annotated[dict[str, Action], NoDecode, BeforeValidator(split_rule_actions)] = (
        Field(default_factory=dict)
    )
    policy_fail_open: bool = False
    phone_default_region: str = Field(default="NO", pattern=r"^[A-Z]{2}$")
    amount_bounds: str = Field(
        default="NOK=1000..10000000,DKK=1000..10000000,EUR=100..1000000",
        description="Per-currency inclusive min..max in minor units for the amount.bounds rule.",
    )
    rate_limits: str = Field(
        default="",
        description="Changes to Vipps' per-payment limits, e.g. ecom.initiate_payment=off.",
    )
    # About 2.0 KiB per payment across the four stores (tests/hardening/state_cost.py), so the
    # default 10,000 take about 20 MiB and fit a 128 MiB sidecar.
    state_max_entries: int = Field(default=10_000, ge=100, le=10_000_000)
    state_ttl_seconds: float = Field(default=7 * 24 * 3600.0, ge=60, le=90 * 24 * 3600.0)
    poll_audit_window_seconds: float = Field(default=300.0, ge=5, le=24 * 3600.0)
    dashboard_enabled: bool = True
    dashboard_max_entries: int = Field(default=500, ge=10, le=100_000)
    strict_settings: bool = Field(
        default=True,
        description="An unknown VIPPS_PROXY_* variable stops start-up (false: only a warning).",
    )
    state_url: str = Field(
        default="",
        repr=False,  # may carry a password: never in a repr or a traceback's locals
        description="Shared payment-level state: empty keeps it in this process; "
        "redis://[user:password@]host:port/db, or rediss:// for TLS, uses Redis or Valkey.",
    )
    state_timeout_ms: int = Field(
        default=50, ge=1, le=5000, description="The most one round trip to the state may take."
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower_level(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("amount_bounds")
    @classmethod
    def _bounds(cls, value: str) -> str:
        parse_bounds(value)
        return value

    @field_validator("rate_limits")
    @classmethod
    def _limits(cls, value: str) -> str:
        parse_limits(value)
        return value

    @field_validator("phone_default_region")
    @classmethod
    def _region(cls, value: str) -> str:
        if value not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(
                f"{value!r} is not a region libphonenumber knows (e.g. NO, DK, FI, SE)"
            )
        return value

    @field_validator("upstream_url")
    @classmethod
    def _no_query(cls, value: AnyHttpUrl) -> AnyHttpUrl:
        if value.query or value.fragment:
            raise ValueError("must not carry a query string or fragment")
        if value.username or value.password:
            # Vipps authenticates with headers; a password here would end up in logs.
            raise ValueError("must not carry a user name or password")
        return value

    @field_validator("state_url")
    @classmethod
    def _state_url(cls, value: str) -> str:
        value = value.strip()
        if not value:
            return value
        parts = urlsplit(value)
        if parts.scheme not in ("redis", "rediss"):
            # The value is not echoed: it may carry a password.
            raise ValueError("must start with redis:// or rediss:// (TLS), or be empty")
        try:
            parts.port  # noqa: B018 - raises on a port that is no number
        except ValueError:
            raise ValueError("has a port that is not a number") from None
        if not parts.hostname:
            raise ValueError("must name a host, e.g. redis://redis:6379/0")
        if parts.path.strip("/") and not parts.path.strip("/").isdigit():
            raise ValueError("must end with a database number (/0), if any")
        return value

    @property
    def state_backend(self) -> str:
        """The state backend as the start-up line names it: the URL without its password."""
        if not self.state_url:
            return "in-process"
        parts = urlsplit(self.state_url)
        host = parts.hostname or ""
        netloc = f"[{host}]" if ":" in host else host
        if parts.port is not None:
            netloc = f"{netloc}:{parts.port}"
        if parts.username:
            netloc = f"{parts.username}:***@{netloc}"
        elif parts.password:
            netloc = f":***@{netloc}"
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))

    @property
    def upstream_base(self) -> str:
        """The upstream URL without a trailing slash, for joining with request paths."""
        return str(self.upstream_url).rstrip("/")


class ConfigError(Exception):
    """Start-up configuration is invalid; the message is one readable line."""


def _describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        name = ENV_PREFIX + "_".join(str(p) for p in item["loc"][:1]).upper()
        # The value itself is not echoed: it may be a key pasted into the wrong variable.
        message = item["msg"].removeprefix("Value error, ")
        # Where in a structured value, e.g. the rule whose action is not one of Action's.
        within = "".join(f"{p}: " for p in item["loc"][1:])
        parts.append(f"{name}: {within}{message}")
    return "; ".join(parts)


def load_settings() -> Settings:
    """Read settings from the environment; raise ConfigError with one line naming the variable."""
    try:
        return Settings()
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None


class StartupError(ConfigError):
    """A setting's value cannot be used at start-up: a port in use, a host that does not resolve.

    The message is one line naming the variable, the value and the cause:
    `VIPPS_PROXY_LISTEN_PORT=8080: address already in use`.
    """

    def __init__(self, variable: str, value: str, cause: str) -> None:
        super().__init__(f"{variable}={value}: {cause}")
        self.variable = variable
        self.value = value
        self.cause = cause


# Names Kubernetes injects for a Service called `vipps-proxy` (docker-link style variables):
# VIPPS_PROXY_SERVICE_HOST, VIPPS_PROXY_SERVICE_PORT[_<NAME>], VIPPS_PROXY_PORT,
# VIPPS_PROXY_PORT_8080_TCP[_PROTO|_PORT|_ADDR].
_SERVICE_VARIABLE = re.compile(r"(?:.*_)?(?:SERVICE_HOST|SERVICE_PORT(?:_.*)?|PORT|PORT_.*)")

# How close a misspelt name must be to a setting to be suggested (difflib's ratio).
SUGGESTION_CUTOFF = 0.8


@dataclass(frozen=True, slots=True)
class UnknownVariable:
    """A `VIPPS_PROXY_*` variable that is no setting."""

    name: str
    suggestion: str | None
    # A name Kubernetes injects for a Service: never fatal.
    service: bool

    @property
    def note(self) -> str:
        """The name, with the closest setting when there is a close one."""
        return self.name + (f" (did you mean {self.suggestion}?)" if self.suggestion else "")


def unknown_settings(environ: Mapping[str, str]) -> list[UnknownVariable]:
    """`VIPPS_PROXY_*` variables that are no setting, each with a close setting if any.

    Suggestions compare the part after the prefix, so the shared prefix alone never makes a
    name look close (`VIPPS_PROXY_FOO` suggests nothing).
    """
    known = sorted(name.upper() for name in Settings.model_fields)
    found = []
    for key in sorted(environ):
        upper = key.upper()
        if not upper.startswith(ENV_PREFIX):
            continue
        rest = upper.removeprefix(ENV_PREFIX)
        if rest.lower() in Settings.model_fields:
            continue
        close = difflib.get_close_matches(rest, known, n=1, cutoff=SUGGESTION_CUTOFF)
        found.append(
            UnknownVariable(
                key,
                ENV_PREFIX + close[0] if close else None,
                _SERVICE_VARIABLE.fullmatch(rest) is not None,
            )
        )
    return found


def check_unknown(unknown: list[UnknownVariable], *, strict: bool) -> list[UnknownVariable]:
    """Raise ConfigError for unknown variables when strict; return those left to warn about.

    A Service's injected names are only warned about (and only when close to a setting).
    """
    fatal = [u for u in unknown if strict and not u.service]
    if fatal:
        names = "; ".join(f"{u.note}: is not a setting" for u in fatal)
        raise ConfigError(
            f"{names} (VIPPS_PROXY_STRICT_SETTINGS=false starts anyway, with a warning)"
        )
    return [u for u in unknown if not u.service or u.suggestion is not None]


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """`VIPPS_PROXY_*` variables that are no setting, each with the closest known name."""
    return [u.note for u in unknown_settings(environ)]


def process_environment() -> Mapping[str, str]:
    """The process environment: read here only, so no other module reaches for `os.environ`."""
    return os.environ
