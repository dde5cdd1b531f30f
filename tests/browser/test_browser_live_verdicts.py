"""The demo page in a real browser: two tabs of one user see every verdict live, a tab
reloaded while submissions are judged catches up from its last event id, and when the gateway
restarts the page reconnects by itself and gets the verdicts it missed meanwhile."""

from __future__ import annotations

import time
import uuid

import httpx
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

SLEEPY_PYTHON = "import time\ntime.sleep(1.5)\nprint('hello, ' + input())\n"


def sign_in(driver: webdriver.Chrome, page: str, user: str) -> None:
    driver.get(page)
    wait = WebDriverWait(driver, 30)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#language option"))
    field = driver.find_element(By.ID, "user")
    field.clear()
    field.send_keys(user)
    driver.find_element(By.CSS_SELECTOR, "#signin button").click()
    wait_live(driver)


def wait_live(driver: webdriver.Chrome) -> None:
    WebDriverWait(driver, 30).until(lambda d: d.find_element(By.ID, "connection").text == "live")


def open_second_tab(driver: webdriver.Chrome, page: str) -> tuple[str, str]:
    first = driver.current_window_handle
    driver.switch_to.new_window("tab")
    driver.get(page)  # the token is in localStorage: signed in already
    wait_live(driver)
    return first, driver.current_window_handle


def submit(driver: webdriver.Chrome, source: str) -> str:
    editor = driver.find_element(By.ID, "source")
    driver.execute_script("arguments[0].value = arguments[1]", editor, source)
    driver.find_element(By.ID, "submit").click()
    WebDriverWait(driver, 30).until(
        lambda d: d.find_element(By.ID, "notice").text.startswith("submitted ")
    )
    return driver.find_element(By.ID, "notice").text.removeprefix("submitted ")


def status_of(driver: webdriver.Chrome, token: str) -> str:
    cells = driver.find_elements(By.CSS_SELECTOR, f'tr[data-token="{token}"] td.status')
    return cells[0].text if cells else ""


def wait_status(driver: webdriver.Chrome, token: str, status: str, timeout_s: float = 90) -> None:
    WebDriverWait(driver, timeout_s).until(lambda d: status_of(d, token) == status)


def resumes(gateway: str) -> float:
    metrics = httpx.get(f"{gateway}/metrics").text
    line = next(m for m in metrics.splitlines() if m.startswith("kubejudge_gateway_resumes_total"))
    return float(line.split()[1])


def test_two_tabs_of_one_user_both_see_the_verdict(stack, browser) -> None:
    sign_in(browser, stack.page, f"tabs-{uuid.uuid4().hex[:8]}")
    first, second = open_second_tab(browser, stack.page)
    browser.switch_to.window(first)
    token = submit(browser, "print('hello, ' + input())\n")
    wait_status(browser, token, "Accepted")
    browser.switch_to.window(second)
    wait_status(browser, token, "Accepted")
    output = f'tr[data-token="{token}"] td.output'
    WebDriverWait(browser, 30).until(
        lambda d: d.find_element(By.CSS_SELECTOR, output).text == "hello, world"
    )


def test_a_tab_reloaded_mid_stream_catches_up(stack, browser) -> None:
    sign_in(browser, stack.page, f"reload-{uuid.uuid4().hex[:8]}")
    first, second = open_second_tab(browser, stack.page)
    browser.switch_to.window(first)
    tokens = [submit(browser, SLEEPY_PYTHON) for _ in range(3)]
    resumed_before = resumes(stack.gateway)

    browser.switch_to.window(second)
    browser.refresh()  # while the sleepy submissions are still being judged
    wait_live(browser)
    assert resumes(stack.gateway) > resumed_before  # it reconnected from its last event id
    for token in tokens:
        wait_status(browser, token, "Accepted")
    browser.switch_to.window(first)
    for token in tokens:
        wait_status(browser, token, "Accepted")


def test_the_page_reconnects_after_a_gateway_restart_and_gets_what_it_missed(
    stack, browser
) -> None:
    sign_in(browser, stack.page, f"restart-{uuid.uuid4().hex[:8]}")
    stack.stop_gateway()  # its sockets are closed with 1001
    WebDriverWait(browser, 30).until(lambda d: d.find_element(By.ID, "connection").text != "live")
    token = submit(browser, "print('hello, ' + input())\n")
    judged = httpx.get(f"{stack.api}/submissions/{token}?fields=status_id")
    for _ in range(300):  # judged, and its verdict published, while no gateway is up
        if judged.json()["status_id"] > 2:
            break
        time.sleep(0.1)
        judged = httpx.get(f"{stack.api}/submissions/{token}?fields=status_id")
    assert judged.json()["status_id"] == 3
    assert status_of(browser, token) == "In Queue"

    stack.start_gateway()
    wait_live(browser)
    wait_status(browser, token, "Accepted")


def test_the_client_backs_off_exponentially_with_full_jitter(stack, browser) -> None:
    browser.get(stack.page)
    delays = browser.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        import("/static/client.js").then(({ backoffDelayMs }) => {
          const sample = (attempt) => Array.from({ length: 200 }, () => backoffDelayMs(attempt));
          done({ first: sample(0), fourth: sample(3), late: sample(30) });
        });
        """
    )
    assert all(0 <= d < 500 for d in delays["first"])
    assert all(0 <= d < 4000 for d in delays["fourth"]) and max(delays["fourth"]) > 2000
    assert all(0 <= d < 30000 for d in delays["late"])  # capped
    assert len(set(delays["fourth"])) > 100  # jittered: reconnects do not arrive in lockstep
