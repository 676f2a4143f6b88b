import json
import re
import shutil
import subprocess

import pytest

from tailtune.errors import RunDirError
from tailtune.reports import build_context, render_report, write_report
from tailtune.reports.html import SECTIONS

SECTION_IDS = [s for s, _ in SECTIONS]
#: tall enough for the whole page of the fixture report (about 4,900 px at 1280 wide), recipe included
SHOT_HEIGHT = 5600


@pytest.fixture(scope="module")
def report_with_baseline(runs):
    return write_report(runs["focal"][0], baseline=runs["ce"][0])


def _assert_self_contained(html: str):
    assert "<script" not in html.lower()
    # no external fetch: every src/href is a data URI or an in-page anchor
    for attr in re.findall(r'(?:src|href)="([^"]*)"', html):
        assert attr.startswith(("data:", "#")), attr
    assert "http://" not in html and "https://" not in html
    assert "@import" not in html and "url(" not in html


def test_report_is_written_and_self_contained(report_with_baseline, runs):
    assert report_with_baseline == runs["focal"][0] / "report.html"
    html = report_with_baseline.read_text(encoding="utf-8")
    _assert_self_contained(html)
    for sid in SECTION_IDS:
        assert f'<section id="{sid}">' in html
    # plots are inline PNGs: distribution, curves, per-class, confusion, PR, reliability
    assert len(re.findall(r'src="data:image/png;base64,', html)) == 6
    assert "vs baseline" in html and "ce-s13" in html
    assert "Welch" not in html  # the report compares per class; the verdict lives in the post-mortem
    # a delta that rounds to +0.0 is coloured neither as a gain nor as a loss
    assert '<td class="">+0.0</td>' in html and '<td class="pos">+0.0</td>' not in html


def test_report_context_figures(runs):
    from tailtune.diagnostics import load_run

    ctx = build_context(load_run(runs["focal"][0]), load_run(runs["ce"][0]))
    assert [c["title"] for c in ctx["cards"]][:2] == ["macro-F1", "accuracy"]
    ev = json.loads((runs["focal"][0] / "eval.json").read_text())
    base = json.loads((runs["ce"][0] / "eval.json").read_text())
    assert ctx["cards"][0]["value"] == f"{ev['test']['macro_f1']:.3f}"
    assert ctx["cards"][0]["delta"] == pytest.approx(100 * (ev["test"]["macro_f1"] - base["test"]["macro_f1"]))
    assert ctx["pred_split"] == "test" and 0 <= ctx["ece"] <= 1 and ctx["ece_cal"] is not None
    assert set(ctx["ap"]) == {"plot", "character", "setting", "theme"}
    rows = {r["label"]: r for r in ctx["pc_rows"]}
    assert rows["theme"]["d_recall"] == pytest.approx(ev["test"]["per_class"]["theme"]["recall"] - base["test"]["per_class"]["theme"]["recall"])
    assert [r["label"] for r in ctx["pc_rows"]] == ["plot", "character", "setting", "theme"]  # by train count
    assert ctx["bias_rows"] and ctx["imbalance"] == pytest.approx(22.0)


@pytest.mark.parametrize("kind", ["multilabel", "aspects", "binary"])
def test_report_other_task_kinds(runs, kind, tmp_path):
    path = write_report(runs[kind], out=tmp_path / "r.html")
    html = path.read_text(encoding="utf-8")
    _assert_self_contained(html)
    for sid in SECTION_IDS:
        assert f'<section id="{sid}">' in html
    if kind == "multilabel":
        assert "one 2×2 table per label" in html and "Decision thresholds" in html
    else:
        assert 'alt="confusion matrix"' in html
    header = {"multilabel": "4 classes", "aspects": "2 aspects × 3 classes", "binary": "2 classes"}[kind]
    assert f"<b>{kind}</b> · {header}</span>" in html


def test_report_of_a_run_with_only_a_history(runs, tmp_path):
    run = tmp_path / "partial"
    run.mkdir()
    shutil.copy(runs["focal"][0] / "history.jsonl", run / "history.jsonl")
    html = render_report(run)
    _assert_self_contained(html)
    assert "No predictions/*.npz in the run directory." in html
    assert "No postprocess.json" in html and "No recipe.yaml." in html
    assert "validation at the best epoch (history.jsonl)" in html


def test_report_errors(tmp_path):
    with pytest.raises(RunDirError, match="no such run directory"):
        write_report(tmp_path / "nope")
    assert not (tmp_path / "nope").exists()


# ------------------------------------------------------------------------ headless Chromium
def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("headless Chromium not installed (Debian package 'chromium', installed by .ci/run)")


def _chrome_args(exe, profile):
    return [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
            "--no-first-run", "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}"]


def test_report_renders_in_headless_chromium(report_with_baseline, tmp_path):
    exe = _chromium()
    url = report_with_baseline.resolve().as_uri()
    shot = tmp_path / "report.png"
    proc = subprocess.run(
        [*_chrome_args(exe, tmp_path / "profile-shot"), f"--screenshot={shot}", f"--window-size=1280,{SHOT_HEIGHT}",
         "--enable-logging=stderr", "--v=0", url],
        capture_output=True, text=True, timeout=180,
    )
    assert shot.exists() and shot.stat().st_size > 50_000, proc.stderr[-2000:]
    Image = pytest.importorskip("PIL.Image")
    with Image.open(shot) as im:
        assert im.size == (1280, SHOT_HEIGHT)
        # the page is not blank: the header gradient and plots give many colours
        assert len(im.convert("RGB").resize((128, 400)).getcolors(1 << 16) or []) > 200
    # no console message from the page (Chromium logs them as CONSOLE lines) and no failed load
    console = [line for line in proc.stderr.splitlines() if "CONSOLE" in line or "Failed to load resource" in line]
    assert console == []

    dom = subprocess.run([*_chrome_args(exe, tmp_path / "profile-dom"), "--dump-dom", url],
                         capture_output=True, text=True, timeout=180)
    assert dom.returncode == 0, dom.stderr[-2000:]
    for sid in SECTION_IDS:
        assert f'id="{sid}"' in dom.stdout
    assert dom.stdout.count("<img") == 6


def test_the_console_check_sees_page_errors(tmp_path):
    """Guard for the check above: a page that logs an error does produce a CONSOLE line."""
    exe = _chromium()
    bad = tmp_path / "bad.html"
    bad.write_text('<html><body><script>console.error("boom")</script></body></html>')
    proc = subprocess.run([*_chrome_args(exe, tmp_path / "p"), "--enable-logging=stderr", "--v=0", "--dump-dom", bad.as_uri()],
                          capture_output=True, text=True, timeout=180)
    assert any("CONSOLE" in line and "boom" in line for line in proc.stderr.splitlines())
