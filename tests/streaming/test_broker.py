"""The embedded broker and topic creation, against a real broker process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from upbit_pipeline.settings import BrokerSettings
from upbit_pipeline.streaming.broker import EmbeddedBroker
from upbit_pipeline.streaming.kafka import admin_config, client_config, consumer_config
from upbit_pipeline.streaming.topics import TopicNames, ensure_topics

EXPECTED = {
    "upbit.trade",
    "upbit.ticker",
    "upbit.orderbook",
    "upbit.candle",
    "upbit.gaps",
    "upbit.deadletter",
    "upbit.alerts",
}


def test_broker_starts_with_every_topic_and_partitions(broker: EmbeddedBroker) -> None:
    metadata = AdminClient(admin_config(broker.settings)).list_topics(timeout=10)
    assert set(metadata.topics) >= EXPECTED
    assert len(metadata.topics["upbit.trade"].partitions) == broker.settings.partitions


def test_topic_creation_is_idempotent(broker: EmbeddedBroker) -> None:
    admin = AdminClient(admin_config(broker.settings))
    assert ensure_topics(admin, broker.settings) == []  # all exist already: nothing created
    other = broker.settings.model_copy(update={"topic_prefix": "tenant2", "partitions": 2})
    created = ensure_topics(admin, other)
    assert set(created) == {t.replace("upbit.", "tenant2.") for t in EXPECTED}
    assert ensure_topics(admin, other) == []


def test_records_round_trip_through_the_broker(broker: EmbeddedBroker) -> None:
    topic = TopicNames.of(broker.settings).channel("trade")
    producer = Producer(
        {**client_config(broker.settings), "enable.idempotence": True, "acks": "all"}
    )
    for i in range(50):
        producer.produce(topic, key=b"KRW-BTC", value=b"%d" % i, partition=0, timestamp=1_000 + i)
    assert producer.flush(10) == 0
    consumer = Consumer(consumer_config(broker.settings, "t-roundtrip"))
    consumer.assign([TopicPartition(topic, 0, 0)])
    values: list[bytes] = []
    deadline = time.monotonic() + 20
    while len(values) < 50 and time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is not None and message.error() is None:
            values.append(message.value() or b"")
    consumer.close()
    assert values == [b"%d" % i for i in range(50)]


def test_security_settings_reach_librdkafka() -> None:
    settings = BrokerSettings(
        bootstrap_servers="redpanda:9093",
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-256",
        sasl_username="producer",
        sasl_password="s3cret",  # type: ignore[arg-type]
        ssl_ca_location="/etc/ssl/ca.pem",  # type: ignore[arg-type]
    )
    config = client_config(settings)
    assert config["security.protocol"] == "SASL_SSL"
    assert config["sasl.mechanism"] == "SCRAM-SHA-256"
    assert config["sasl.username"] == "producer"
    assert config["sasl.password"] == "s3cret"
    assert config["ssl.ca.location"] == "/etc/ssl/ca.pem"
    assert "sasl.mechanism" not in client_config(BrokerSettings())


def test_unknown_storage_is_a_user_error() -> None:
    from upbit_pipeline.errors import UserError

    with pytest.raises(UserError, match="--storage"):
        EmbeddedBroker(port=0, storage="postgres://x")


def test_broker_command_prints_address_and_stops_on_sigterm() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("UPBIT_PIPELINE_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "upbit_pipeline", "broker", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        assert process.stdout is not None
        address = process.stdout.readline().strip()  # blocks until the broker is ready
        assert address.startswith("127.0.0.1:")
        metadata = AdminClient({"bootstrap.servers": address}).list_topics(timeout=10)
        assert set(metadata.topics) >= EXPECTED
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    # The broker child went with it: nothing listens on the port any more.
    import socket

    host, port = address.split(":")
    with socket.socket() as sock:
        sock.settimeout(1)
        assert sock.connect_ex((host, int(port))) != 0


def test_s3_storage_survives_a_broker_restart(monkeypatch: pytest.MonkeyPatch) -> None:
    """``--storage s3://…`` keeps the log across broker restarts (moto as the S3 endpoint)."""
    import boto3
    from moto.server import ThreadedMotoServer

    from upbit_pipeline.streaming.broker import free_port

    s3_port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=s3_port)
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{s3_port}"
        for key, value in {
            "AWS_ENDPOINT": endpoint,
            "AWS_ALLOW_HTTP": "true",
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_DEFAULT_REGION": "us-east-1",
        }.items():
            monkeypatch.setenv(key, value)
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="tansu")
        port = free_port()
        with EmbeddedBroker(port=port, storage="s3://tansu/") as first:
            producer = Producer({**client_config(first.settings), "enable.idempotence": True})
            for i in range(20):
                producer.produce("upbit.trade", key=b"KRW-BTC", value=b"%d" % i, partition=0)
            assert producer.flush(20) == 0
        with EmbeddedBroker(port=port, storage="s3://tansu/") as second:
            consumer = Consumer(consumer_config(second.settings, "t-s3"))
            consumer.assign([TopicPartition("upbit.trade", 0, 0)])
            values: list[bytes] = []
            deadline = time.monotonic() + 20
            while len(values) < 20 and time.monotonic() < deadline:
                message = consumer.poll(0.5)
                if message is not None and message.error() is None:
                    values.append(message.value() or b"")
            consumer.close()
        assert values == [b"%d" % i for i in range(20)]
    finally:
        server.stop()
