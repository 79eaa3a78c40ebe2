"""The memory inspector in a real headless browser (Debian's chromium, driven by Playwright).

``sleepagent inspect`` runs as its own process on the scripted scenario's SQLite
file, as a user would start it; the test process keeps the bot open on the
same file and adds a sleep run while the page is open.

Set ``SLEEPAGENT_INSPECTOR_SCREENSHOT=docs/inspector.png`` to save the README's
screenshot.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.test_inspector import ADA_FACTS, ADA_PLAN, HOSTILE_SCRIPT, Scenario, build_scenario

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
playwright_api = pytest.importorskip("playwright.sync_api")
pytestmark = [
    pytest.mark.skipif(
        not Path(CHROMIUM).is_file(), reason="chromium is not installed (apt-get install chromium)"
    ),
    # The scenario gives up bob's page on purpose, to show a failed page.
    pytest.mark.sleep_failures_expected,
]

LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
START_TIMEOUT_S = 60
WAIT_MS = 20_000


@pytest.fixture
def scenario(tmp_path: Path) -> Iterator[Scenario]:
    yield from build_scenario(tmp_path / "bot.db")


@pytest.fixture
def inspector_url(scenario: Scenario) -> Iterator[str]:
    """``sleepagent inspect`` on a free port, stopped at the end."""
    command = ["inspect", "--db", str(scenario.db), "--port", "0", "--no-browser"]
    process = subprocess.Popen(
        [sys.executable, "-m", "sleepagent.cli.commands", *command, "--refresh", "0.5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    ready = threading.Event()
    lines: list[str] = []

    def watch() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if " on http://" in line:
                ready.set()

    threading.Thread(target=watch, daemon=True).start()
    try:
        if not ready.wait(START_TIMEOUT_S):
            pytest.fail("sleepagent inspect did not start:\n" + "".join(lines))
        found = re.search(r"on (http://\S+/)", lines[-1])
        assert found is not None
        yield found.group(1)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)


@pytest.fixture
def page(inspector_url: str) -> Iterator[object]:
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        context = browser.new_context(viewport={"width": 1440, "height": 1000})
        tab = context.new_page()
        dialogs: list[str] = []
        tab.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        tab.goto(inspector_url)
        yield tab
        assert dialogs == [], "a script from memory text ran"
        browser.close()


def test_scope_list_timeline_diff_hostile_text_and_live_update(
    page: object, scenario: Scenario, inspector_url: str, tmp_path: Path
):
    expect = playwright_api.expect
    tab: playwright_api.Page = page  # type: ignore[assignment]

    scopes = tab.get_by_test_id("scopes")
    for key in ("user:ada", "user:mallory", "thread:drive-by"):
        expect(scopes.locator(f'tr[data-scope="{key}"]')).to_be_visible()
    expect(scopes.locator('tr[data-scope="thread:drive-by"] .badge.warn')).to_have_text("2")
    expect(tab.get_by_test_id("token-chart").locator("svg path.line.sleep")).to_have_count(1)
    expect(scopes.locator('tr[data-scope="user:bob"] .badge.bad')).to_have_text("1")
    expect(scopes.locator('tr[data-scope="user:bob"] .outcome.bad')).to_have_text("no_tool_call")
    expect(tab.get_by_test_id("runs").locator("tbody tr")).to_have_count(3)

    # Hostile block text is shown as text, and nothing it carries runs.
    tab.locator('tr[data-scope="user:mallory"] a.scope-link').click()
    value = tab.locator('article.block[data-label="human"] pre.value')
    expect(value).to_contain_text(HOSTILE_SCRIPT)
    value.hover()
    assert tab.evaluate("window.__pwned") is None
    assert tab.locator("main img").count() == 0
    assert tab.locator("main script").count() == 0
    assert tab.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), (
        "a very long line widened the page"
    )

    # One scope: its block, its timeline and the diff of a version.
    tab.goto(f"{inspector_url}scope?key=user%3Aada")
    expect(tab.locator('article.block[data-label="human"] pre.value')).to_have_text(ADA_FACTS)
    first = tab.get_by_test_id("timeline").locator('li.version[data-label="human"]')
    expect(first).to_have_count(1)
    expect(first.locator(".diff .add")).to_have_text(f"+{ADA_FACTS}")
    expect(first.locator(".outcome")).to_have_text("edited")
    runs = tab.get_by_test_id("runs").locator("tbody tr")
    expect(runs).to_have_count(1)

    # A new sleep run while the page is open: the page updates by itself.
    scenario.new_sleep_run()
    expect(first).to_have_count(2, timeout=WAIT_MS)
    newest = tab.get_by_test_id("timeline").locator("li.version").first
    expect(newest.locator(".diff .add")).to_have_text(f"+{ADA_PLAN}")
    expect(tab.locator('article.block[data-label="human"] .tag')).to_have_text("v2")
    expect(tab.locator("#live-status")).to_contain_text("updated")
    expect(runs).to_have_count(2)
    expect(runs.first.locator(".outcome")).to_have_text("edited")

    shot = tmp_path / "inspector.png"
    tab.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    target = os.environ.get("SLEEPAGENT_INSPECTOR_SCREENSHOT")
    if target:
        shutil.copy(shot, target)


# A text node whose range has more than one rectangle runs over more than one line.
_BROKEN_CELLS = """(selector) => {
  const broken = [];
  for (const cell of document.querySelectorAll(selector)) {
    const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      if (!node.textContent.trim()) continue;
      const range = document.createRange();
      range.selectNodeContents(node);
      const lines = [...range.getClientRects()].filter((rect) => rect.width > 0).length;
      if (lines > 1) broken.push(`${node.textContent.trim()} (${lines} lines)`);
    }
  }
  return broken;
}"""


def test_numbers_times_headers_and_tags_stay_on_one_line_at_1280_and_800_pixels(inspector_url: str):
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        tab = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        tab.goto(inspector_url)
        links = tab.locator("a.scope-link")
        playwright_api.expect(links.first).to_be_visible()
        pages = ["", *(link.get_attribute("href") or "" for link in links.all())]
        assert len(pages) == 6, pages  # the scope list and five scopes
        for width in (1280, 800):
            tab.set_viewport_size({"width": width, "height": 900})
            for path in pages:
                tab.goto(inspector_url + path.lstrip("/"))
                playwright_api.expect(tab.locator("table").first).to_be_visible()
                broken = tab.evaluate(_BROKEN_CELLS, "th, td.num, td.when, td .tag, td .outcome")
                assert broken == [], f"{width} px, /{path.lstrip('/')}: {broken}"
                assert tab.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        browser.close()
