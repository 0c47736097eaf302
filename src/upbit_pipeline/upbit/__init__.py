"""The exchange edge: Upbit's wire protocol (models, decoders, REST and WebSocket clients) and
the local simulator that speaks the same protocol. Nothing here knows about Kafka or the lake."""
