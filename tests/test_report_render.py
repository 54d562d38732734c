"""The HTML report opens in a real browser with every figure displayed.

A run directory is written by hand (as in tests/test_analysis.py), ``report.run`` makes
``report.html``, and headless Chromium renders it: once to a PNG screenshot that must
not be blank, and once with a probe script added to a copy of the page that reports,
after loading, whether every ``<img>`` decoded. Every ``<img>`` must also carry its
picture inline as a ``data:`` URI holding a valid PNG (the report is one self-contained
file). Skipped only where no Chromium is installed.
"""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import report

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed on this machine")

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]

PAIR_EQ = "0.0098*s_post*tr_pre - 0.0104*s_pre*tr_post"


def _run_dir(root: Path) -> Path:
    d = root / "stdp_run"
    d.mkdir()
    (d / "config.toml").write_text('[task]\nname = "imitate"\n\n[network]\nkind = "lif"\n\n[rule]\nkind = "mlp"\n')
    (d / "manifest.json").write_text(json.dumps({"package_version": "0.1.0", "git_commit": "abc1234",
                                                 "timings_s": {"discover": 30.0, "distill": 5.0}}))
    steps = np.arange(0, 300, 10)
    pd.DataFrame({"step": steps, "meta_loss": np.exp(-steps / 80) + 0.01,
                  "val_loss": [np.exp(-s / 80) + 0.02 if s % 50 == 0 else np.nan for s in steps],
                  "wall_s": steps * 0.5}).to_csv(d / "meta_history.csv", index=False)
    texts = ["0.01*s_post*tr_pre", PAIR_EQ, PAIR_EQ + " + 0.0002*s_post*tr_pre*w"]
    pd.DataFrame({
        "id": [0, 1, 2], "backend": ["sparse"] * 3, "complexity": [5, 11, 16],
        "loss": [3e-6, 2e-8, 1.9e-8], "score": [0.0, 2.1, 0.01], "equation": texts, "sympy": texts,
        "latex": ["0.01 s_{post} tr_{pre}", r"0.0098 s_{post} tr_{pre} - 0.0104 s_{pre} tr_{post}", ""],
        "selected": [False, True, False],
    }).to_csv(d / "equations.csv", index=False)
    pd.DataFrame({
        "rule": ["neural", "eq0", "eq1", "eq2", "stdp_pair", "stdp_triplet", "teacher"],
        "kind": ["neural", "equation", "equation", "equation", "canonical", "canonical", "teacher"],
        "equation": ["", *texts, "0.01*s_post*tr_pre - 0.0105*s_pre*tr_post", "", ""],
        "objective_mean": [0.96, 0.5, 0.99, 0.98, 0.994, 0.11, 1.0],
        "objective_ci_low": [0.95, 0.45, 0.988, 0.97, 0.993, -0.05, 1.0],
        "objective_ci_high": [0.97, 0.55, 0.992, 0.99, 0.995, 0.26, 1.0],
        "relative_to_neural": [1.0, 0.52, 1.03, 1.02, 1.035, 0.115, 1.04],
    }).to_csv(d / "verification.csv", index=False)
    return d


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> Path:
    d = _run_dir(tmp_path_factory.mktemp("render"))
    report.run(d)
    return d


def _chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={tmp / 'chromium-profile'}", *args],
        capture_output=True, text=True, timeout=180,
    )


def _img_sources(page: str) -> list[str]:
    return re.findall(r'<img\b[^>]*\bsrc="([^"]*)"', page)


def test_every_img_is_an_inline_valid_png(rendered):
    from PIL import Image

    page = (rendered / "report.html").read_text()
    sources = _img_sources(page)
    # meta-loss, front, verification, comparison, pairing windows, frequency + the typeset equation
    assert len(sources) == 7
    assert page.count("<img") == len(sources)
    for src in sources:
        assert src.startswith("data:image/png;base64,"), src[:60]
        data = base64.b64decode(src.split(",", 1)[1], validate=True)
        assert data.startswith(b"\x89PNG\r\n\x1a\n")
        with Image.open(io.BytesIO(data)) as im:
            im.verify()
        with Image.open(io.BytesIO(data)) as im:
            assert im.format == "PNG" and im.width > 50 and im.height > 20


def test_chromium_screenshot_is_not_blank(rendered, tmp_path):
    import matplotlib.image

    shot = tmp_path / "report.png"
    out = _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1200,3000",
                    (rendered / "report.html").resolve().as_uri())
    assert shot.is_file(), out.stderr[-2000:]
    img = matplotlib.image.imread(shot)[..., :3]  # floats in [0, 1]
    assert img.shape[:2] == (3000, 1200)
    non_white = (img < 0.97).any(axis=-1).mean()
    assert non_white > 0.03, non_white
    colors = np.unique((img * 255).round().astype(np.uint8).reshape(-1, 3), axis=0)
    assert len(colors) > 200, len(colors)
    # the house blue (#0072B2) of the figures' lines is on screen: a figure was painted
    blue = np.abs(img - np.array([0x00, 0x72, 0xB2]) / 255).max(axis=-1) < 0.06
    assert blue.sum() > 200, blue.sum()


PROBE = """
<script>
window.addEventListener("load", function () {
  var imgs = Array.prototype.slice.call(document.images);
  var report = imgs.map(function (im) {
    return {ok: im.complete && im.naturalWidth > 0, w: im.naturalWidth, h: im.naturalHeight,
            shown: im.getBoundingClientRect().width};
  });
  var pre = document.createElement("pre");
  pre.id = "probe";
  var mark = "@@" + "probe" + "@@";  // split, so the script's own text does not match
  pre.textContent = mark + JSON.stringify(report) + mark;
  document.body.appendChild(pre);
});
</script>
"""


def test_chromium_decodes_and_displays_every_figure(rendered, tmp_path):
    page = (rendered / "report.html").read_text()
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</body>", PROBE + "</body>"))
    out = _chromium(tmp_path, "--virtual-time-budget=10000", "--window-size=1200,3000", "--dump-dom",
                    probe.resolve().as_uri())
    found = re.search(r"@@probe@@(.*?)@@probe@@", out.stdout)
    assert found, (out.stdout[-1000:], out.stderr[-2000:])
    images = json.loads(found.group(1))
    assert len(images) == len(_img_sources(page)) == 7
    for im in images:
        assert im["ok"] and im["w"] > 50 and im["h"] > 20, im
        assert im["shown"] > 50, im  # laid out with a visible width
