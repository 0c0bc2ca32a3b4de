-- POST /api/generation/message with the contract's example body.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-API-Key"] = "qpk_test_sandbox"
wrk.body = '{"customer_profile":{"customer_id":"test_customer_high_ltv","archetype":' ..
  '{"segments":{"purchase_value":"premium","shopping_maturity":"established"}},' ..
  '"behavioral_metrics":{"lifetime_value":892.5,"total_orders":12}},"context":' ..
  '{"goal":"resolve_support_issue","channel":"email","conversation":[{"from":"customer",' ..
  '"content":"My fat quarter bundle arrived with two pieces missing."}],' ..
  '"constraints":{"tone":"empathetic","length":"medium"}}}'
