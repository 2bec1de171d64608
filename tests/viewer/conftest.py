"""Fixtures: output folders of real runs (the session's analyze runs from tests/conftest.py, copied; one small
discover run), the page data read back from their report.html, and a headless Debian chromium."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


def page_json(html: str) -> dict:
    """The data block of a report.html, as the page's script parses it."""
    m = re.search(r'<script type="application/json" id="circuitry-data">(.*?)</script>', html, re.DOTALL)
    return json.loads(m.group(1))


@pytest.fixture(scope="session")
def analyze_dir(analysis_2l, tmp_path_factory) -> Path:
    """A copy of the session's attn-only-2l analyze folder (with the report.html analyze wrote)."""
    d = tmp_path_factory.mktemp("view") / "analyze"
    shutil.copytree(analysis_2l[2], d)
    return d


@pytest.fixture(scope="session")
def gqa_dir(analysis_gqa, tmp_path_factory) -> Path:
    """A copy of the session's llama-2l-gqa analyze folder."""
    d = tmp_path_factory.mktemp("view") / "gqa"
    shutil.copytree(analysis_gqa[2], d)
    return d


@pytest.fixture(scope="session")
def discover_dir(tmp_path_factory) -> Path:
    """``circuitry discover`` (run_discovery) with EAP and ACDC on 8 induction pairs of attn-only-2l: small."""
    import torch

    from circuitry.discovery.report import run_discovery
    from circuitry.models import load_model
    from circuitry.prompts import make_task

    torch.set_num_threads(1)
    model = load_model("zoo:attn-only-2l")
    d = tmp_path_factory.mktemp("view") / "discover"
    run_discovery(model, make_task("induction", model, n_prompts=8, seed=0), d, methods=["eap", "acdc"], n_random=3,
                  n_resamples=100, stability_splits=5, acdc_splits=0, progress=False)
    return d


HOSTILE = '</script><script>window.__pwned = 1</script><img src=x onerror="window.__pwned=2">&amp;\u2028'


@pytest.fixture(scope="session")
def hostile_dir(analyze_dir, tmp_path_factory) -> Path:
    """The analyze folder with a task name (it comes from a user's task file) and a finding that try to inject
    HTML and script, and figure paths that leave the folder or name a scheme; its report.html rewritten."""
    from circuitry.viewer import write_report_html

    d = tmp_path_factory.mktemp("hostile") / "out"
    shutil.copytree(analyze_dir, d)
    r = json.loads((d / "report.json").read_text())
    r["task"]["name"] = HOSTILE
    r["findings"][0]["claim"] = HOSTILE
    r["figures"] += ["../outside.png", "javascript:alert(1)", "/etc/passwd"]
    (d.parent / "outside.png").write_bytes(b"x")
    (d / "report.json").write_text(json.dumps(r))
    write_report_html(d)
    return d


@pytest.fixture(scope="session")
def browser(tmp_path_factory):
    """Debian's chromium, headless, driven by selenium. Skipped when chromium, chromedriver or selenium is
    missing, except in CI (``CI`` set), where that is a failure: .ci/run installs them."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing.append("selenium (pip install -e '.[test]')")
    if missing:
        why = f"the browser test needs {', '.join(missing)} (apt-get install chromium chromium-driver)"
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but {why}")
        pytest.skip(why)
    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium')}", "--window-size=1400,900"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=opts)
    yield driver
    driver.quit()
