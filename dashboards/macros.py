"""What Grafana and the ClickHouse plugin substitute in a panel's SQL before it reaches
ClickHouse: first Grafana's template variables (`$station`, `${station:singlequote}`,
`$__from`), then the plugin's macros (`$__timeFilter(ts)`, `$__timeInterval(ts)`, ...). Expanding
them here lets every panel query run against our warehouse (chDB or a server) without Grafana.

The macro expansions mirror grafana/clickhouse-datasource, pkg/macros/macros.go."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from base.errors import MacroError

VariableValue = str | Sequence[str]

# Grafana's variable syntaxes: ${name}, ${name:format} and $name.
VARIABLE_RE = re.compile(r"\$\{(\w+)(?::(\w+))?\}|\$(\w+)")
MACRO_RE = re.compile(r"\$__(\w+)")
GRAFANA_GLOBALS = frozenset({"__from", "__to"})


@dataclass(frozen=True, slots=True)
class TimeRange:
    """The dashboard's time range and the panel's interval (what `$__timeInterval` buckets by)."""

    start: datetime
    end: datetime
    interval_ms: int = 60_000

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("time range bounds must be timezone-aware")


def expand(
    sql: str, time_range: TimeRange, variables: Mapping[str, VariableValue] | None = None
) -> str:
    """`sql` as ClickHouse receives it from Grafana for this time range and these variables."""
    return expand_macros(expand_variables(sql, time_range, variables or {}), time_range)


def variables_used(sql: str) -> set[str]:
    """Names of the template variables `sql` refers to (not Grafana's globals or macros)."""
    names = {m.group(1) or m.group(3) for m in VARIABLE_RE.finditer(sql)}
    return {name for name in names if not name.startswith("__")}


def macros_used(sql: str) -> set[str]:
    return {m.group(1) for m in MACRO_RE.finditer(sql)} - {g[2:] for g in GRAFANA_GLOBALS}


def expand_variables(
    sql: str, time_range: TimeRange, variables: Mapping[str, VariableValue]
) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(3)
        if name in GRAFANA_GLOBALS:
            bound = time_range.start if name == "__from" else time_range.end
            return str(_epoch_ms(bound))
        if name.startswith("__"):
            return match.group(0)  # a plugin macro, expanded next
        if name not in variables:
            raise MacroError(f"no value for variable ${name}")
        return format_value(variables[name], match.group(2))

    return VARIABLE_RE.sub(replace, sql)


def format_value(value: VariableValue, fmt: str | None) -> str:
    """A variable's value in one of Grafana's formats (the subset SQL dashboards need)."""
    values = [value] if isinstance(value, str) else list(value)
    if fmt == "singlequote":
        return ",".join("'" + v.replace("'", "\\'") + "'" for v in values)
    if fmt == "sqlstring":
        return ",".join("'" + v.replace("'", "''") + "'" for v in values)
    if fmt == "csv":
        return ",".join(values)
    if fmt in (None, "raw"):
        if len(values) != 1:
            raise MacroError("a multi-value variable needs a format such as :singlequote")
        return values[0]
    raise MacroError(f"unsupported variable format :{fmt}")


def expand_macros(sql: str, time_range: TimeRange) -> str:
    out: list[str] = []
    pos = 0
    while match := MACRO_RE.search(sql, pos):
        name = match.group(1)
        expander = MACROS.get(name)
        if expander is None:
            raise MacroError(f"unknown macro $__{name}")
        args, end = _arguments(sql, match.end())
        out.append(sql[pos : match.start()])
        out.append(expander(time_range, args))
        pos = end
    out.append(sql[pos:])
    return "".join(out)


def _arguments(sql: str, start: int) -> tuple[list[str], int]:
    """The comma-separated arguments in the parentheses at `start` (nesting allowed), and where
    they end; no parentheses means no arguments."""
    if start >= len(sql) or sql[start] != "(":
        return [], start
    depth, args, current = 0, [], start + 1
    for i in range(start, len(sql)):
        char = sql[i]
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                args.append(sql[current:i].strip())
                return [a for a in args if a], i + 1
        elif char == "," and depth == 1:
            args.append(sql[current:i].strip())
            current = i + 1
    raise MacroError(f"unclosed parenthesis after position {start}")


# -- the plugin's macros -------------------------------------------------------------------------


def _epoch_ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def _date_time(t: datetime) -> str:
    return f"toDateTime({int(t.timestamp())})"


def _date_time64(t: datetime) -> str:
    return f"fromUnixTimestamp64Milli({_epoch_ms(t)})"


def _date(t: datetime) -> str:
    return f"toDate('{t.astimezone(UTC):%Y-%m-%d}')"


def _one(args: list[str], macro: str) -> str:
    if len(args) != 1:
        raise MacroError(f"$__{macro} takes 1 argument, got {len(args)}")
    return args[0]


def _between(column: str, low: str, high: str) -> str:
    return f"{column} >= {low} AND {column} <= {high}"


def _time_filter(r: TimeRange, args: list[str]) -> str:
    return _between(_one(args, "timeFilter"), _date_time(r.start), _date_time(r.end))


def _time_filter_ms(r: TimeRange, args: list[str]) -> str:
    return _between(_one(args, "timeFilter_ms"), _date_time64(r.start), _date_time64(r.end))


def _date_filter(r: TimeRange, args: list[str]) -> str:
    return _between(_one(args, "dateFilter"), _date(r.start), _date(r.end))


def _date_time_filter(r: TimeRange, args: list[str]) -> str:
    if len(args) != 2:
        raise MacroError(f"$__dateTimeFilter takes 2 arguments, got {len(args)}")
    date_column, time_column = args
    dates = _between(date_column, _date(r.start), _date(r.end))
    times = _between(time_column, _date_time(r.start), _date_time(r.end))
    return f"({dates}) AND ({times})"


def _interval_s(r: TimeRange) -> int:
    return max(r.interval_ms // 1000, 1)


def _time_interval(r: TimeRange, args: list[str]) -> str:
    column = _one(args, "timeInterval")
    return f"toStartOfInterval(toDateTime({column}), INTERVAL {_interval_s(r)} second)"


def _time_interval_ms(r: TimeRange, args: list[str]) -> str:
    column = _one(args, "timeInterval_ms")
    interval = max(r.interval_ms, 1)
    return f"toStartOfInterval(toDateTime64({column}, 3), INTERVAL {interval} millisecond)"


MACROS: dict[str, Callable[[TimeRange, list[str]], str]] = {
    "fromTime": lambda r, _: _date_time(r.start),
    "toTime": lambda r, _: _date_time(r.end),
    "fromTime_ms": lambda r, _: _date_time64(r.start),
    "toTime_ms": lambda r, _: _date_time64(r.end),
    "timeFilter": _time_filter,
    "timeFilter_ms": _time_filter_ms,
    "dateFilter": _date_filter,
    "dateTimeFilter": _date_time_filter,
    "dt": _date_time_filter,
    "timeInterval": _time_interval,
    "timeInterval_ms": _time_interval_ms,
    "interval_s": lambda r, _: str(_interval_s(r)),
}
