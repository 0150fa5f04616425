"""The one settings object: defaults run everything embedded, `SMART_STATION_*` env vars override
them, CLI flags override both."""

from __future__ import annotations

import codecs
import json
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from base.addresses import check_host_ports, check_http_url

ENV_PREFIX = "SMART_STATION_"
_JSON_PUNCTUATION = '{}[]:,"0123456789.-+eE truefalsnul'


class StationSettings(BaseModel):
    """One station's entry in `SMART_STATION_STATIONS`, e.g.
    `{"ST-07": {"zone": "Asia/Urumqi", "day_first": true, "twelve_hour": false}}`."""

    model_config = ConfigDict(extra="forbid")

    zone: str | None = None
    day_first: bool | None = None
    twelve_hour: bool | None = None
    encoding: str | None = None  # of the bytes its systems send (GBK, GB18030, Big5...): not UTF-8

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str | None) -> str | None:
        """The codec's own name; None for UTF-8. JSON must read the same in it as in ASCII."""
        if value is None:
            return None
        try:
            name = codecs.lookup(value).name
        except LookupError as exc:
            raise ValueError(f"unknown encoding {value!r}") from exc
        try:
            same = _JSON_PUNCTUATION.encode(name) == _JSON_PUNCTUATION.encode("ascii")
        except UnicodeError:
            same = False
        if not same:
            raise ValueError(f"encoding {value!r} does not write JSON as ASCII does")
        return None if name == "utf-8" else name


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, populate_by_name=True, extra="forbid")

    state_dir: Path = Field(
        default=Path(".smart-station"),
        description="Folder for broker data, logs, jar cache and warehouse; delete to reset.",
    )
    kafka_bootstrap: str | None = Field(
        default=None,
        description="host:port[,...] of an existing Kafka cluster; unset: the embedded broker.",
    )
    kafka_port: int = Field(
        default=0, ge=0, le=65535, description="Embedded broker port; 0 picks a free one once."
    )
    kafka_heap: str = Field(default="1g", description="Embedded broker JVM heap (-Xmx).")
    kafka_secure: bool = Field(
        default=False,
        description="SASL/SCRAM over TLS: clients connect so, and the embedded broker starts so "
        "(its CA, certificate and users' passwords in <state_dir>/kafka).",
    )
    kafka_username: str | None = Field(
        default=None,
        description="SCRAM user; unset with the embedded broker: each process's own "
        "(dispatch, positions, loader, admin).",
    )
    kafka_password: SecretStr | None = Field(
        default=None,
        description="SCRAM password; unset with the embedded broker: the user's generated one.",
    )
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256"] = Field(default="SCRAM-SHA-512")
    kafka_ca_file: Path | None = Field(
        default=None,
        description="CA of the brokers' certificates; unset: the embedded broker's own CA, or "
        "the system's CAs for a cluster.",
    )
    clickhouse_url: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "clickhouse_url", f"{ENV_PREFIX}CLICKHOUSE_URL", "CLICKHOUSE_URL"
        ),
        description="http(s)://user:password@host:port of a ClickHouse server; unset: chDB.",
    )
    warehouse_database: str = Field(default="smart_station", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    warehouse_ttl_days: int = Field(
        default=365, ge=0, description="Days a loaded row is kept (0: forever); not pings."
    )
    warehouse_pings_ttl_days: int = Field(
        default=90, ge=0, description="Days a loaded GPS ping is kept (0: forever)."
    )
    warehouse_metrics_ttl_days: int = Field(
        default=14, ge=0, description="Days the loader's own metrics are kept (0: forever)."
    )
    phone_hmac_key: SecretStr | None = Field(
        default=None,
        description="Key of the callers' numbers' HMAC in the warehouse (16+ bytes); unset: one "
        "generated into <state_dir>/secrets/phone-hmac.key.",
    )
    grafana_reader_password: SecretStr | None = Field(
        default=None,
        description="Password of the read-only ClickHouse user `grafana_reader` that migrate "
        "creates on a server backend (unset: no user created).",
    )
    app_id: str = Field(default="smart-station", description="Faust app id (consumer group).")
    topic_prefix: str = Field(default="", description="Prefix for every topic name (namespacing).")
    topic_partitions: int = Field(default=4, ge=1, le=1024)
    zone: str = Field(default="Asia/Shanghai", description="Default station time zone (IANA).")
    stations: dict[str, StationSettings] = Field(
        default_factory=dict,
        description='Per-station conventions (JSON): {"ST-07": {"zone": "Asia/Urumqi", '
        '"day_first": true, "twelve_hour": false}}.',
    )
    h3_resolution: int = Field(default=8, ge=5, le=11)
    dispatch_radius_m: float = Field(default=5000.0, gt=0, description="Base search radius.")
    escalation_radii_m: list[float] = Field(
        default_factory=lambda: [10_000.0, 20_000.0],
        description="Wider radii a waiting alert moves to, one step per escalate_after_s (JSON).",
    )
    escalate_after_s: float = Field(
        default=120.0, gt=0, description="How long an alert waits before its search widens."
    )
    escalate_at_once_priority: int = Field(
        default=1, ge=0, le=5, description="Alerts this urgent or more widen at once (0: none)."
    )
    refusal_hold_s: float = Field(
        default=600.0,
        ge=0,
        description="An officer who declined, withdrew from or timed out on an alert is not "
        "proposed for it again for this long.",
    )
    event_max_ahead_s: float = Field(
        default=3600.0, gt=0, description="Events dated further ahead of now: out_of_range."
    )
    event_max_behind_s: float = Field(
        default=3 * 86400.0, gt=0, description="Events dated further behind now: out_of_range."
    )
    event_max_bytes: int = Field(
        default=256 * 1024,
        ge=1024,
        le=900_000,
        description="Raw events larger than this are dead-lettered oversized.",
    )
    position_max_age_s: float = Field(default=300.0, gt=0)
    position_write_interval_s: float = Field(
        default=10.0,
        ge=0.0,
        description="Same-cell positions reach the dispatch workers at most this often.",
    )
    ack_timeout_s: float = Field(
        default=60.0, gt=0, description="An officer who does not acknowledge is released."
    )
    positions_batch_max: int = Field(
        default=2000,
        ge=1,
        le=100_000,
        description="Most pings the positions worker handles as one batch (one produce call "
        "per output partition, one commit): larger batches cost less per ping under a backlog.",
    )
    positions_linger_ms: float = Field(
        default=10.0,
        ge=0.0,
        le=1000.0,
        description="How long the positions worker's fetches and produce requests wait to fill "
        "up: a ping's added latency, at most, against fewer requests per ping.",
    )
    sink_batch_size: int = Field(
        default=5000, ge=1, le=1_000_000, description="Rows per insert (one part, all or none)."
    )
    sink_flush_interval_s: float = Field(default=1.0, gt=0)
    sink_retry_max_s: float = Field(
        default=30.0, gt=0, description="Longest pause between the loader's retries (back-off)."
    )
    sink_metrics_interval_s: float = Field(
        default=10.0, gt=0, description="How often the loader records consumer lag."
    )
    session_timeout_s: float = Field(
        default=10.0,
        ge=6.0,
        le=300.0,
        description="Consumer group session timeout: how long a crashed worker's partitions wait.",
    )
    log_level: str = Field(default="warn", pattern=r"^(debug|info|warn|error|crit)$")

    @field_validator("kafka_bootstrap")
    @classmethod
    def _host_ports(cls, value: str | None) -> str | None:
        return None if value is None else check_host_ports(value)

    @field_validator("clickhouse_url")
    @classmethod
    def _server_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            check_http_url(value.get_secret_value())
        return value

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"

    @property
    def broker_dir(self) -> Path:
        return self.state_dir / "kafka"

    @property
    def warehouse_dir(self) -> Path:
        return self.state_dir / "warehouse"


def settings_env(settings: Settings) -> dict[str, str]:
    """The settings as `SMART_STATION_*` variables, to hand them to a child worker process."""
    env: dict[str, str] = {}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        text = json.dumps(value) if isinstance(value, dict | list) else str(value)
        env[f"{ENV_PREFIX}{name.upper()}"] = text
    return env
