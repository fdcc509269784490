"""The web console in a real headless Chromium against a real server process: log in
with a token, create a source and a sink, test a payload, send an event over HTTP,
see it counted, flush, see it imported; settings, enable/disable, and a wrong token.

Screenshots of each step go to ``tests-artifacts/console/<test>/`` (or
``$PUSHSTREAM_ARTIFACTS/console/<test>/``). Every wait is on a condition of the page
(WebDriverWait), never a fixed sleep."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests
from selenium.common.exceptions import (
    ElementClickInterceptedException,
    NoSuchElementException,
    StaleElementReferenceException,
    TimeoutException,
)
from selenium.webdriver import Chrome
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from serverprocess import PUSHSTREAM, ServerProcess

BASE = "/v1/branches/default/sources"
# Long enough for a loaded 2-core machine; the waits end as soon as the page shows the state.
WAIT_SECONDS = 60
# The page is redrawn when the statistics change: an element found a moment ago may be replaced.
REDRAWN = (StaleElementReferenceException, NoSuchElementException, ElementClickInterceptedException)


class Page:
    """The console in a browser, with waits on what it shows."""

    def __init__(self, driver: Chrome, server: ServerProcess, screenshots: Path) -> None:
        self.driver = driver
        self.server = server
        self.screenshots = screenshots
        self.shots = 0
        self.log: list[dict[str, Any]] = []

    def until(self, condition: Callable[[Chrome], Any], what: str) -> Any:
        wait = WebDriverWait(self.driver, WAIT_SECONDS, ignored_exceptions=REDRAWN)
        return wait.until(condition, f"the console did not show {what}")

    def text(self, css: str) -> str:
        return str(self.driver.find_element(By.CSS_SELECTOR, css).text)

    def shows(self, css: str, text: str) -> None:
        try:
            self.until(lambda d: self.text(css) == text, f"{text!r} in {css}")
        except TimeoutException:
            found = [e.text for e in self.driver.find_elements(By.CSS_SELECTOR, css)]
            raise AssertionError(f"{css} shows {found!r}, not {text!r}") from None

    def visible(self, css: str) -> None:
        self.until(lambda d: d.find_element(By.CSS_SELECTOR, css).is_displayed(), f"{css}")

    def click(self, css: str) -> None:
        self.until(lambda d: d.find_element(By.CSS_SELECTOR, css).click() is None, f"a clickable {css}")

    def type(self, css: str, text: str) -> None:
        field = self.driver.find_element(By.CSS_SELECTOR, css)
        field.clear()
        field.send_keys(text)

    def message(self, text: str) -> None:
        self.shows("#message", text)

    def screenshot(self, name: str, at: str | None = None) -> None:
        """Saves the window as ``NN-name.png``, scrolled to ``at`` (a CSS selector) first when given."""
        if at is not None:
            self.driver.execute_script("document.querySelector(arguments[0]).scrollIntoView()", at)
        self.shots += 1
        self.driver.save_screenshot(str(self.screenshots / f"{self.shots:02d}-{name}.png"))

    def browser_log(self) -> list[dict[str, Any]]:
        """Every message of the page's console so far (the driver hands each out once)."""
        self.log.extend(self.driver.get_log("browser"))
        return self.log

    def script_errors(self) -> list[str]:
        """Errors the page's scripts logged; the browser's own line for every answer
        with an error status (a 401, a 422) is no script error."""
        return [
            entry["message"]
            for entry in self.browser_log()
            if entry["level"] == "SEVERE" and "Failed to load resource" not in entry["message"]
        ]

    def open(self) -> None:
        self.driver.get(f"{self.server.url}/console")
        self.visible("#login-form")

    def log_in(self, token: str) -> None:
        self.type("#login-token", token)
        self.click("#login-button")


def api(server: ServerProcess, method: str, path: str, **kwargs: Any) -> Any:
    response = server.request(method, path, **kwargs)
    assert response.status_code == 200, (response.status_code, response.text)
    return response.json()


def test_console_end_to_end(browser: Chrome, server: ServerProcess, screenshots: Path) -> None:
    page = Page(browser, server, screenshots)
    page.open()
    page.screenshot("login")
    page.log_in(server.token)
    page.visible("#console")
    page.shows("#sources", "No sources yet: create one below.")
    # The token stays in the tab's sessionStorage, the header the API reads.
    assert browser.execute_script("return sessionStorage.getItem('pushstream.console.token')") == server.token

    # A source.
    page.type("#source-name", "Web events")
    page.click("#create-source-button")
    page.message("Source web-events created.")
    source = api(server, "GET", f"{BASE}/web-events")
    assert source["name"] == "Web events"
    url = source["http"]["url"]
    page.until(
        lambda d: d.find_element(By.CSS_SELECTOR, "[data-source='web-events'] input.url").get_attribute("value") == url,
        "the source's URL",
    )
    # The copy button puts the URL in the clipboard (the page may read it back once allowed to).
    browser.execute_cdp_cmd(
        "Browser.grantPermissions",
        {"origin": server.url, "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]},
    )
    page.click("[data-source='web-events'] button.copy")
    page.shows("[data-source='web-events'] button.copy", "Copied")
    copied = browser.execute_async_script(
        "navigator.clipboard.readText().then(arguments[0], (e) => arguments[0](String(e)))"
    )
    assert copied == url

    # A sink: the default columns (id, received, body) and a path column.
    Select(browser.find_element(By.CSS_SELECTOR, "#sink-source")).select_by_value("web-events")
    page.type("#sink-name", "Events")
    page.type("#sink-table", "in.c-web.events")
    page.click("#add-column")
    new_column = "#sink-columns tbody tr:last-child"
    page.type(f"{new_column} .column-name", "user")
    Select(browser.find_element(By.CSS_SELECTOR, f"{new_column} .column-type")).select_by_value("path")
    page.type(f"{new_column} .column-detail", "user.id")
    Select(browser.find_element(By.CSS_SELECTOR, f"{new_column} .column-data-type")).select_by_value("integer")
    page.click("#add-column")
    page.type(f"{new_column} .column-name", "kind")
    Select(browser.find_element(By.CSS_SELECTOR, f"{new_column} .column-type")).select_by_value("template")
    page.type(f"{new_column} .column-detail", 'std.asciiUpper(Body("event"))')
    page.click(f"{new_column} .column-raw-string")
    page.screenshot("create-sink", at="#create-sink-panel")
    page.click("#create-sink-button")
    page.message("Sink events created.")
    sink = api(server, "GET", f"{BASE}/web-events/sinks/events")
    assert sink["table"]["tableId"] == "in.c-web.events"
    assert sink["table"]["mapping"]["columns"] == [
        {"type": "uuid", "name": "id"},
        {"type": "datetime", "name": "received"},
        {"type": "body", "name": "body"},
        {"type": "path", "name": "user", "path": "user.id", "dataType": "integer"},
        {
            "type": "template",
            "name": "kind",
            "rawString": True,
            "template": {"language": "jsonnet", "content": 'std.asciiUpper(Body("event"))'},
        },
    ]
    row = "tr[data-source='web-events'][data-sink='events']"
    page.shows(f"{row} .mapping-summary", "id, received, body, user, kind")
    page.shows("#detail-title", "Sink web-events/events → in.c-web.events")

    # Test a payload: the mapped row, nothing written.
    payload = '{"user": {"id": 7}, "event": "click"}'
    Select(browser.find_element(By.CSS_SELECTOR, "#test-source")).select_by_value("web-events")
    page.type("#test-body", payload)
    page.click("#test-button")
    page.shows(".test-table[data-sink='events'] td[data-column='user']", "7")
    assert page.text(".test-table[data-sink='events'] td[data-column='body']") == payload
    assert page.text(".test-table[data-sink='events'] td[data-column='kind']") == "CLICK"
    assert page.text(".test-table[data-sink='events'] h3") == "events → in.c-web.events"
    page.screenshot("test-payload", at="#test-panel")
    # A payload the mapping cannot take: the API's reason, shown as it is.
    page.type("#test-body", '{"user": {"id": "seven"}}')
    page.click("#test-button")
    page.shows("#test-error", 'Invalid value for column "user" of sink "events": cannot convert "seven" to integer.')
    page.shows(f"{row} .count-total", "0")

    # An event over HTTP, as a client sends it: counted, not imported yet.
    sent = requests.post(url, data=payload, headers={"Content-Type": "application/json"}, timeout=30)
    assert (sent.status_code, sent.text) == (200, "OK")
    page.shows(f"{row} .count-total", "1")
    page.shows(f"{row} .count-target", "0")
    page.shows("#levels tr[data-level='total'] .records", "1")
    page.shows("#levels tr[data-level='target'] .records", "0")
    page.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#files-waiting tr.file"), "a file waiting")
    page.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#chart polyline.received"), "the throughput chart")
    page.screenshot("counted", at="#sources-panel")

    # Flush: the file is imported, the target level counts the row.
    page.click(f"{row} button.flush")
    page.message("Flushed: 1 of 1 file(s) imported.")
    page.shows(f"{row} .count-target", "1")
    page.shows("#levels tr[data-level='target'] .records", "1")
    page.visible("#no-files-waiting")
    page.visible("#no-failed-imports")
    page.screenshot("imported", at="#sources-panel")
    statistics = api(server, "GET", f"{BASE}/web-events/sinks/events/statistics/total")
    assert statistics["levels"]["target"]["recordsCount"] == 1
    assert statistics["total"]["recordsCount"] == 1

    # Settings of the selected sink: one key changed from the page.
    key = "storage.level.target.import.trigger.count"
    setting_row = f"#settings tr[data-key='{key}']"
    page.visible(setting_row)
    page.type(f"{setting_row} input", "5")
    page.click(f"{setting_row} button")
    page.message(f"{key} saved.")
    settings = api(server, "GET", f"{BASE}/web-events/sinks/events/settings")["settings"]
    assert [(s["value"], s["overwritten"]) for s in settings if s["key"] == key] == [(5, True)]

    # Disable and enable the sink.
    page.click(f"{row} button.disable")
    page.message("Sink events disabled.")
    page.shows(f"{row} .badge", "disabled")
    assert "disabled" in api(server, "GET", f"{BASE}/web-events/sinks/events")
    page.screenshot("disabled", at="#sources-panel")
    page.click(f"{row} button.enable")
    page.message("Sink events enabled.")
    page.shows(f"{row} .badge", "enabled")
    assert "disabled" not in api(server, "GET", f"{BASE}/web-events/sinks/events")

    # The source's flush (it closes and imports the sink's open file, empty here), and its disable button.
    page.click("[data-source='web-events'] .actions button.flush")
    page.message("Flushed: 1 of 1 file(s) imported.")
    page.click("[data-source='web-events'] .actions button.disable")
    page.message("Source web-events disabled.")
    page.shows("[data-source='web-events'] .title .badge", "disabled")
    assert "disabled" in api(server, "GET", f"{BASE}/web-events")
    page.click("[data-source='web-events'] .actions button.enable")
    page.message("Source web-events enabled.")
    assert "disabled" not in api(server, "GET", f"{BASE}/web-events")

    # A setting reset to the inherited value.
    page.click(f"{setting_row} button:nth-of-type(2)")
    page.message(f"{key} reset.")
    settings = api(server, "GET", f"{BASE}/web-events/sinks/events/settings")["settings"]
    assert [(s["value"], s["overwritten"]) for s in settings if s["key"] == key] == [(50000, False)]

    # Logging out forgets the token.
    page.click("#logout")
    page.visible("#login-form")
    assert browser.execute_script("return sessionStorage.getItem('pushstream.console.token')") is None
    assert page.script_errors() == []


def sqlite_target(server: ServerProcess, statement: str) -> None:
    """Runs SQL on the server's SQLite target, as a person altering a table would
    (through ADBC's SQLite, the library the server uses)."""
    import adbc_driver_sqlite.dbapi as sqlite_dbapi

    with sqlite_dbapi.connect(str(server.data_dir / "tables.sqlite"), autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("PRAGMA busy_timeout = 30000")
        cur.fetchall()
        cur.execute(statement)


def test_a_failed_import_shows_its_reason(browser: Chrome, server_factory: Any, screenshots: Path) -> None:
    """A table changed by hand fails the import: the console shows the file waiting
    and the reason; once the table is right again the retry imports it."""
    server = server_factory(args=("--import-retry-base", "0.5"))
    task = server.request("POST", BASE, json={"sourceId": "orders", "name": "Orders", "type": "http"})
    assert task.status_code == 202
    page = Page(browser, server, screenshots)
    page.open()
    page.log_in(server.token)
    sink = {"type": "body", "name": "body"}
    page.visible("[data-source='orders']")
    Select(browser.find_element(By.CSS_SELECTOR, "#sink-source")).select_by_value("orders")
    page.type("#sink-name", "all")
    page.type("#sink-table", "in.c-shop.orders")
    for remove in browser.find_elements(By.CSS_SELECTOR, "#sink-columns tbody tr:not(:last-child) .remove-column"):
        remove.click()
    page.click("#create-sink-button")
    page.message("Sink all created.")
    assert api(server, "GET", f"{BASE}/orders/sinks/all")["table"]["mapping"]["columns"] == [sink]
    sqlite_target(server, 'ALTER TABLE "in.c-shop.orders" ADD COLUMN extra TEXT')
    url = api(server, "GET", f"{BASE}/orders")["http"]["url"]
    sent = requests.post(url, data='{"order": 1}', headers={"Content-Type": "application/json"}, timeout=30)
    assert (sent.status_code, sent.text) == (200, "OK")

    row = "tr[data-source='orders'][data-sink='all']"
    page.shows(f"{row} .count-total", "1")
    page.click(f"{row} button.flush")
    reason = 'table "in.c-shop.orders" has columns [body, extra], the sink needs [body]'
    page.until(lambda d: reason in page.text("#message"), "the failed flush with its reason")
    page.until(lambda d: reason in page.text("#files-failed td.reason"), "the reason of the failed import")
    page.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#files-waiting tr.file"), "the file waiting")
    page.shows(f"{row} .count-target", "0")
    page.screenshot("failed-import", at="#detail-panel")

    # The table put right: the next attempt (backoff 0.5 s here) imports the file.
    sqlite_target(server, 'ALTER TABLE "in.c-shop.orders" DROP COLUMN extra')
    page.shows(f"{row} .count-target", "1")
    page.visible("#no-failed-imports")
    page.visible("#no-files-waiting")
    page.screenshot("imported-after-retry", at="#detail-panel")
    assert page.script_errors() == []


def test_a_guest_token_sees_but_cannot_change(browser: Chrome, server: ServerProcess, screenshots: Path) -> None:
    """A read-only token: the URL without its secret, and the API's refusal of a change shown as it is."""
    task = server.request("POST", BASE, json={"sourceId": "shop", "name": "Shop", "type": "http"})
    assert task.status_code == 202
    created = subprocess.run(
        [*PUSHSTREAM, "token", "create", "--data-dir", str(server.data_dir), "--role", "guest"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    token_id = created.stderr.split()[1]
    assert created.stderr == f"token {token_id} (guest) created\n"
    page = Page(browser, server, screenshots)
    page.open()
    page.log_in(created.stdout.strip())
    page.visible("[data-source='shop']")
    url = browser.find_element(By.CSS_SELECTOR, "[data-source='shop'] input.url").get_attribute("value")
    assert url == api(server, "GET", f"{BASE}/shop")["http"]["url"].rsplit("/", 1)[0] + "/********"
    page.click("[data-source='shop'] .actions button.disable")
    page.message(f'The token "{token_id}" may only read; this operation needs an admin token.')
    assert "disabled" not in api(server, "GET", f"{BASE}/shop")
    page.screenshot("guest-refused")
    assert page.script_errors() == []


def test_a_wrong_token_is_refused_with_a_clear_message(
    browser: Chrome, server: ServerProcess, screenshots: Path
) -> None:
    page = Page(browser, server, screenshots)
    page.open()
    page.log_in("not-the-token")
    page.shows("#login-error", "Log in failed: The token is not valid. Check the token and try again.")
    assert not browser.find_element(By.CSS_SELECTOR, "#console").is_displayed()
    assert browser.execute_script("return sessionStorage.getItem('pushstream.console.token')") is None
    page.screenshot("wrong-token")
    assert page.script_errors() == []
    # The browser's log is read indeed: it has the line of the refused call.
    assert [e["level"] for e in page.browser_log() if "401 (UNAUTHORIZED)" in e["message"].upper()] == ["SEVERE"]


def test_the_page_and_its_assets_are_served_locally(server: ServerProcess) -> None:
    """The page needs nothing from elsewhere: its assets are the package's files."""
    page = requests.get(f"{server.url}/console", timeout=30)
    assert page.status_code == 200
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    static = Path(__import__("pushstream.console", fromlist=["STATIC_DIR"]).STATIC_DIR)
    assert page.content == (static / "index.html").read_bytes()
    for asset, mimetype in (("console.js", "text/javascript"), ("console.css", "text/css")):
        response = requests.get(f"{server.url}/console/{asset}", timeout=30)
        assert (response.status_code, response.headers["Content-Type"]) == (200, f"{mimetype}; charset=utf-8")
        assert response.content == (static / asset).read_bytes()
    # No URL of another host in the page or its assets.
    for name in ("index.html", "console.js", "console.css"):
        assert "http://" not in (static / name).read_text().replace("http://www.w3.org/2000/svg", "")
        assert "https://" not in (static / name).read_text()
    redirect = requests.get(f"{server.url}/console/", allow_redirects=False, timeout=30)
    assert (redirect.status_code, redirect.headers["Location"]) == (308, "../console")
    missing = requests.get(f"{server.url}/console/missing.js", timeout=30)
    assert missing.status_code == 404
    assert json.loads(missing.text)["error"] == "stream.api.endpointNotFound"
    # Without a token the console's data is not served (the page holds none).
    refused = requests.get(f"{server.url}{BASE}", timeout=30)
    assert refused.status_code == 400
