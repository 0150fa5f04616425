"""The picture of a night: H3 cells shaded by alert load, stations, officers by status, alerts by
priority and lines from each busy officer to their incident, as a self-contained HTML/SVG page
(no network, no tiles, no script) and as PNG. One scene, projected once, drawn by two writers."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from html import escape
from pathlib import Path

import h3
from PIL import Image, ImageDraw

from streams.ingest.alerts import priority_of
from streams.sim.district import Area
from streams.sim.night import Night

BACKGROUND = "#f7f5f0"
STATUS_COLOURS = {"available": "#2e7d32", "en_route": "#1565c0", "on_scene": "#6a1b9a"}
PRIORITY_COLOURS = {1: "#d50000", 2: "#ff6d00", 3: "#fbc02d", 4: "#0097a7", 5: "#757575"}
CELL_COLOUR = (198, 40, 40)  # shaded by load, up to 55 % opaque
STATION_COLOUR = "#212121"
LINE_COLOUR = "#455a64"


@dataclass(frozen=True, slots=True)
class Scene:
    area: Area
    stations: tuple[tuple[str, str, float, float], ...]  # id, name, lat, lon
    officers: tuple[tuple[str, str, float, float], ...]  # id, status, lat, lon
    alerts: tuple[tuple[str, int, float, float], ...]  # id, priority, lat, lon
    # every response of the night: where the officer set off -> the incident
    lines: tuple[tuple[float, float, float, float], ...]
    cells: tuple[tuple[str, int], ...]  # H3 cell, alerts in it
    desk_officers: int = 0


def scene_of(night: Night, resolution: int = 8) -> Scene:
    """The night as it stands: officers where they are now, every alert and response it had."""
    alerts = tuple(
        (alert_id, priority_of(str(call["category"])), float(call["lat"]), float(call["lon"]))
        for alert_id, call in night.ledger.alerts.items()
    )
    officers = []
    for officer in night.officers.values():
        if not officer.on_patrol:
            continue
        status = "available"
        if officer.alert_id is not None and officer.alert_id in night.ledger.alerts:
            status = "en_route" if officer.responding else "on_scene"
        officers.append((officer.officer_id, status, officer.lat, officer.lon))
    lines = []
    for _, alert_id, lat, lon in night.ledger.responses:
        call = night.ledger.alerts[alert_id]
        lines.append((lat, lon, float(call["lat"]), float(call["lon"])))
    load = Counter(h3.latlng_to_cell(lat, lon, resolution) for _, _, lat, lon in alerts)
    return Scene(
        area=night.district.area,
        stations=tuple((s.station_id, s.name, s.lat, s.lon) for s in night.district.stations),
        officers=tuple(officers),
        alerts=alerts,
        lines=tuple(lines),
        cells=tuple(sorted(load.items())),
        desk_officers=sum(not o.on_patrol for o in night.officers.values()),
    )


@dataclass(frozen=True, slots=True)
class Projection:
    """Equirectangular at the area's middle latitude: fine for a district or a city."""

    area: Area
    width: int

    @property
    def height(self) -> int:
        a = self.area
        aspect = (a.north - a.south) / (
            (a.east - a.west) * math.cos(math.radians((a.south + a.north) / 2))
        )
        return max(1, round(self.width * aspect))

    def xy(self, lat: float, lon: float) -> tuple[float, float]:
        a = self.area
        x = (lon - a.west) / (a.east - a.west) * self.width
        y = (a.north - lat) / (a.north - a.south) * self.height
        return round(x, 1), round(y, 1)


def _cell_points(projection: Projection, cell: str) -> list[tuple[float, float]]:
    return [projection.xy(lat, lon) for lat, lon in h3.cell_to_boundary(cell)]


def _alert_radius(priority: int) -> float:
    """Larger for the more urgent; never hidden under the officer on scene (radius 3)."""
    return 9.0 - priority


def to_svg(scene: Scene, width: int = 1200) -> str:
    p = Projection(scene.area, width)
    peak = max((n for _, n in scene.cells), default=1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" id="night" width="{p.width}" '
        f'height="{p.height}" viewBox="0 0 {p.width} {p.height}">',
        f'<rect class="background" width="{p.width}" height="{p.height}" fill="{BACKGROUND}"/>',
    ]
    red, green, blue = CELL_COLOUR
    for cell, count in scene.cells:
        points = " ".join(f"{x},{y}" for x, y in _cell_points(p, cell))
        parts.append(
            f'<polygon class="cell" data-cell="{cell}" data-alerts="{count}" points="{points}" '
            f'fill="rgb({red},{green},{blue})" fill-opacity="{0.1 + 0.45 * count / peak:.2f}"/>'
        )
    for lat1, lon1, lat2, lon2 in scene.lines:
        (x1, y1), (x2, y2) = p.xy(lat1, lon1), p.xy(lat2, lon2)
        parts.append(
            f'<line class="assignment" x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" '
            f'stroke="{LINE_COLOUR}" stroke-width="1.5"/>'
        )
    for station_id, name, lat, lon in scene.stations:
        x, y = p.xy(lat, lon)
        parts.append(
            f'<rect class="station" data-id="{station_id}" x="{x - 6}" y="{y - 6}" width="12" '
            f'height="12" fill="{STATION_COLOUR}"><title>{escape(name)}</title></rect>'
        )
    for alert_id, priority, lat, lon in scene.alerts:
        x, y = p.xy(lat, lon)
        r = _alert_radius(priority)
        parts.append(
            f'<path class="alert p{priority}" data-id="{escape(alert_id)}" '
            f'd="M{x},{y - r} L{x + r},{y} L{x},{y + r} L{x - r},{y} Z" '
            f'fill="{PRIORITY_COLOURS.get(priority, "#757575")}"/>'
        )
    for officer_id, status, lat, lon in scene.officers:
        x, y = p.xy(lat, lon)
        parts.append(
            f'<circle class="officer {status}" data-id="{officer_id}" cx="{x}" cy="{y}" r="3" '
            f'fill="{STATUS_COLOURS[status]}"/>'
        )
    parts.append("</svg>")
    return "\n".join(parts)


def to_html(scene: Scene, title: str, width: int = 1200) -> str:
    by_status = Counter(status for _, status, _, _ in scene.officers)
    by_priority = Counter(priority for _, priority, _, _ in scene.alerts)
    statuses = [
        _key(STATUS_COLOURS[s], "●", s.replace("_", " "), by_status[s]) for s in STATUS_COLOURS
    ]
    priorities = [
        _key(PRIORITY_COLOURS[k], "◆", f"P{k}", by_priority[k]) for k in sorted(by_priority)
    ]
    legend = [
        f"{len(scene.stations)} stations",
        *statuses,
        f"desk {scene.desk_officers}",
        *priorities,
        f"{len(scene.cells)} H3 cells with alerts",
    ]
    return (
        '<!DOCTYPE html>\n<html lang="zh"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title>"
        "<style>body{margin:0;font:14px sans-serif;background:#fff}"
        "#legend{padding:6px 10px}#legend span{margin-right:12px}</style></head><body>\n"
        f'<div id="legend">{escape(title)} · {" · ".join(legend)}</div>\n'
        f"{to_svg(scene, width)}\n</body></html>\n"
    )


def _key(colour: str, mark: str, label: str, count: int) -> str:
    return f'<span style="color:{colour}">{mark} {label} {count}</span>'


def _rgb(colour: str) -> tuple[int, int, int]:
    value = int(colour.lstrip("#"), 16)
    return value >> 16, (value >> 8) & 0xFF, value & 0xFF


def to_png(scene: Scene, path: Path, width: int = 1200) -> None:
    """The same drawing as `to_svg`, rasterised with Pillow."""
    p = Projection(scene.area, width)
    image = Image.new("RGBA", (p.width, p.height), (*_rgb(BACKGROUND), 255))
    cells = Image.new("RGBA", image.size, (0, 0, 0, 0))
    shade = ImageDraw.Draw(cells)
    peak = max((n for _, n in scene.cells), default=1)
    for cell, count in scene.cells:
        alpha = round(255 * (0.1 + 0.45 * count / peak))
        shade.polygon(_cell_points(p, cell), fill=(*CELL_COLOUR, alpha))
    image = Image.alpha_composite(image, cells)
    draw = ImageDraw.Draw(image)
    for lat1, lon1, lat2, lon2 in scene.lines:
        draw.line([p.xy(lat1, lon1), p.xy(lat2, lon2)], fill=_rgb(LINE_COLOUR), width=2)
    for _, _, lat, lon in scene.stations:
        x, y = p.xy(lat, lon)
        draw.rectangle([x - 6, y - 6, x + 6, y + 6], fill=_rgb(STATION_COLOUR))
    for _, priority, lat, lon in scene.alerts:
        x, y = p.xy(lat, lon)
        r = _alert_radius(priority)
        colour = _rgb(PRIORITY_COLOURS.get(priority, "#757575"))
        draw.polygon([(x, y - r), (x + r, y), (x, y + r), (x - r, y)], fill=colour)
    for _, status, lat, lon in scene.officers:
        x, y = p.xy(lat, lon)
        draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=_rgb(STATUS_COLOURS[status]))
    image.convert("RGB").save(path, format="PNG")


def write_picture(scene: Scene, html_path: Path, title: str, width: int = 1200) -> Path:
    """The HTML page at `html_path` and the PNG beside it (same name, .png); returns the PNG."""
    html_path.write_text(to_html(scene, title, width), encoding="utf-8")
    png_path = html_path.with_suffix(".png")
    to_png(scene, png_path, width)
    return png_path
