"""qa web / qa serve --web: the chat app in a browser. The page's safety rules with Starlette's
client; the app itself in a real headless Chromium (Debian's chromium and chromium-driver, driven
by Selenium): load the page, ask, see the answer with [1] and its sources, open a source."""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import pytest
from serving import running
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from qa.engine import Engine
from qa.serve.http import create_app

QUESTION = "Who chaired the NATO-Russia Council meeting?"


@pytest.fixture
def engine(seeds_copy, tmp_path, fake_embedder) -> Engine:
    engine = Engine(seeds_copy, tmp_path / "index", fake_embedder)
    engine.sync()
    return engine


def test_the_page_and_its_scripts_are_served_from_here(engine):
    client = TestClient(create_app(engine, web=True), base_url="http://127.0.0.1:8765")
    page = client.get("/web")
    assert page.status_code == 200
    assert 'data-session-websocket-url="ws://127.0.0.1:8765/web/ws"' in page.text
    # Nothing from the network: every script, style and font comes from this server.
    assert not re.search(r"(src|href)=\"https?://", page.text)
    assert "fonts.googleapis" not in page.text
    for asset in ("js/textual.js", "css/xterm.css", "fonts/RobotoMono-VariableFont_wght.ttf"):
        assert client.get(f"/web/static/{asset}").status_code == 200, asset
    assert client.get("/web/static/../../../../etc/passwd").status_code == 404


def test_without_web_there_is_no_page(engine):
    client = TestClient(create_app(engine), base_url="http://127.0.0.1")
    assert client.get("/web").status_code == 404


def test_the_token_is_given_once_and_kept_in_a_same_site_cookie(engine):
    client = TestClient(create_app(engine, token="s3cret", web=True), base_url="http://127.0.0.1",
                        follow_redirects=False)
    assert client.get("/web").status_code == 401
    assert client.get("/web?token=wrong").status_code == 401
    response = client.get("/web?token=s3cret")
    assert response.status_code == 303 and response.headers["location"] == "/web"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert client.get("/web").status_code == 200  # the client kept the cookie
    assert client.get("/stats").status_code == 200


def test_a_websocket_without_the_token_or_from_another_site_is_refused(engine):
    client = TestClient(create_app(engine, token="s3cret", web=True), base_url="http://127.0.0.1")
    with pytest.raises(WebSocketDisconnect) as refused:
        with client.websocket_connect("ws://127.0.0.1/web/ws"):
            pass
    assert (refused.value.code, refused.value.reason) == (1008, "missing or wrong token")
    open_client = TestClient(create_app(engine, web=True), base_url="http://127.0.0.1")
    with pytest.raises(WebSocketDisconnect) as refused:
        with open_client.websocket_connect("ws://127.0.0.1/web/ws",
                                           headers={"Origin": "http://evil.example"}):
            pass
    assert (refused.value.code, refused.value.reason) == \
        (1008, "a websocket must come from a page of this server")


# -- in a real browser -----------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")

# What the page's terminal is sent, collected as it arrives (the terminal draws on a canvas, so
# the page has no text to read): escape sequences are removed to search it.
RECORD_SCREEN = """
window.__qaScreen = [];
const NativeWebSocket = window.WebSocket;
window.WebSocket = function (url, protocols) {
  const socket = protocols ? new NativeWebSocket(url, protocols) : new NativeWebSocket(url);
  socket.addEventListener("message", (event) => {
    if (typeof event.data !== "string") window.__qaScreen.push(new TextDecoder().decode(event.data));
  });
  return socket;
};
window.WebSocket.prototype = NativeWebSocket.prototype;
"""
ESCAPES = re.compile(r"\x1b\[[0-9;?<>=]*[ -/]*[@-~]|\x1b[()][0-9A-B]|\x1b[=>]|\x1b\][^\x07]*\x07")


@pytest.fixture
def browser():
    if not (CHROMIUM and DRIVER):
        pytest.skip("no browser: install Debian's chromium and chromium-driver "
                    "(apt-get install chromium chromium-driver; .ci/run does)")
    selenium = pytest.importorskip("selenium", reason="selenium is not installed (pip install -e '.[test]')")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    del selenium
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--window-size=1400,820", "--disable-gpu"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": RECORD_SCREEN})
    try:
        yield driver
    finally:
        driver.quit()


def screen(driver) -> str:
    return ESCAPES.sub("", "".join(driver.execute_script("return window.__qaScreen")))


def wait_for(driver, *texts: str, seconds: float = 90) -> str:
    """The screen's text once it holds every one of ``texts`` (after what it held before)."""
    for _ in range(int(seconds * 4)):
        shown = screen(driver)
        if all(text in shown for text in texts):
            return shown
        time.sleep(0.25)
    raise AssertionError(f"the page never showed {texts}; it showed:\n{screen(driver)[-3000:]}")


@pytest.mark.browser
@pytest.mark.model
def test_the_chat_app_works_in_a_real_browser(browser, seeds_engine, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    app = create_app(seeds_engine, token="s3cret", web=True)
    with running(app) as (host, port):
        browser.get(f"http://{host}:{port}/web?token=s3cret")
        assert browser.current_url == f"http://{host}:{port}/web"  # the token left the URL
        wait_for(browser, "Ask a question about the documents")
        wait_for(browser, "Ready")  # the index and the model are loaded
        keys = browser.find_element(By.CSS_SELECTOR, ".xterm-helper-textarea")
        keys.send_keys(QUESTION + Keys.ENTER)
        shown = wait_for(browser, "[1]", "Stoltenberg", "Sources", "000_5d4c552fcafd00ce.txt")
        assert "who chaired the meeting" in shown
        time.sleep(1)  # let the last frame be drawn
        browser.save_screenshot(str(tmp_path / "answer.png"))
        if os.environ.get("QA_WEB_SCREENSHOT"):
            shutil.copy(tmp_path / "answer.png", os.environ["QA_WEB_SCREENSHOT"])
        # ctrl+o opens the selected source: the document, at the cited span.
        before = len(screen(browser))
        keys.send_keys(Keys.CONTROL, "o")
        for _ in range(120):
            opened = screen(browser)[before:]
            if "characters 305" in opened:
                break
            time.sleep(0.25)
        assert "[1] 000_5d4c552fcafd00ce.txt" in opened and "characters 305–456" in opened
        assert (tmp_path / "answer.png").stat().st_size > 10_000
    assert Path(tmp_path / "answer.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
