#!/usr/bin/env python3
"""Draws a backflow backward trace (Chrome/Perfetto trace-event JSON) as an SVG timeline.

One lane per thread, one rectangle per span ("ph": "X"), coloured by op, with a time axis
in microseconds. Idle gaps between spans are the white space in a lane.

    python3 docs/trace_to_svg.py target/w2_trace.json docs/w2_trace_2threads.svg
"""

import json
import sys
from html import escape

COLOURS = {
    "matmul": "#2563eb",
    "tanh": "#16a34a",
    "sum": "#d97706",
    "add": "#9333ea",
    "leaf": "#6b7280",
}
OTHER = "#dc2626"
WIDTH, LEFT, RIGHT, LANE, GAP, TOP = 1200, 150, 20, 56, 14, 46


def main(src, dst):
    with open(src) as f:
        events = json.load(f)["traceEvents"]
    names = {e["tid"]: e["args"]["name"] for e in events if e.get("ph") == "M"}
    spans = [e for e in events if e.get("ph") == "X"]
    if not spans:
        sys.exit(f"{src}: no spans")
    tids = sorted({s["tid"] for s in spans})
    t0 = min(s["ts"] for s in spans)
    t1 = max(s["ts"] + s["dur"] for s in spans)
    scale = (WIDTH - LEFT - RIGHT) / max(t1 - t0, 1e-9)
    height = TOP + len(tids) * (LANE + GAP) + 60
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'font-family="Helvetica, Arial, sans-serif" font-size="12">',
        f'<rect width="{WIDTH}" height="{height}" fill="white"/>',
        f'<text x="{LEFT}" y="20" font-size="14">backward trace: {len(spans)} spans on '
        f"{len(tids)} threads, {t1 - t0:.0f} µs</text>",
    ]
    for lane, tid in enumerate(tids):
        y = TOP + lane * (LANE + GAP)
        mine = [s for s in spans if s["tid"] == tid]
        busy = sum(s["dur"] for s in mine)
        label = escape(names.get(tid, f"thread {tid}"))
        out.append(f'<text x="8" y="{y + LANE / 2 - 2}">{label}</text>')
        out.append(
            f'<text x="8" y="{y + LANE / 2 + 14}" fill="#555">busy {100 * busy / (t1 - t0):.0f}%</text>'
        )
        out.append(
            f'<rect x="{LEFT}" y="{y}" width="{WIDTH - LEFT - RIGHT}" height="{LANE}" '
            f'fill="#f3f4f6"/>'
        )
        for s in mine:
            x = LEFT + (s["ts"] - t0) * scale
            w = max(s["dur"] * scale, 0.5)
            colour = COLOURS.get(s["name"], OTHER)
            tip = escape(f'{s["name"]} {s["dur"]:.1f} µs')
            out.append(
                f'<rect x="{x:.2f}" y="{y}" width="{w:.2f}" height="{LANE}" fill="{colour}">'
                f"<title>{tip}</title></rect>"
            )
    axis = TOP + len(tids) * (LANE + GAP)
    out.append(
        f'<line x1="{LEFT}" y1="{axis}" x2="{WIDTH - RIGHT}" y2="{axis}" stroke="black"/>'
    )
    for i in range(6):
        t = (t1 - t0) * i / 5
        x = LEFT + t * scale
        out.append(f'<line x1="{x:.1f}" y1="{axis}" x2="{x:.1f}" y2="{axis + 5}" stroke="black"/>')
        out.append(f'<text x="{x:.1f}" y="{axis + 18}" text-anchor="middle">{t:.0f} µs</text>')
    x = LEFT
    for name, colour in list(COLOURS.items()) + [("other", OTHER)]:
        out.append(f'<rect x="{x}" y="{axis + 30}" width="12" height="12" fill="{colour}"/>')
        out.append(f'<text x="{x + 16}" y="{axis + 40}">{name}</text>')
        x += 90
    out.append("</svg>")
    with open(dst, "w") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
