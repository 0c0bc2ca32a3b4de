"""/docs in a real browser: Debian's headless chromium, driven by Debian's chromedriver.

Loads the page from a real server, checks every operation of the contract renders,
runs one "try it out" call with the pre-filled key, checks nothing was fetched from
anywhere but the sandbox, and saves a screenshot to artifacts/docs.png (kept by CI).
Then CORS as a browser enforces it: a page from a second local origin calls the sandbox.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from sandbox.docs import DEFAULT_KEY
from tests.conftest import ROOT, ServerProcess

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARTIFACTS = ROOT / "artifacts"
# Swagger UI's id for an operation's block (deepLinking): operations-<tag>-<operationId>
TRIED = "#operations-insights-getMyPosition"
WAIT_SECONDS = 30  # a ceiling for slow machines, not a timing assertion
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,1000",
    # Every host name fails to resolve except the loopback: the page must work offline.
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def browser(tmp_path_factory) -> Iterator[object]:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        message = "needs Debian's chromium and chromium-driver (scripts/test.sh installs them)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    # An explicit driver path: Selenium Manager never runs, so nothing is downloaded.
    log = tmp_path_factory.mktemp("chromedriver") / "chromedriver.log"
    service = Service(executable_path=str(CHROMEDRIVER), log_output=str(log))
    driver = webdriver.Chrome(service=service, options=options)
    try:
        yield driver
    finally:
        driver.quit()


def test_docs_page_renders_every_operation_and_tries_one_out(browser, server, contract):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, WAIT_SECONDS)
    browser.get(f"{server.url}/docs")
    operations = set(contract.operations)
    wait.until(lambda b: len(b.find_elements(By.CSS_SELECTOR, ".opblock")) >= len(operations))
    shown = {
        element.text
        for element in browser.find_elements(By.CSS_SELECTOR, ".opblock-summary-operation-id")
    }
    assert shown == operations

    # "try it out" on GET /api/insights/my-position, with the key the page pre-filled
    block = browser.find_element(By.CSS_SELECTOR, TRIED)
    block.find_element(By.CSS_SELECTOR, ".opblock-summary-control").click()
    for button in (".try-out__btn", ".execute"):
        selector = (By.CSS_SELECTOR, f"{TRIED} {button}")
        wait.until(ready.element_to_be_clickable(selector)).click()
    status = wait.until(
        lambda b: block.find_element(
            By.CSS_SELECTOR, ".live-responses-table tr.response .response-col_status"
        )
    )
    assert status.text.strip().startswith("200"), status.text
    curl = block.find_element(By.CSS_SELECTOR, ".curl-command").text
    assert f"X-API-Key: {DEFAULT_KEY}" in curl
    assert f"{server.url}/api/insights/my-position" in curl
    body = block.find_element(
        By.CSS_SELECTOR, ".live-responses-table tr.response .response-col_description"
    ).text
    assert '"ltv_percentile"' in body, body

    fetched = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    assert fetched and all(url.startswith(server.url + "/") for url in fetched), fetched

    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "docs.png"
    # one picture from the page's top down to the call's answer (the schemas stay below)
    answer = block.find_element(By.CSS_SELECTOR, ".live-responses-table tr.response")
    bottom = browser.execute_script(
        "window.scrollTo(0, 0); return arguments[0].getBoundingClientRect().bottom", answer
    )
    browser.set_window_size(1280, min(int(bottom) + 160, 6000))
    browser.execute_script("window.scrollTo(0, 0)")
    assert browser.save_screenshot(str(screenshot))
    assert screenshot.stat().st_size > 10_000


# The page a front-end dev server would serve: its own script calls the sandbox named in
# the query string and writes what it could read into #result.
CALLER_PAGE = b"""<!doctype html>
<html><body><pre id="result"></pre><script>
const sandbox = new URLSearchParams(location.search).get("sandbox");
fetch(sandbox + "/api/intelligence/analyze", {
  method: "POST",
  headers: {"X-API-Key": "qpk_test_sandbox", "Content-Type": "application/json"},
  body: JSON.stringify({customer_id: "test_customer_high_ltv", context: {}}),
})
  .then(async (reply) => ({
    status: reply.status,
    remaining: reply.headers.get("X-RateLimit-Remaining"),
    body: await reply.json(),
  }))
  .catch((error) => ({error: error.name + ": " + error.message}))
  .then((seen) => { document.getElementById("result").textContent = JSON.stringify(seen); });
</script></body></html>
"""


class _CallerPage(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(CALLER_PAGE)))
        self.end_headers()
        self.wfile.write(CALLER_PAGE)

    def log_message(self, format: str, *args: object) -> None:
        pass  # the test's output is the assertions, not an access log


@pytest.fixture(scope="module")
def page_origin() -> Iterator[str]:
    """A second local origin: 127.0.0.1 on another port than the sandbox's."""
    http = ThreadingHTTPServer(("127.0.0.1", 0), _CallerPage)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{http.server_address[1]}"
    finally:
        http.shutdown()
        http.server_close()
        thread.join(timeout=10)


def call_from_page(browser, page_origin: str, sandbox_url: str) -> dict:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(f"{page_origin}/call.html?sandbox={sandbox_url}")
    result = WebDriverWait(browser, WAIT_SECONDS).until(
        lambda b: b.find_element(By.ID, "result").text
    )
    return json.loads(result)


@pytest.mark.parametrize("origins", ["*", "the page's"])
def test_a_page_on_another_origin_calls_analyze_and_reads_the_rate_limit(
    browser, page_origin, origins
):
    flag = page_origin if origins == "the page's" else origins
    with ServerProcess("--seed", "7", "--cors-origins", flag) as sandbox:
        assert sandbox.url != page_origin
        seen = call_from_page(browser, page_origin, sandbox.url)
    assert "error" not in seen, seen
    assert seen["status"] == 200
    assert seen["body"]["customer_id"] == "test_customer_high_ltv"
    assert seen["remaining"] is not None and seen["remaining"].isdigit(), seen


def test_with_cors_off_the_browser_refuses_the_same_call(browser, page_origin):
    with ServerProcess("--seed", "7", "--cors-origins", "off") as sandbox:
        seen = call_from_page(browser, page_origin, sandbox.url)
        journal = sandbox.get("/_sandbox/requests", key=None).json()["requests"]
    assert seen.get("error", "").startswith("TypeError"), seen
    # Refused at the preflight: the call itself never reached the operation.
    assert not any(entry["method"] == "POST" for entry in journal), journal
