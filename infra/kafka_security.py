"""How a Kafka client proves who it is: nothing (PLAINTEXT, the default embedded broker), or
SASL/SCRAM over TLS. One value, turned into the options of each client library the project
uses (kafka-python, and Faust's aiokafka driver), so no client is left on plaintext."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faust
from pydantic import SecretStr

SCRAM_MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256")


@dataclass(frozen=True, slots=True)
class KafkaSecurity:
    """No username: plaintext. A username: SASL_SSL with SCRAM, trusting `ca_file` (or the
    system's CAs). The password is a SecretStr: never in a repr, a log line or an error."""

    username: str | None = None
    password: SecretStr | None = None
    mechanism: str = "SCRAM-SHA-512"
    ca_file: Path | None = None

    @property
    def secure(self) -> bool:
        return self.username is not None

    @property
    def protocol(self) -> str:
        return "SASL_SSL" if self.secure else "PLAINTEXT"

    def ssl_context(self) -> ssl.SSLContext:
        """Verifies the broker's certificate and its name (127.0.0.1 is in the embedded one's)."""
        cafile = str(self.ca_file) if self.ca_file else None
        return ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cafile)

    def kafka_python(self) -> dict[str, Any]:
        """Keyword arguments for kafka-python's KafkaProducer, KafkaConsumer and admin client,
        and for aiokafka's AIOKafkaConsumer and AIOKafkaProducer (the same names)."""
        if not self.secure:
            return {}
        return {
            "security_protocol": "SASL_SSL",
            "ssl_context": self.ssl_context(),
            "sasl_mechanism": self.mechanism,
            "sasl_plain_username": self.username,
            "sasl_plain_password": self._password(),
        }

    def faust_credentials(self) -> faust.SASLCredentials | None:
        """Faust's `broker_credentials` (its aiokafka driver: consumers, producer, admin)."""
        if not self.secure:
            return None
        return faust.SASLCredentials(
            username=self.username,
            password=self._password(),
            mechanism=self.mechanism,
            ssl_context=self.ssl_context(),
        )

    def _password(self) -> str:
        return self.password.get_secret_value() if self.password else ""


PLAINTEXT = KafkaSecurity()
