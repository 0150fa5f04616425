"""Embedded infrastructure: the Kafka broker launcher (official jars, KRaft, single node)."""
