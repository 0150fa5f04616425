"""Grafana dashboards kept as code: defined in Python (`command_map`, `dispatch_performance`,
`data_quality`), rendered to the JSON files next to this module, validated, and pushed to a
Grafana."""
