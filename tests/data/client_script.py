"""A client as an integrator would script it, run by `quimbi-contract client` in the
tests: `python client_script.py MODE`. `robust` survives every documented answer; each
other mode has one classic fragility. Standard library only, so each run starts fast."""

from __future__ import annotations

import email.utils
import json
import os
import sys
import urllib.error
import urllib.request

BASE, KEY = os.environ["QUIMBI_BASE_URL"], os.environ["QUIMBI_API_KEY"]


def call(path: str, body: dict) -> tuple[int, dict, dict]:
    request = urllib.request.Request(
        BASE + path,
        data=json.dumps(body).encode(),
        headers={"X-API-Key": KEY, "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, dict(response.headers), json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read() or b"{}")


def robust() -> None:
    # No retry: a script that must finish in seconds falls back instead of waiting out a
    # Retry-After (retrying sooner would break the contract's retry discipline).
    status, _, body = call("/api/intelligence/analyze", {"customer_id": "c1"})
    if status == 200:
        advice = (body.get("communication_guidance") or ["no advice"])[0]
        print(advice, body["predictions"]["churn_risk_level"])
    else:
        print("fallback:", body.get("error", {}).get("code"))
    status, _, body = call(
        "/api/generation/actions",
        {"customer_profile": {"customer_id": "c1"}, "scenario": "retention_risk"},
    )
    if status == 200:
        for action in body["actions"]:
            impact = action.get("estimated_impact") or {}
            print(action["action"], impact.get("retention_probability", "n/a"))


def index_empty() -> None:
    _, _, body = call("/api/intelligence/analyze", {"customer_id": "c1"})
    print(body["communication_guidance"][0])


def optional_field() -> None:
    _, _, body = call(
        "/api/generation/actions",
        {"customer_profile": {"customer_id": "c1"}, "scenario": "retention_risk"},
    )
    print(body["actions"][0]["estimated_impact"]["retention_probability"])


def assume_200() -> None:
    _, _, body = call("/api/intelligence/analyze", {"customer_id": "c1"})
    print(body["predictions"]["churn_risk_level"])


def retry_after_as_date() -> None:
    status, headers, body = call("/api/intelligence/analyze", {"customer_id": "c1"})
    if status in (429, 503):  # reads Retry-After as an HTTP date: the contract says seconds
        email.utils.parsedate_to_datetime(headers["Retry-After"])
    print(status)


def off_contract() -> None:
    call("/api/intelligence/analyze", {"customer_id": 5})


if __name__ == "__main__":
    globals()[sys.argv[1]]()
