"""Warehouse writers (embedded chDB or a ClickHouse server) behind one batching interface."""
