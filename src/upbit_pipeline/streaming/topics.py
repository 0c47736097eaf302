"""Topic names and topic creation: the one place a topic is named.

Every channel topic is keyed by market code (``KRW-BTC``), so one market's records stay in one
partition, in order. Names are ``{prefix}.{name}``; the prefix is ``broker.topic_prefix``
(default ``upbit``) so that several deployments can share a cluster.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Final

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from upbit_pipeline.errors import TransientError
from upbit_pipeline.settings import BrokerSettings

__all__ = [
    "CHANNELS",
    "TopicNames",
    "ensure_topics",
]

log = logging.getLogger(__name__)

CHANNELS: Final[tuple[str, ...]] = ("trade", "ticker", "orderbook", "candle")


@dataclass(frozen=True)
class TopicNames:
    """All topic names for one prefix."""

    prefix: str = "upbit"

    def channel(self, channel: str) -> str:
        """Topic of a WebSocket channel: ``trade`` -> ``upbit.trade``."""
        if channel not in CHANNELS:
            raise ValueError(f"unknown channel {channel!r}; expected one of {', '.join(CHANNELS)}")
        return f"{self.prefix}.{channel}"

    @property
    def gaps(self) -> str:
        """Gap events: (market, channel, from, to, reason) whenever data may be missing."""
        return f"{self.prefix}.gaps"

    @property
    def deadletter(self) -> str:
        """Frames that did not decode, with the reason in a header."""
        return f"{self.prefix}.deadletter"

    @property
    def alerts(self) -> str:
        """Real-time alerts raised by the alert worker."""
        return f"{self.prefix}.alerts"

    def all(self) -> list[str]:
        return [*(self.channel(c) for c in CHANNELS), self.gaps, self.deadletter, self.alerts]

    @classmethod
    def of(cls, broker: BrokerSettings) -> TopicNames:
        return cls(prefix=broker.topic_prefix)


def ensure_topics(admin: AdminClient, broker: BrokerSettings, timeout_s: float = 30.0) -> list[str]:
    """Create every topic that does not exist yet; existing ones are left as they are.

    Idempotent: ``TOPIC_ALREADY_EXISTS`` counts as success. Returns the topics it created.
    """
    names = TopicNames.of(broker)
    config = {"retention.ms": str(broker.retention_ms)}
    wanted = [
        NewTopic(topic, broker.partitions, broker.replication_factor, config=config)
        for topic in names.all()
    ]
    created: list[str] = []
    futures = admin.create_topics(wanted, request_timeout=timeout_s, operation_timeout=timeout_s)
    for topic, future in futures.items():
        try:
            future.result(timeout=timeout_s)
            created.append(topic)
        except KafkaException as exc:
            error = exc.args[0]
            if isinstance(error, KafkaError) and error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                continue
            raise TransientError(f"cannot create topic {topic}: {error}") from exc
    if created:
        log.info("created topics %s", ", ".join(created))
    return created
