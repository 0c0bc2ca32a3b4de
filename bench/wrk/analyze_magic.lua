-- POST /api/intelligence/analyze for one magic customer: the same body every time.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-API-Key"] = "qpk_test_sandbox"
wrk.body = '{"customer_id":"test_customer_high_ltv","context":{}}'
