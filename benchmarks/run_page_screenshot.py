"""`python -m benchmarks.run_page_screenshot [--out docs/run-page.png]`: README's picture of a run's
page, taken by headless Chromium (Debian `chromium` + `chromium-driver`) from real runs.

The embedded bot, served as tests/handlers serves it (SQLite, the sandboxed compiler, kfp.local, a
fake GitHub), deploys on main a pipeline that logs metrics (`deploy.run`: its run becomes the
baseline), then gets a pull request that changes the pipeline's parameters. The page of that
pull request's run (results beside the baseline with the default branch's gates, the pipeline
diff, why it ran, parameters, timeline, log) is saved whole as a PNG. About a minute.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from tests.conftest import EXAMPLE_MONOREPO
from tests.fakes.github import FakeGitHub
from tests.handlers.conftest import PR, _serve, install_app
from tests.handlers.test_results_end_to_end import PIPELINE, SETTINGS, deploy_baseline, settings
from tests.support.browser import headless_chromium, missing_browser
from tests.support.github_clients import APP_ID
from tests.support.gitrepo import GitRepo

WIDTH = 1200


def main(argv: list[str] | None = None) -> int:
    """Make the runs, then save the pull request run's page as `--out`."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run_page_screenshot", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("docs/run-page.png"), help="the PNG to write")
    args = parser.parse_args(argv)
    if reason := missing_browser():
        print(f"error: {reason}", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="kfp-bot-screenshot-") as tmp, FakeGitHub() as github:
        repo = GitRepo.from_tree(Path(tmp) / "monorepo", EXAMPLE_MONOREPO)
        served = _serve(Path(tmp), repo, github, github_app_id=APP_ID, github_private_key=install_app(github))
        bot = next(served)
        try:
            deploy_baseline(bot)
            head = bot.branch("better-model", {SETTINGS: settings(0.95, 0.19)})
            bot.open_pull(head)
            bot.settle()
            [run] = bot.runs(pr=PR, pipeline=PIPELINE)
            print(f"{PIPELINE} on pull request #{PR}: {run['state']} ({run['id']})")
            with headless_chromium(width=WIDTH) as driver:
                driver.get(f"{bot.url}/runs/{run['id']}")
                driver.set_window_size(WIDTH, driver.execute_script("return document.documentElement.scrollHeight;"))
                args.out.parent.mkdir(parents=True, exist_ok=True)
                driver.save_screenshot(str(args.out))
        finally:
            served.close()
    print(f"saved {args.out}")
    return 0 if run["state"] == "succeeded" else 1


if __name__ == "__main__":
    sys.exit(main())
