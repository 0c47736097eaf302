"""Every librdkafka configuration, built in one place from :class:`BrokerSettings`.

Security (SASL PLAIN/SCRAM, TLS) is applied identically to producers, consumers and admin
clients. Tuning follows docs/architecture.md: idempotent producer with ``acks=all``; consumer
groups with short session timeouts so a restarted consumer rejoins in seconds (a broker that
holds JoinGroup for session.timeout/2, as Tansu does, would otherwise stall a new consumer 23 s);
``fetch.wait.max.ms=10`` so records reach consumers within milliseconds.
"""

from __future__ import annotations

import logging
from typing import Any

from upbit_pipeline.settings import BrokerSettings

__all__ = ["admin_config", "client_config", "consumer_config", "producer_config"]


def client_config(broker: BrokerSettings) -> dict[str, Any]:
    """Connection and security settings shared by every client."""
    config: dict[str, Any] = {
        "bootstrap.servers": broker.bootstrap_servers,
        "security.protocol": broker.security_protocol,
        # librdkafka's own log lines go through Python logging (JSON in services), not stderr.
        "logger": logging.getLogger("upbit_pipeline.librdkafka"),
    }
    if broker.sasl_mechanism is not None:
        config["sasl.mechanism"] = broker.sasl_mechanism
    if broker.sasl_username is not None:
        config["sasl.username"] = broker.sasl_username
    if broker.sasl_password is not None:
        config["sasl.password"] = broker.sasl_password.get_secret_value()
    if broker.ssl_ca_location is not None:
        config["ssl.ca.location"] = str(broker.ssl_ca_location)
    if broker.ssl_certificate_location is not None:
        config["ssl.certificate.location"] = str(broker.ssl_certificate_location)
    if broker.ssl_key_location is not None:
        config["ssl.key.location"] = str(broker.ssl_key_location)
    return config


def admin_config(broker: BrokerSettings) -> dict[str, Any]:
    return client_config(broker)


def producer_config(
    broker: BrokerSettings, *, compression: str = "zstd", linger_ms: int = 5
) -> dict[str, Any]:
    """Idempotent, ``acks=all``, compressed: no duplicates from retries, nothing lost on ack.

    ``message.timeout.ms`` is 0 (infinite): librdkafka keeps retrying while the broker is down
    instead of failing records after 5 minutes; the producer's own spool bounds memory.
    """
    return {
        **client_config(broker),
        "enable.idempotence": True,
        "acks": "all",
        "compression.type": compression,
        "linger.ms": linger_ms,
        "batch.size": 1_000_000,
        "message.timeout.ms": 0,
        "queue.buffering.max.messages": 50_000,
        "queue.buffering.max.kbytes": 64 * 1024,
    }


def consumer_config(broker: BrokerSettings, group_id: str, **overrides: Any) -> dict[str, Any]:
    """A group consumer that commits only when told to (never automatically)."""
    return {
        **client_config(broker),
        "group.id": group_id,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 1000,
        "fetch.wait.max.ms": 10,
        "isolation.level": "read_committed",
        **overrides,
    }
