"""The visualization page in Chromium while a team is answering on a live Daphne server."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.test_chat_browser import (  # noqa: F401  (fixtures)
    LiveServer,
    browser,
    daphne_server,
    page,
    sign_in_and_start,
)

pytestmark = pytest.mark.e2e
SCREENSHOT = Path("/tmp/lodestone-team-visual.png")


def test_visualization_follows_a_live_run(page: object, daphne_server: LiveServer) -> None:  # noqa: F811
    from playwright.sync_api import Page, expect

    assert isinstance(page, Page)
    sign_in_and_start(page, "Writer and Reviewer")
    viz = page.context.new_page()
    viz.goto("/agents/teams/duo/")
    expect(viz.locator(".viz-node")).to_have_count(3)  # you, writer, reviewer
    expect(viz.locator(".viz-graph")).to_have_attribute("data-run-status", "idle")
    # It follows the conversation's socket (the fallback poll is every 15 s: too slow for this run).
    expect(viz.locator("#viz-live.is-live")).to_have_count(1)

    composer = page.locator("#composer textarea")
    composer.fill("Where does the name lodestone come from?")
    composer.press("Enter")

    # While the run goes on, the page shows it live.
    expect(viz.locator(".viz-graph")).to_have_attribute("data-run-status", "running", timeout=15_000)
    expect(viz.locator(".viz-node.active")).to_have_count(1)
    # The writer's tokens light it up while it speaks (before its message is stored).
    expect(viz.locator('.viz-node.active[data-agent="writer"]')).to_have_count(1)
    viz.screenshot(path=str(SCREENSHOT))
    expect(viz.locator('.viz-edge[data-from="user"][data-to="writer"]')).to_have_attribute(
        "data-count", "1", timeout=15_000
    )
    expect(viz.locator('.viz-edge.hot[data-from="user"][data-to="writer"]')).to_have_count(1)
    # Then the reviewer speaks, and is the one lit.
    expect(viz.locator('.viz-node.active[data-agent="reviewer"]')).to_have_count(1, timeout=15_000)

    # The reviewer speaks after the writer; then the run is over and its timeline is complete.
    expect(viz.locator('.viz-edge[data-from="writer"][data-to="reviewer"]')).to_have_attribute(
        "data-count", "1", timeout=30_000
    )
    expect(viz.locator(".viz-graph")).to_have_attribute("data-run-status", "idle", timeout=30_000)
    expect(viz.locator(".viz-node.active")).to_have_count(0)
    expect(viz.locator(".viz-run summary").last).to_contain_text("completed")
    expect(viz.locator(".viz-run").last.locator(".viz-turn")).to_have_count(2)
    assert not page.console_errors  # type: ignore[attr-defined]
