"""Embedded infrastructure: the Kafka broker launcher (official jars via Maven, KRaft single node)."""
