"""`POST /events` over real HTTP: roles, validation as 422 with the reason, the booking of
an overpayment, and a recorded dispute changing the next run."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest

from dunning.api import ApiConfig, create_app, load_tokens
from engine.store import WITH_EVENTS, Store
from legal_rules.from_tables import invoice_states

READ = "rd-ev-Kp3wQ9zLm2XvT7bN5sRc8HyJ4fGu6aDe"
REVIEW = "rv-ev-Wt6yP1nMq8ZkL3xV9cBh5DsF2jRg7uEa"


@pytest.fixture
def api(db, serve, tmp_path):
    token_file = tmp_path / "tokens.txt"
    token_file.write_text(f"{READ} read dashboards\n{REVIEW} reviewer alice\n")
    app = create_app(ApiConfig(db=db, tokens=load_tokens(token_file)))
    with serve(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield client


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def open_invoices(db, day: dt.date):  # noqa: ANN001, ANN201
    s = invoice_states(Store(db).tables(as_of=day, names=WITH_EVENTS), day)
    return s[s["is_open"].to_numpy(dtype=bool)].set_index("invoice_id")


def test_post_events_books_an_overpayment_and_a_dispute_stops_the_next_run(api, db,
                                                                          as_of) -> None:
    day = as_of - dt.timedelta(days=1)
    inv = open_invoices(db, day)
    first, second = inv.index[0], inv.index[1]
    open_amount = round(float(inv.loc[first, "open_amount"]), 2)
    body = {"kind": "payment", "invoice_id": first, "effective_date": day.isoformat(),
            "amount": round(open_amount + 25.0, 2)}
    assert api.post("/events", json=body, headers=auth(READ)).status_code == 403
    r = api.post("/events", json=body, headers=auth(REVIEW))
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["recorded"] and got["principal"] == open_amount and got["interest_fees"] == 25.0
    assert api.post("/events", json=body, headers=auth(REVIEW)).json()["recorded"] is False
    r = api.post("/events", json={"kind": "dispute_opened", "invoice_id": second,
                                  "effective_date": day.isoformat(), "note": "wrong goods"},
                 headers=auth(REVIEW))
    assert r.status_code == 200, r.text
    run = api.post("/recommendations/run", json={"as_of": as_of.isoformat()},
                   headers=auth(REVIEW))
    assert run.status_code == 200, run.text
    assert api.get(f"/recommendations/{first}", params={"as_of": as_of.isoformat()},
                   headers=auth(READ)).status_code == 404  # paid: no longer open
    rec = api.get(f"/recommendations/{second}", params={"as_of": as_of.isoformat()},
                  headers=auth(READ)).json()
    assert rec["action"] == "wait"
    assert "practice.no_reminder_disputed" in {v["rule_id"] for v in rec["vetoes"]}
    audit = api.get("/audit", params={"invoice_id": second}, headers=auth(READ)).json()
    ev = [x for x in audit["records"] if x["kind"] == "event"]
    assert ev and ev[0]["payload"]["recorded_by"] == "api:alice"
    assert "wrong goods" not in str(ev[0]["payload"])


@pytest.mark.parametrize(("body", "needle"), [
    ({"kind": "payment", "invoice_id": "NOPE", "effective_date": "2024-12-01", "amount": 5},
     "no such invoice"),
    ({"kind": "payment", "invoice_id": "I00000001", "effective_date": "2024-12-01",
      "amount": -5}, "amount"),
    ({"kind": "promise_to_pay", "invoice_id": "I00000899", "effective_date": "2024-12-01",
      "promised_date": "2024-11-01"}, "before the day of the promise"),
    ({"kind": "refund", "invoice_id": "I00000001", "effective_date": "2024-12-01"}, "kind"),
    ({"kind": "payment", "invoice_id": "I00000001", "effective_date": "2024-13-01",
      "amount": 5}, "effective_date"),
])
def test_bad_events_get_422_naming_the_problem(api, body, needle) -> None:
    r = api.post("/events", json=body, headers=auth(REVIEW))
    assert r.status_code == 422, r.text
    assert needle in r.text
