"""Generated answers (sandbox.generated): every case keeps the contract, cases explore
what the contract allows, and a case identity gives the same bytes in any process."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import pytest

from sandbox.generated import Answer, AnswerGenerator, CaseId
from sandbox.spec import load_contract
from tests.conftest import ROOT

CONTRACT = load_contract()
GENERATOR = AnswerGenerator(CONTRACT)
CASES_PER_STATUS = 12
OPERATION_STATUSES = [
    (operation_id, status)
    for operation_id in CONTRACT.operations
    for status in GENERATOR.statuses(operation_id)
]


def documented_headers(operation_id: str, status: int) -> dict[str, dict]:
    response = GENERATOR._response(operation_id, status)
    found = {}
    for name, header in response.get("headers", {}).items():
        found[name] = CONTRACT.resolve(header["$ref"]) if "$ref" in header else header
    return found


def test_every_operation_documents_its_error_statuses():
    assert len(CONTRACT.operations) == 9
    for operation_id in CONTRACT.operations:
        statuses = GENERATOR.statuses(operation_id)
        assert statuses[0] == 200 and {401, 429, 500, 503} <= set(statuses), operation_id


@pytest.mark.parametrize(("operation_id", "status"), OPERATION_STATUSES)
def test_every_case_keeps_the_contract(operation_id, status):
    headers = documented_headers(operation_id, status)
    codes = GENERATOR.error_codes(operation_id, status)
    for case in range(CASES_PER_STATUS):
        answer = GENERATOR.case(CaseId(0, operation_id, case, status))
        assert answer.status == status
        body = json.loads(answer.encoded())
        assert CONTRACT.validate_response(operation_id, status, body) == []
        for name, header in headers.items():
            if header.get("required"):
                assert name in answer.headers, (name, answer)
        for name, value in answer.headers.items():
            assert name in headers
            assert int(value) >= headers[name]["schema"].get("minimum", 0)
        if status >= 400:
            assert codes and body["error"]["code"] in codes


def test_retry_after_on_429_and_503_and_rate_limit_headers_on_200():
    for operation_id in CONTRACT.operations:
        for status in (429, 503):
            answer = GENERATOR.case(CaseId(1, operation_id, 0, status))
            assert int(answer.headers["Retry-After"]) >= 0
        ok = GENERATOR.case(CaseId(1, operation_id, 0, 200))
        assert {"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"} <= set(
            ok.headers
        )


def test_unrestricted_cases_reach_every_documented_status():
    seen = {GENERATOR.case(CaseId(0, "getMyPosition", n)).status for n in range(120)}
    assert seen == set(GENERATOR.statuses("getMyPosition"))


def _walk(value, path=()):
    yield path, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, (*path, key))
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item, (*path, "[]"))


def test_cases_explore_what_the_contract_allows():
    declared = set(CONTRACT.resolve("#/components/schemas/ChurnPrediction")["properties"])
    levels, empty_factors, extra, non_ascii, zero, long_text = set(), 0, 0, 0, 0, 0
    absent_impact = present_impact = 0
    for n in range(150):
        body = GENERATOR.case(CaseId(0, "predictChurn", n, 200)).body
        levels.add(body["risk_level"])
        empty_factors += body["factors"] == []
        extra += bool(set(body) - declared)
        for _, value in _walk(body):
            non_ascii += isinstance(value, str) and not value.isascii()
            zero += type(value) in (int, float) and value == 0
            long_text += isinstance(value, str) and len(value) >= 20
        actions = GENERATOR.case(CaseId(0, "recommendActions", n, 200)).body["actions"]
        absent_impact += sum("estimated_impact" not in a for a in actions)
        present_impact += sum("estimated_impact" in a for a in actions)
    assert levels == {"low", "medium", "high"}  # every enum value
    assert empty_factors > 0  # empty arrays
    assert 0 < extra < 150  # extra properties (allowed here), not always
    assert non_ascii > 0 and zero > 0 and long_text > 0
    assert absent_impact > 0 and present_impact > 0  # optional fields absent and present


_DIGEST_SCRIPT = """
import hashlib, sys
from sandbox.generated import AnswerGenerator, CaseId
from sandbox.spec import load_contract
generator = AnswerGenerator(load_contract())
digest = hashlib.sha256()
for operation_id in sorted(generator.contract.operations):
    for case in range(6):
        for status in (None, 200, 429):
            answer = generator.case(CaseId(7, operation_id, case, status))
            digest.update(repr((answer.status, sorted(answer.headers.items()))).encode())
            digest.update(answer.encoded())
print(digest.hexdigest())
"""


def test_same_identity_same_bytes_in_other_processes():
    digests = set()
    for hash_seed in ("1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        result = subprocess.run(
            [sys.executable, "-c", _DIGEST_SCRIPT],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=env,
            timeout=120,
            check=True,
        )
        digests.add(result.stdout.strip())
    # And this process, which has imported far more (Hypothesis harvests constants
    # from local modules; cases must not see them).
    here = hashlib.sha256()
    for operation_id in sorted(CONTRACT.operations):
        for case in range(6):
            for status in (None, 200, 429):
                answer = GENERATOR.case(CaseId(7, operation_id, case, status))
                here.update(repr((answer.status, sorted(answer.headers.items()))).encode())
                here.update(answer.encoded())
    digests.add(here.hexdigest())
    assert len(digests) == 1


def test_identities_differ():
    first = GENERATOR.case(CaseId(0, "analyzeCustomer", 1, 200)).encoded()
    assert first != GENERATOR.case(CaseId(0, "analyzeCustomer", 2, 200)).encoded()
    assert first != GENERATOR.case(CaseId(1, "analyzeCustomer", 1, 200)).encoded()


def test_undocumented_status_and_label():
    with pytest.raises(ValueError, match="not documented"):
        GENERATOR.strategy("getMyPosition", 404)
    assert CaseId(3, "predictLtv", 9, 503).label() == (
        "seed=3; operation=predictLtv; case=9; status=503"
    )
    assert Answer.from_dict({"status": 200, "body": []}) == Answer(200, {}, [])
