"""The bot's pages in a real browser (headless Chromium): a pull request's run followed from the
runs list to its own page while it runs, and text a pull request controls shown inert.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("selenium", reason="the Python package selenium is not installed (requirements-dev.txt)")
from selenium.common.exceptions import NoAlertPresentException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402

from bot.app import create_app
from bot.config import Settings
from bot.dashboard import github_web_url
from bot.embedded_bus import OutboxBus
from bot.services import Services
from bot.store import SqlStore
from handlers.run_models import PlanComponent, PlanReason, RunPlan, RunState, Transition
from tests.bot.test_dashboard import T0, make_run
from tests.handlers.conftest import PR, REPO, Bot
from tests.support.browser import console_errors, wait_until
from tests.support.server import ServedApp, serve

HELLO = Path(__file__).resolve().parents[2] / "examples/kfp-monorepo/pipelines/hello-pipeline/hello-pipeline.py"
TICKS = 16


def slow_hello() -> str:
    """hello-pipeline whose count_words prints a line every 0.4 s for a few seconds (its log grows)."""
    return HELLO.read_text().replace(
        '    print(f"counting words of {text!r}")\n',
        f'    import time\n    for tick in range({TICKS}):\n        print(f"tick {{tick}}", flush=True)\n'
        '        time.sleep(0.4)\n')


def texts(driver: Any, selector: str) -> list[str]:
    """The rendered text of every element matching `selector`, read in one step (the page swaps
    its live parts while it follows the run)."""
    return driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0])).map(e => e.innerText.trim());", selector)


def log_text(driver: Any) -> str:
    return "".join(texts(driver, "#log"))


def last_tick(text: str) -> int:
    return max((int(line.split()[1]) for line in text.splitlines() if line.strip().startswith("tick ")), default=-1)


def test_a_pull_requests_run_is_followed_from_the_runs_list_to_its_page(bot: Bot, page: Any) -> None:
    page.get(bot.url + "/")
    assert "No runs yet." in page.find_element(By.ID, "runs").text
    page.execute_script("window.kfpLoaded = 'once';")  # gone if the page reloads instead of refreshing
    head = bot.branch("slow-hello", {"pipelines/hello-pipeline/hello-pipeline.py": slow_hello()})

    assert bot.open_pull(head).status_code == 202

    # The runs list shows the new run by itself, linked to its page.
    link = wait_until(page, lambda d: d.find_elements(By.CSS_SELECTOR, "tr.run td.pipeline a"), timeout=60,
                      what="the run to appear in the runs list")[0]
    run_id = page.find_element(By.CSS_SELECTOR, "tr.run").get_attribute("data-run-id")
    assert link.text == "hello-pipeline"
    assert link.get_attribute("href") == f"{bot.url}/runs/{run_id}"

    # Its page, in a second tab, follows the run: the log grows while the pipeline prints.
    page.switch_to.new_window("tab")
    page.get(f"{bot.url}/runs/{run_id}")
    assert page.find_element(By.ID, "pipeline").text == "hello-pipeline"
    wait_until(page, lambda d: last_tick(log_text(d)) >= 1, timeout=180, what="the pipeline's first ticks in the log")
    seen = log_text(page)
    assert "Executing task 'count-words'" in seen
    assert texts(page, "#state") == ["running"]
    wait_until(page, lambda d: last_tick(log_text(d)) > last_tick(seen), timeout=60,
               what="the log to grow while the run runs")
    wait_until(page, lambda d: texts(d, "#state") == ["succeeded"], timeout=120, what="the run to succeed")
    assert page.find_element(By.ID, "status").text == "the run ended"
    assert f"tick {TICKS - 1}" in log_text(page)
    assert "Pipeline 'hello-pipeline' finished with status SUCCESS" in log_text(page)

    # What the page says about the run.
    timeline = [row.split()[0] for row in texts(page, "#timeline tbody tr")]
    assert timeline[0] in ("queued", "building", "compiling") and timeline[-2:] == ["running", "succeeded"]
    assert "pipelines/hello-pipeline/hello-pipeline.py" in page.find_element(By.ID, "reasons").text
    [change] = [row.split("\t") for row in texts(page, "#diff tbody tr")]
    assert change[:2] == ["component command", "count-words"] and change[2] != change[3]
    outputs = [row.split("\t") for row in texts(page, "#outputs tbody tr")]
    assert outputs == [["greeting", "Hello, kfp-bot!"], ["score", "3.0"]]
    parameters = [" ".join(row.split()) for row in texts(page, "#parameters tbody tr")]
    assert "name kfp-bot settings.yaml" in parameters and "repeat 3 settings.yaml" in parameters
    web = github_web_url(bot.github.api_url)
    check = bot.checks(head)["kfp-bot / hello-pipeline"]
    links = {a.text: a.get_attribute("href") for a in page.find_elements(By.CSS_SELECTOR, "nav.links a")}
    assert links == {f"pull request #{PR}": f"{web}/{REPO}/pull/{PR}",
                     f"commit {head[:7]}": f"{web}/{REPO}/commit/{head}",
                     "check kfp-bot / hello-pipeline": f"{web}/{REPO}/runs/{check['id']}"}

    # Meanwhile the runs list, never reloaded, has followed the run to its end.
    page.close()
    page.switch_to.window(page.window_handles[0])
    wait_until(page, lambda d: texts(d, f'tr.run[data-run-id="{run_id}"] .badge') == ["succeeded"], timeout=30,
               what="the runs list to show the run succeeded")
    assert page.execute_script("return window.kfpLoaded;") == "once"
    page.find_element(By.CSS_SELECTOR, f'tr.run[data-run-id="{run_id}"] td.pipeline a').click()
    wait_until(page, lambda d: d.current_url == f"{bot.url}/runs/{run_id}", timeout=30, what="the run's page")
    assert page.find_element(By.ID, "state").text == "succeeded"
    page.find_element(By.LINK_TEXT, "← all runs").click()
    wait_until(page, lambda d: d.current_url == f"{bot.url}/", timeout=30, what="the runs list")
    assert console_errors(page) == []  # the pages' own scripts and styles ran, nothing was blocked


HOSTILE = "<script>window.pwned = 'script'</script>"
ATTRIBUTE = "\"><img src=x onerror=\"window.pwned = 'img'\">"


@pytest.fixture
def hostile_server(tmp_path: Path) -> Iterator[ServedApp]:
    """The bot's pages over a store holding a failed run full of text a pull request controls."""
    with SqlStore(f"sqlite:///{tmp_path / 'bot.db'}") as store:
        settings = Settings(webhook_secret="s", data_dir=tmp_path)
        run = make_run("run-hostile", 0, pipeline=f"p{HOSTILE}", triggered_by=ATTRIBUTE, state=RunState.FAILED,
                       error=f"settings.yaml:1: {HOSTILE}", url="javascript:window.pwned='link'",
                       parameters={"name": ATTRIBUTE}, updated_at=T0 + timedelta(seconds=30),
                       plan=RunPlan(reasons=(PlanReason(text=HOSTILE),),
                                    components=(PlanComponent(name=ATTRIBUTE, image=HOSTILE),)),
                       transitions=(Transition(RunState.QUEUED, T0),
                                    Transition(RunState.FAILED, T0 + timedelta(seconds=30), HOSTILE)))
        assert store.create_run(run)
        settings.runs_dir.mkdir()
        (settings.runs_dir / "run-hostile.log").write_text(f"{HOSTILE}\n{ATTRIBUTE}\n")
        with serve(create_app(settings, Services(store=store, bus=OutboxBus(store, lambda event: None)))) as served:
            yield served


def test_text_a_pull_request_controls_is_shown_inert(hostile_server: ServedApp, page: Any) -> None:
    for path in ("/", "/runs/run-hostile", "/runs/<img src=x onerror=alert(1)>"):
        page.get(hostile_server.url + path)
        page.find_element(By.TAG_NAME, "h1")  # the page rendered

        with pytest.raises(NoAlertPresentException):
            page.switch_to.alert.text  # noqa: B018  (an alert() would be open)
        assert page.execute_script("return window.pwned === undefined;"), path
        assert page.find_elements(By.CSS_SELECTOR, "img") == []
        assert [a for a in page.find_elements(By.TAG_NAME, "a")
                if not (a.get_attribute("href") or "").startswith("http")] == []

    # The 404 page logs its status; nothing else may (no script or style was blocked or failed).
    assert [e for e in console_errors(page) if "404 (NOT FOUND)" not in e] == []
    page.get(hostile_server.url + "/runs/run-hostile")
    body = page.find_element(By.TAG_NAME, "body").text
    assert page.find_element(By.ID, "pipeline").text == f"p{HOSTILE}"
    assert f"settings.yaml:1: {HOSTILE}" in body
    assert page.find_element(By.ID, "log").text == f"{HOSTILE}\n{ATTRIBUTE}"
    assert page.find_element(By.ID, "trigger").text == f"autorun by {ATTRIBUTE}"
    assert page.find_element(By.ID, "raw-url").text == "javascript:window.pwned='link'"  # shown, not linked
    page.get(hostile_server.url + "/runs/<img src=x onerror=alert(1)>")
    assert page.find_element(By.ID, "missing-run").text == "<img src=x onerror=alert(1)>"


def test_the_readme_screenshot_script_still_finds_what_it_builds_on() -> None:
    # benchmarks/run_page_screenshot.py (docs/run-page.png) reuses the tests' bot and scored
    # pipeline; nothing else runs it, so a rename there must fail here, not on the next screenshot.
    from benchmarks import run_page_screenshot

    assert run_page_screenshot.deploy_baseline.__module__ == "tests.handlers.test_results_end_to_end"
    assert run_page_screenshot.PIPELINE == "scored-pipeline"
