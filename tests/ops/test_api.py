"""The REST API over real HTTP: uvicorn on 127.0.0.1, httpx client, real store."""

from __future__ import annotations

import shutil

import httpx
import pytest

from dunning.api import ApiConfig, create_app, load_tokens
from dunning.ops.creditor import EXAMPLE_PROFILE
from engine.errors import InputError
from engine.store import Store

# Fixed test tokens with enough entropy for the start-up check (>= 128 bits estimated).
READ = "rd-l4fSz_bB4niwbBOAJO7nMOglZH9gZcE96uNY"
REVIEW = "rv-5djqYPtGBDeVJZ_10zc1LiyYIjKFVYGRC2kC"


@pytest.fixture
def api(db, serve, tmp_path):
    token_file = tmp_path / "tokens.txt"
    token_file.write_text(f"# token role name\n{READ} read dashboards\n{REVIEW} reviewer alice\n")
    app = create_app(ApiConfig(db=db, tokens=load_tokens(token_file), max_body_bytes=4096))
    with serve(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield client


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_tokens_come_from_file_or_env_and_are_checked(tmp_path):
    toks = load_tokens(env=f"{READ}:read,{REVIEW}:reviewer:bob")
    assert toks[REVIEW].role == "reviewer" and toks[REVIEW].name == "bob"
    bad = tmp_path / "t.txt"
    bad.write_text(f"{READ} admin\n")
    with pytest.raises(InputError, match="line 1"):
        load_tokens(bad)
    with pytest.raises(InputError, match="at least 16"):
        load_tokens(env="short:read")
    with pytest.raises(InputError, match="no API tokens"):
        load_tokens(env="")


def test_authentication_and_roles(api, as_of):
    assert api.get("/health").status_code == 200
    assert api.get("/rules").status_code == 401
    r = api.get("/rules", headers=auth("x" * 30))
    assert r.status_code == 401 and r.json()["error"] == "unknown token"
    assert api.get("/rules", headers={"Authorization": READ}).status_code == 401  # no scheme
    body = {"as_of": as_of.isoformat()}
    assert api.post("/recommendations/run", json=body, headers=auth(READ)).status_code == 403
    assert api.post("/recommendations/run", json=body, headers=auth(REVIEW)).status_code == 200


def test_recommendations_round_trip(api, as_of):
    run = api.post("/recommendations/run", json={"as_of": as_of.isoformat()},
                   headers=auth(REVIEW)).json()
    assert run["n_new"] == run["n_open"] > 0 and run["started_by"] == "alice"
    again = api.post("/recommendations/run", json={"as_of": as_of.isoformat()},
                     headers=auth(REVIEW)).json()
    assert again["n_new"] == 0  # idempotent
    listing = api.get("/recommendations", params={"as_of": as_of.isoformat()},
                      headers=auth(READ)).json()
    assert listing["count"] == run["n_open"]
    one = listing["recommendations"][0]
    got = api.get(f"/recommendations/{one['invoice_id']}", headers=auth(READ))
    assert got.status_code == 200 and got.json() == one
    assert api.get("/recommendations/NOPE", headers=auth(READ)).status_code == 404
    audit = api.get("/audit", params={"invoice_id": one["invoice_id"]},
                    headers=auth(READ)).json()
    assert audit["count"] == 1 and audit["records"][0]["payload"]["action"] == one["action"]
    assert api.get("/audit/verify", headers=auth(READ)).json()["ok"] is True


@pytest.mark.parametrize("body, field", [
    ({"as_of": "2024-13-40"}, "body.as_of"),
    ({"as_of": "2024-12-02", "extra": 1}, "body.extra"),
    ({}, "body.as_of"),
])
def test_malformed_bodies_get_clear_422(api, body, field):
    r = api.post("/recommendations/run", json=body, headers=auth(REVIEW))
    assert r.status_code == 422
    assert any(p.startswith(field) for p in r.json()["problems"]), r.json()


def test_invalid_json_and_ids(api):
    r = api.post("/recommendations/run", content=b"{not json",
                 headers={**auth(REVIEW), "content-type": "application/json"})
    assert r.status_code == 422 and r.json()["error"] == "invalid request"
    r = api.get("/audit", params={"invoice_id": "x' OR 1=1 --"}, headers=auth(READ))
    assert r.status_code == 422
    assert api.get("/audit", headers=auth(READ)).status_code == 422  # needs an id


def test_oversize_requests_are_refused(api):
    big = {"facts": {"industry": "x" * 10_000}, "action": "letter", "as_of": "2026-03-02"}
    r = api.post("/rules/explain", json=big, headers=auth(READ))
    assert r.status_code == 413 and "at most 4096 bytes" in r.json()["problems"][0]

    def chunks():  # no content-length: streamed body counted as it arrives
        for _ in range(10):
            yield b"x" * 1000

    r = api.post("/rules/explain", content=chunks(),
                 headers={**auth(READ), "content-type": "application/json"})
    assert r.status_code == 413


def test_rule_explanations(api):
    rules = api.get("/rules", headers=auth(READ)).json()
    assert rules["count"] > 10 and len(rules["rules_hash"]) == 64
    rid = "practice.no_weekend"
    assert "citation" in api.get(f"/rules/{rid}", headers=auth(READ)).json()
    assert api.get("/rules/no.such.rule", headers=auth(READ)).status_code == 404
    facts = {"days_overdue": 20, "days_since_last_contact": 10_000, "contacts_last_7_days": 0,
             "calls_last_7_days": 0, "reminders_sent": 0, "written_reminders_sent": 0,
             "days_since_last_written_reminder": 10_000, "final_notice_sent": False,
             "days_since_final_notice": 10_000, "disputed": False, "amount": 500.0,
             "currency": "EUR", "customer_type": "b2b", "jurisdiction": "DE", "region": "",
             "industry": "software", "is_weekend": True, "is_bank_holiday": False,
             "limitation_passed": False, "opted_out_email": False, "opted_out_phone": False,
             "opted_out_letter": False, "agency_consent": True, "reminder_fee_agreed": False,
             "milestone_reached": True, "days_in_default": 20}
    r = api.post("/rules/explain", json={"facts": facts, "action": "email",
                                         "as_of": "2026-03-07"}, headers=auth(READ)).json()
    assert r["status"] == "vetoed" and rid in [h["rule_id"] for h in r["fired"]]
    facts["is_weekend"] = False
    r = api.post("/rules/explain", json={"facts": facts, "action": "email",
                                         "as_of": "2026-03-02"}, headers=auth(READ)).json()
    assert r["status"] == "allowed"
    assert any(n["rule_id"] == rid for n in r["not_fired"])


def test_review_queue_over_http(api, db, as_of):
    from dunning.ops.audit import AuditLog
    from dunning.ops.review import ReviewItem, ReviewQueue

    with Store(db).connect() as con:
        rid = ReviewQueue(con, AuditLog(con, anchor=db.parent / "audit.anchor")).submit(
            [ReviewItem(as_of, "I00000001", "C000001", "agency",
                        ["gdpr.art22_agency_review"])])[0]
    listing = api.get("/review", headers=auth(READ)).json()
    assert [i["review_id"] for i in listing["items"]] == [rid]
    body = {"reason": "checked the file; customer unreachable"}
    assert api.post(f"/review/{rid}/approve", json=body, headers=auth(READ)).status_code == 403
    assert api.post(f"/review/{rid}/approve", json={"reason": ""},
                    headers=auth(REVIEW)).status_code == 422
    assert api.post("/review/R-0000000000/approve", json=body,
                    headers=auth(REVIEW)).status_code == 404
    ok = api.post(f"/review/{rid}/approve", json=body, headers=auth(REVIEW)).json()
    assert ok["status"] == "approved" and ok["reviewer"] == "alice"
    assert api.post(f"/review/{rid}/reject", json=body,
                    headers=auth(REVIEW)).status_code == 409
    shown = api.get(f"/review/{rid}", headers=auth(READ)).json()
    assert shown["decisions"][0]["personal"]["reason"] == body["reason"]
    assert api.get("/audit/verify", headers=auth(READ)).json()["ok"] is True


def test_openapi_docs(api):
    spec = api.get("/openapi.json").json()
    assert "/recommendations/{invoice_id}" in spec["paths"]
    assert api.get("/docs").status_code == 200


def test_letter_endpoint_renders_from_the_stored_state(api, db, as_of):
    shutil.copy(EXAMPLE_PROFILE, db.parent / "creditor.yaml")
    api.post("/recommendations/run", json={"as_of": as_of.isoformat()}, headers=auth(REVIEW))
    rows = api.get("/recommendations", params={"as_of": as_of.isoformat(), "action": "email"},
                   headers=auth(READ)).json()["recommendations"]
    inv = rows[0]["invoice_id"]
    r = api.get(f"/letters/{inv}", params={"as_of": as_of.isoformat(), "action": "email",
                                           "format": "txt"}, headers=auth(READ))
    assert r.status_code == 200 and "Nordlicht Maschinenbau GmbH" in r.text and inv in r.text
    r = api.get(f"/letters/{inv}", params={"as_of": as_of.isoformat(), "format": "docx"},
                headers=auth(READ))
    assert r.status_code == 422


@pytest.mark.slow
def test_predictions_with_a_payment_model(db, serve, tmp_path, as_of):
    from dunning.ops.recommend import invoice_state
    from engine.features import build_training_frame
    from engine.models import PaymentModel

    tables = Store(db).tables(as_of=as_of)
    tf = build_training_frame(tables, as_of)
    PaymentModel(n_estimators=30, random_state=0).fit(tf.X, tf.days_late, order=tf.ref_day) \
        .save(tmp_path / "model")
    app = create_app(ApiConfig(db=db, tokens=load_tokens(env=f"{READ}:read"),
                               model_dir=tmp_path / "model"))
    with serve(app) as url, httpx.Client(base_url=url, timeout=60) as c:
        open_ids = invoice_state(tables, as_of)["invoice_id"].tolist()
        body = {"invoice_ids": open_ids[:5], "as_of": as_of.isoformat()}
        r = c.post("/predictions", json=body, headers=auth(READ)).json()
        assert len(r["predictions"]) == 5 and r["model_hash"]
        for p in r["predictions"]:
            assert sum(p["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
            assert len(p["top_factors"]) == 3
        bad = c.post("/predictions", json={"invoice_ids": ["NOPE"], "as_of": "2024-12-02"},
                     headers=auth(READ))
        assert bad.status_code == 404


# ----------------------------------------------------------------------------- hardening
def _client(db, **config):
    """The app in-process (no server thread): for tests of the API's edges."""
    from fastapi.testclient import TestClient

    tokens = load_tokens(env=f"{READ}:read:dashboards,{REVIEW}:reviewer:alice")
    return TestClient(create_app(ApiConfig(db=db, tokens=tokens, **config)))


def test_dates_are_bounded_and_the_default_is_the_latest_run_up_to_today(db, as_of):
    import datetime as dt

    c = _client(db)
    for day in ("2099-01-01", "0001-01-01", "1999-12-31"):
        r = c.post("/recommendations/run", json={"as_of": day}, headers=auth(REVIEW))
        assert r.status_code == 422, r.text
        assert r.json()["error"] == "date out of range"
        assert r.json()["problems"][0].startswith(f"body.as_of: {day} is outside the accepted "
                                                  "range; expected a date from 2000-01-01")
        for path in ("/recommendations/I00000001", "/recommendations"):
            r = c.get(path, params={"as_of": day}, headers=auth(READ))
            assert r.status_code == 422 and "query.as_of" in r.json()["problems"][0]
    assert c.post("/rules/explain", json={"facts": {}, "action": "email", "as_of": "0001-01-01"},
                  headers=auth(READ)).status_code == 422
    # A run for a (permitted) future date is not served as the default "latest" row.
    run = c.post("/recommendations/run", json={"as_of": as_of.isoformat()},
                 headers=auth(REVIEW)).json()
    future = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=30)
    assert c.post("/recommendations/run", json={"as_of": future.isoformat()},
                  headers=auth(REVIEW)).status_code == 200
    rows = c.get("/recommendations", params={"as_of": as_of.isoformat()},
                 headers=auth(READ)).json()["recommendations"]
    inv = rows[0]["invoice_id"]
    assert c.get(f"/recommendations/{inv}", headers=auth(READ)).json()["as_of"] == \
        as_of.isoformat()
    assert c.get("/recommendations", headers=auth(READ)).json()["count"] == run["n_open"]
    narrow = _client(db, as_of_min=dt.date(2024, 12, 3))  # configurable
    assert narrow.get("/recommendations", params={"as_of": as_of.isoformat()},
                      headers=auth(READ)).status_code == 422


def test_one_error_format_everywhere(db):
    c = _client(db)
    cases = [
        (c.get("/no/such/route", headers=auth(READ)), 404),
        (c.get("/no/such/route"), 404),
        (c.get("/recommendations/run", headers=auth(READ)), 404),  # GET of a POST-only id
        (c.delete("/rules", headers=auth(READ)), 405),
        (c.get("/rules"), 401),
        (c.post("/recommendations/run", content=b"[1,2", headers={
            **auth(REVIEW), "content-type": "application/json"}), 422),
        (c.post("/review/R-0000000000/approve", json={"reason": "   \t  "},
                headers=auth(REVIEW)), 422),  # whitespace-only reason: invalid, not 409
        (c.post("/review/R-0000000000/approve", json={"reason": "fine reason"},
                headers=auth(READ)), 403),
        (c.post("/review/R-0000000000/approve", json={"reason": "fine reason"},
                headers=auth(REVIEW)), 404),
    ]
    for r, status in cases:
        assert r.status_code == status, (r.request.url, r.status_code, r.text)
        body = r.json()
        assert set(body) == {"error", "problems"}, body
        assert isinstance(body["error"], str) and isinstance(body["problems"], list)
    assert "reason" in cases[6][0].json()["problems"][0]
    assert "allowed: GET" in cases[3][0].json()["error"]


def test_auth_throttle_backs_off_per_client_and_is_bounded():
    from dunning.api import AuthThrottle

    now = [100.0]
    t = AuthThrottle(base_s=0.5, cap_s=4.0, queue_max_s=10.0, max_clients=3,
                     clock=lambda: now[0])
    assert t.reserve("a") == 0.0  # no failures: no wait, nothing remembered
    assert [t.failed("a")[1] for _ in range(5)] == [0.5, 1.0, 2.0, 4.0, 4.0]  # capped
    assert t.reserve("b") == 0.0  # another client is not slowed down
    # Parallel attempts of a penalised client queue one behind the other.
    waits = [t.reserve("a") for _ in range(3)]
    assert waits[0] == pytest.approx(4.0) and waits[1] == pytest.approx(8.0)
    assert waits[2] is None and t.retry_after("a") > 10  # would wait too long: refused
    now[0] += 60
    t.succeeded("a")
    assert t.reserve("a") == 0.0
    for c in "cdefg":  # bounded memory: the oldest clients are forgotten
        t.failed(c)
    assert len(t._clients) == 3


def test_failed_authentication_is_slowed_refused_and_logged_without_the_token(db, caplog):
    import logging

    # Backoff 5 s, queue limit 1 s: the second attempt right away is refused (no sleeping).
    c = _client(db, auth_backoff_s=5.0, auth_queue_max_s=1.0)
    wrong = "wrong-token-that-must-not-be-logged-XYZ"
    with caplog.at_level(logging.WARNING, logger="dunning.api"):
        assert c.get("/rules", headers=auth(wrong)).status_code == 401
        # The next attempt right away would have to wait longer than the queue allows.
        r = c.get("/rules", headers=auth(wrong))
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    assert set(r.json()) == {"error", "problems"}
    logged = [rec.getMessage() for rec in caplog.records if rec.name == "dunning.api"]
    assert any("failed authentication from testclient (1 in a row" in m for m in logged)
    assert not any(wrong in m or "XYZ" in m for m in caplog.text.splitlines())
    import time

    slow = _client(db, auth_backoff_s=0.2)
    t0 = time.monotonic()  # before the failure: the next attempt is held until >= t0 + 0.2
    assert slow.get("/rules", headers=auth(wrong)).status_code == 401
    assert slow.get("/rules", headers=auth(READ)).status_code == 200  # held, then served
    assert time.monotonic() - t0 >= 0.2


@pytest.mark.parametrize("token", ["a" * 16, "a" * 64, "read-token-0123456789abcdef",
                                   "ab" * 20, "correcthorsebatterystaple"])
def test_tokens_with_too_little_entropy_are_refused(token):
    with pytest.raises(InputError, match=r"bits of entropy; expected at least 16 characters "
                                         r"and 128 bits"):
        load_tokens(env=f"{token}:read")


def test_random_tokens_pass_the_entropy_check():
    import secrets

    for _ in range(200):
        for t in (secrets.token_hex(16), secrets.token_urlsafe(24)):
            assert load_tokens(env=f"{t}:read")[t].role == "read"


def test_bind_warning_for_non_loopback_without_tls():
    from dunning.api import bind_warning

    for host in ("127.0.0.1", "::1", "[::1]", "localhost"):
        assert bind_warning(host, tls=False) is None
    assert "without TLS" in bind_warning("0.0.0.0", tls=False)
    assert "without TLS" in bind_warning("api.example.org", tls=False)
    assert bind_warning("0.0.0.0", tls=True) is None


def test_the_api_refuses_to_start_without_an_audit_key(db, monkeypatch):
    monkeypatch.delenv("DUNNING_AUDIT_KEY")
    with pytest.raises(InputError, match="no audit key"):
        create_app(ApiConfig(db=db, tokens=load_tokens(env=f"{READ}:read")))


def test_openapi_declares_bearer_auth_and_the_real_errors(db):
    spec = _client(db).get("/openapi.json").json()
    schemes = spec["components"]["securitySchemes"]
    assert any(s == {"type": "http", "scheme": "bearer", **({"description": s["description"]}
               if "description" in s else {})} for s in schemes.values()), schemes
    approve = spec["paths"]["/review/{review_id}/approve"]["post"]
    assert approve["security"]
    for code in ("401", "403", "404", "409", "422"):
        ref = approve["responses"][code]["content"]["application/json"]["schema"]["$ref"]
        assert ref.endswith("/ErrorBody"), (code, ref)
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    one = spec["paths"]["/recommendations/{invoice_id}"]["get"]["responses"]
    assert {"200", "401", "404", "422"} <= set(one)
    assert "security" not in spec["paths"]["/health"]["get"]


def test_review_forged_in_the_table_is_found_by_audit_verify_over_http(api, db, as_of):
    from dunning.ops.audit import AuditLog
    from dunning.ops.review import ReviewItem, ReviewQueue

    with Store(db).connect() as con:
        queue = ReviewQueue(con, AuditLog(con, anchor=db.parent / "audit.anchor"))
        ok_id, forged_id = queue.submit([
            ReviewItem(as_of, "I00000001", "C000001", "agency", ["gdpr.art22_agency_review"]),
            ReviewItem(as_of, "I00000002", "C000002", "agency", ["gdpr.art22_agency_review"])])
    assert api.post(f"/review/{ok_id}/approve", json={"reason": "checked, unreachable"},
                    headers=auth(REVIEW)).status_code == 200
    assert api.get("/audit/verify", headers=auth(READ)).json()["ok"] is True
    with Store(db).connect() as con:
        con.execute("UPDATE ops_review_queue SET status = 'approved', reviewer = 'ceo' "
                    "WHERE review_id = ?", [forged_id])
    report = api.get("/audit/verify", headers=auth(READ)).json()
    assert report["ok"] is False
    assert [p for p in report["problems"] if forged_id in p and "'ceo'" in p]
    assert not [p for p in report["problems"] if ok_id in p]
