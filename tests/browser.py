"""Open an HTML report in headless Chromium: where each chart is, and a screenshot of the page.

Two runs of Debian's ``chromium``: ``--dump-dom`` of a copy of the page with a script added
that lists every ``<svg class="chart">``'s box and its drawn marks (rects, lines, dots with a
non-empty box), then ``--screenshot`` of the page itself (no script) as tall as the document,
so each chart's box can be cut out of the picture and looked at.
"""

from __future__ import annotations

import html
import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

WIDTH = 1400  # wide enough for the pages' side-by-side charts
_PROBE = """<script>
const charts = [...document.querySelectorAll('svg.chart')].map(s => {
  const r = s.getBoundingClientRect();
  const marks = [...s.querySelectorAll('rect,polyline,circle')]
    .filter(e => { const b = e.getBBox(); return b.width > 0 || b.height > 0; }).length;
  const h3 = s.parentElement.querySelector('h3');
  return {x: r.left + scrollX, y: r.top + scrollY, w: r.width, h: r.height, marks,
          title: h3 ? h3.textContent : ''};
});
const pre = document.createElement('pre');
pre.id = 'lw-probe';
pre.textContent = JSON.stringify({height: document.documentElement.scrollHeight, charts});
document.body.appendChild(pre);
</script>"""


@dataclass(frozen=True, slots=True)
class Chart:
    title: str
    box: tuple[int, int, int, int]  # left, top, right, bottom in the screenshot's pixels
    marks: int


@dataclass(frozen=True, slots=True)
class Rendered:
    screenshot: Path
    height: int
    charts: list[Chart]


def chromium() -> str:
    """The browser's path; the test skips, with the reason, when it is not installed."""
    found = shutil.which("chromium")
    if found is None:
        pytest.skip("chromium is not installed (apt-get install chromium; `loanwatch stack up`)")
    return found


def _run(args: list[str], profile: Path) -> str:
    cmd = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
           "--force-device-scale-factor=1", f"--user-data-dir={profile}", *args]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def render(page: Path, work: Path) -> Rendered:
    """Lay ``page`` out at :data:`WIDTH` pixels, list its charts, screenshot it whole."""
    probe = work / f"{page.stem}-probe.html"
    probe.write_text(page.read_text(encoding="utf-8").replace("</body>", _PROBE + "</body>"))
    dom = _run([f"--window-size={WIDTH},900", "--dump-dom", probe.as_uri()], work / "profile")
    start = dom.index('<pre id="lw-probe">') + len('<pre id="lw-probe">')
    found = json.loads(html.unescape(dom[start : dom.index("</pre>", start)]))
    height = int(found["height"])
    shot = work / f"{page.stem}.png"
    _run([f"--window-size={WIDTH},{height}", f"--screenshot={shot}", page.as_uri()],
         work / "profile")  # fmt: skip
    charts = [
        Chart(c["title"], (round(c["x"]), round(c["y"]), round(c["x"] + c["w"]),
                           round(c["y"] + c["h"])), c["marks"])
        for c in found["charts"]
    ]  # fmt: skip
    return Rendered(shot, height, charts)


def coloured_pixels(rgb: object) -> int:
    """Pixels of a saturated colour (data marks; text, grid and axes are grey or black)."""
    import numpy as np

    a = np.asarray(rgb, dtype=np.int16)
    return int(((a.max(axis=2) - a.min(axis=2)) > 60).sum())


def distinct_colours(rgb: object) -> int:
    import numpy as np

    a = np.asarray(rgb, dtype=np.uint32)
    return len(np.unique((a[..., 0] << 16) | (a[..., 1] << 8) | a[..., 2]))
