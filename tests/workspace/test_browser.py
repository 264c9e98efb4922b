"""The workspace in a real browser: Debian's headless Chromium driven by Selenium through
/usr/bin/chromedriver (Selenium Manager never runs, nothing is downloaded), against the app
served by uvicorn on 127.0.0.1. One browser session for the module: a clerk's morning, then
a lawyer changing a rule (editor, four eyes, what-if, audit trail).

Set ``DUNNING_SCREENSHOTS=docs/workspace`` to write the pages' screenshots there (they are
always written to the test's temporary folder)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from .conftest import (
    HOSTILE,
    HOSTILE_ID,
    LEGAL,
    LEGAL2,
    READ,
    REVIEW,
    decided_reviews,
    make_workspace_app,
)
from .test_pages import GOOD_RULE
from .test_rule_editor import LETTER_RULE

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
                       reason="needs Debian's chromium and chromium-driver (make chromium)"),
]


@pytest.fixture(scope="module")
def site(workspace_base, tmp_path_factory):
    from .conftest import running_server

    folder = tmp_path_factory.mktemp("browser")
    shutil.copytree(workspace_base.parent, folder / "store")
    db = folder / "store" / workspace_base.name
    with running_server(make_workspace_app(db, folder)) as url:
        yield url, db


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tmp_path_factory.mktemp("chromium-profile")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={profile}",
                 "--window-size=1400,1000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.implicitly_wait(0)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    out = tmp_path_factory.mktemp("screenshots")
    keep = os.environ.get("DUNNING_SCREENSHOTS")

    def shot(driver, name: str) -> None:  # noqa: ANN001
        path = out / f"{name}.png"
        height, chrome = driver.execute_script(
            "return [document.documentElement.scrollHeight, "
            "window.outerHeight - window.innerHeight]")  # (the window's own bars)
        driver.set_window_size(1400, max(700, min(int(height) + 20 + int(chrome), 1800)))
        driver.save_screenshot(str(path))
        driver.set_window_size(1400, 1000)
        assert path.stat().st_size > 10_000  # a rendered page, not a blank one
        if keep:
            Path(keep).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, Path(keep) / path.name)

    return shot


def wait_for(driver, css: str, text: str | None = None, timeout: float = 10):  # noqa: ANN001, ANN201
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, timeout)
    if text is None:
        return wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, css)))
    wait.until(ec.text_to_be_present_in_element((By.CSS_SELECTOR, css), text))
    return driver.find_element(By.CSS_SELECTOR, css)


def settled(driver, in_url: str, timeout: float = 10) -> None:  # noqa: ANN001
    """Wait until htmx has swapped a response whose URL (pushed) holds ``in_url`` and no
    request is in flight."""
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout).until(lambda d: in_url in d.current_url and not d.execute_script(
        "return document.querySelector('.htmx-request') !== null"))


def log_in(driver, url: str, token: str) -> None:  # noqa: ANN001
    from selenium.webdriver.common.by import By

    driver.get(url + "/ui/")
    wait_for(driver, "#token").send_keys(token)
    driver.find_element(By.ID, "login").click()
    wait_for(driver, "#who")


def log_out(driver) -> None:  # noqa: ANN001
    from selenium.webdriver.common.by import By

    driver.find_element(By.ID, "logout").click()
    wait_for(driver, "#token")


def test_a_morning_in_the_workspace(site, browser, shots):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    from dunning.ops.audit import AuditLog
    from dunning.ops.recommend import compiled_rules
    from engine.store import Store

    url, db = site
    d = browser
    # -- log in as the reviewer: the worklist ----------------------------------------------
    log_in(d, url, REVIEW)
    assert "alice (reviewer)" in d.find_element(By.ID, "who").text
    total = int(d.find_element(By.ID, "total").text)
    assert total > 50 and len(d.find_elements(By.CSS_SELECTOR, "#worklist tbody tr")) == 50
    shots(d, "worklist")
    letter_url = d.find_element(By.CSS_SELECTOR, "a.letter-link").get_attribute("href")
    # filter (htmx swaps the table): only invoices at risk, then the hostile customer by name
    Select(d.find_element(By.ID, "f-risk")).select_by_value("at_risk")
    settled(d, "risk=at_risk")
    at_risk = int(d.find_element(By.ID, "total").text)
    assert 0 < at_risk <= total
    d.find_element(By.ID, "f-q").send_keys("script")
    d.find_element(By.ID, "apply").click()
    settled(d, "q=script")  # the filter is in the address (hx-push-url) once swapped
    rows = d.find_elements(By.CSS_SELECTOR, "#worklist tbody tr")
    assert 0 < len(rows) <= at_risk
    assert all(r.find_element(By.CSS_SELECTOR, "a.customer").text == HOSTILE for r in rows)
    # -- open the customer: the name is text, nothing ran -----------------------------------
    rows[0].find_element(By.CSS_SELECTOR, "a.customer").click()
    assert wait_for(d, "#customer-name").text.startswith(HOSTILE)
    assert d.execute_script("return document.querySelectorAll('main script').length") == 0
    assert d.find_element(By.ID, "history-summary").text.startswith("Payment history:")
    assert d.find_elements(By.CSS_SELECTOR, "#history-chart circle")
    assert d.find_elements(By.CSS_SELECTOR, "#timeline li")
    d.get(url + f"/ui/customers/{HOSTILE_ID}")
    # record a promise to pay from the page: on the timeline at once
    Select(wait_for(d, "#event-kind")).select_by_value("promise_to_pay")
    Select(d.find_element(By.ID, "event-invoice")).select_by_index(1)
    promised = d.execute_script(
        "const f = document.getElementById('event-promised');"
        "const day = new Date(document.getElementById('event-date').value);"
        "day.setUTCDate(day.getUTCDate() + 10); f.value = day.toISOString().slice(0, 10);"
        "return f.value")
    d.find_element(By.ID, "event-submit").click()
    assert "recorded promise_to_pay" in wait_for(d, "#event-done").text
    assert f"promise to pay by {promised}" in d.find_element(By.ID, "timeline").text
    shots(d, "customer")
    # -- a letter as it will be sent, framed (sandboxed) in the page ------------------------
    d.get(letter_url)
    wait_for(d, "#letter-figures")
    d.switch_to.frame(d.find_element(By.CSS_SELECTOR, "iframe.letter"))
    assert "Nordlicht Maschinenbau GmbH" in wait_for(d, "body", "Nordlicht Maschinenbau GmbH").text
    d.switch_to.default_content()
    shots(d, "letter")
    # -- the review queue: approve with a reason, see it in the audit trail -----------------
    d.get(url + "/ui/review?sort=amount&dir=desc")
    row = wait_for(d, "#review-queue tbody tr[id^=review-]")
    rid = row.get_attribute("id").removeprefix("review-")
    shots(d, "review")
    row.find_element(By.TAG_NAME, "textarea").send_keys("debtor confirmed the claim by phone")
    row.find_element(By.CSS_SELECTOR, "button.approve").click()
    decided = wait_for(d, f"#review-{rid}.decided")
    assert "approved by alice" in decided.text
    d.get(url + f"/ui/review/{rid}")
    trail = wait_for(d, "#audit-trail").text
    assert "approved" in trail and "alice" in trail and "debtor confirmed the claim" in trail
    shots(d, "review-item")
    with Store(db).connect() as con:
        records = [r for r in decided_reviews(AuditLog(con))
                   if r["payload"]["review_id"] == rid]
    assert len(records) == 1 and records[0]["payload"]["decision"] == "approved"
    # -- the rules browser and the explain form ---------------------------------------------
    d.get(url + "/ui/rules")
    from legal_rules.testing import run_rule_tests

    failed = sum(not r.passed for r in run_rule_tests(compiled_rules()[0]))
    assert f", {failed} failed" in wait_for(d, "#test-summary").text
    shots(d, "rules")
    d.get(url + "/ui/rules/explain")
    Select(wait_for(d, "#action")).select_by_value("agency")
    days = d.find_element(By.ID, "fact_days_overdue")
    days.clear()
    days.send_keys("120")
    d.find_element(By.ID, "explain").click()
    status = wait_for(d, "#decision-status").text
    from legal_rules.testing import NEUTRAL_FACTS

    want = compiled_rules()[2].decide({**NEUTRAL_FACTS, "days_overdue": 120}, "agency",
                                      "2026-03-02")
    assert status == want.status.upper().replace("_", " ")
    shots(d, "explain")
    # -- a broken rule file: its line and field, nothing saved --------------------------------
    d.get(url + "/ui/rules/check")
    name = wait_for(d, "#rule-name")
    name.clear()
    name.send_keys("mine.yaml")
    broken = GOOD_RULE.replace("    effect: veto\n", "    effect: veto\n    colour: red\n")
    d.execute_script("document.getElementById('rule-yaml').value = arguments[0]", broken)
    d.find_element(By.ID, "check").click()
    assert "mine.yaml:10: rules[0]" in wait_for(d, "#check-problems").text
    shots(d, "rules-check")
    # -- the same session in German ---------------------------------------------------------
    d.get(url + "/ui/")
    Select(wait_for(d, "#lang")).select_by_value("de")
    d.find_element(By.ID, "lang-switch").click()
    wait_for(d, "h1", "Arbeitsliste")  # (waits for the new page: the old h1 goes stale)
    assert d.find_element(By.TAG_NAME, "html").get_attribute("lang") == "de"
    shots(d, "worklist-de")
    log_out(d)
    # -- a read-only user: no decision buttons, and a forced POST is refused -----------------
    log_in(d, url, READ)
    d.get(url + "/ui/review")
    wait_for(d, "#read-only")
    assert not d.find_elements(By.CSS_SELECTOR, "button.approve")
    with Store(db).connect() as con:
        pending = con.execute("SELECT review_id FROM ops_review_queue WHERE status = "
                              "'pending' LIMIT 1").fetchone()
    target = pending[0] if pending else rid
    code = d.execute_async_script("""
        const done = arguments[arguments.length - 1];
        const csrf = document.querySelector('input[name=csrf]').value;
        fetch(arguments[0], {method: 'POST', body: new URLSearchParams(
              {csrf: csrf, decision: 'approve', reason: 'I just want to'})})
          .then(r => done(r.status), e => done(String(e)));""", f"/ui/review/{target}")
    assert code == 403
    with Store(db).connect() as con:
        assert len(decided_reviews(AuditLog(con))) == 1  # still only alice's decision
    log_out(d)


def test_a_lawyer_edits_a_rule_file_and_a_second_one_approves_it(site, browser, shots):
    """Edit de.yaml in the editor (a broken line is reported at its line, fixed, proposed),
    then a second legal user reads the diff, runs the what-if and approves: the change is in
    the audit trail and in force."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    from dunning.ops.audit import AuditLog
    from engine.store import Store
    from legal_rules.loader import packaged_rules_dir

    url, db = site
    d = browser
    rid = "de.team_letter_after_40_days"
    # -- lena edits de.yaml: types a rule at the end, with a wrong scope ----------------------
    log_in(d, url, LEGAL)
    d.get(url + "/ui/rules")
    d.find_element(By.ID, "edit-de.yaml").click()
    text = wait_for(d, "#rule-yaml")
    text.click()
    text.send_keys(Keys.CONTROL, Keys.END)
    text.send_keys(LETTER_RULE.replace("scope: both", "scope: all"))
    d.find_element(By.ID, "check").click()
    packaged = (packaged_rules_dir() / "de.yaml").read_text(encoding="utf-8")
    line = (packaged + LETTER_RULE).splitlines().index("    scope: both",
                                                      packaged.count("\n")) + 1
    problems = wait_for(d, "#check-problems").text
    assert f"de.yaml:{line} rules[" in problems and ".scope" in problems, problems
    d.find_element(By.CSS_SELECTOR, f"#check-problems a[href='#L{line}']").click()
    assert d.current_url.endswith(f"#L{line}")
    assert "scope: all" in d.find_element(By.ID, f"L{line}").text
    assert d.find_element(By.ID, "rule-yaml").get_attribute("value").endswith(
        LETTER_RULE.replace("scope: both", "scope: all"))  # the text as typed
    shots(d, "rules-edit")
    # fix the line, check again, propose
    d.execute_script("const t = document.getElementById('rule-yaml');"
                     "t.value = t.value.replace('scope: all', 'scope: both')")
    d.find_element(By.ID, "check").click()
    assert "valid" in wait_for(d, "#check-ok").text
    d.find_element(By.ID, "propose").click()
    sha = wait_for(d, "#proposal-hash").text
    log_out(d)
    # -- otto: the diff, the what-if, the approval ------------------------------------------
    log_in(d, url, LEGAL2)
    d.get(url + "/ui/rules/pending")
    diff = wait_for(d, f"#diff-{sha[:12]}")
    added = [e.text for e in diff.find_elements(By.CSS_SELECTOR, ".d-add")]
    assert f"+  - id: {rid}" in added and not diff.find_elements(By.CSS_SELECTOR, ".d-del")
    shots(d, "rules-pending")
    d.find_element(By.ID, f"whatif-{sha[:12]}").click()
    wait_for(d, "#whatif-progress, #whatif-result, #whatif-failed")
    table = wait_for(d, "#whatif-table", timeout=120)  # htmx polls the job until it is done
    kpis = [r.get_attribute("id") for r in table.find_elements(By.CSS_SELECTOR, "tbody tr")]
    assert "kpi-cash_collected" in kpis and "kpi-days_sales_outstanding" in kpis
    effects = d.find_element(By.ID, "rule-effects").text
    assert rid in effects and "blocked reminder letters on" in effects
    shots(d, "rules-whatif")
    d.get(url + "/ui/rules/pending")
    form = wait_for(d, f"#proposal-{sha[:12]} form.approve-rule")
    form.find_element(By.NAME, "reason").send_keys("letters after 40 days agreed with sales")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    assert "de.yaml" in wait_for(d, "#approved").text
    trail = d.find_element(By.ID, "rule-trail").text
    assert "approved de.yaml otto" in trail and "proposed de.yaml lena" in trail
    assert "letters after 40 days agreed with sales" in trail
    shots(d, "rules-approved")
    d.get(url + "/ui/rules")
    assert wait_for(d, f"[id='{rid}']")  # in force now
    log_out(d)
    with Store(db).connect() as con:
        recs = [r for r in AuditLog(con).records(kind="rules") if r["payload"]["sha256"] == sha]
    assert [(r["payload"]["event"], r["payload"].get("approved_by") or
             r["payload"]["proposed_by"]) for r in recs] == [("proposed", "lena"),
                                                             ("approved", "otto")]
