"""Streaming: the Kafka-protocol log between the exchange and everything else.

``topics`` names the topics (the one place), ``kafka`` builds every librdkafka configuration (the
one place for security and tuning), ``broker`` starts the embedded broker, ``producer`` turns
WebSocket frames into records, ``gaps`` records and repairs what may be missing.
"""
