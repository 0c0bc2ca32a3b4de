"""The floor: a bare Flask app answering every POST with a fixed JSON body, served by the
sandbox's own server (`sandbox.server.serve`) with the sandbox's default server settings.

Whatever the sandbox does per request (auth, rate-limit bookkeeping, validation, faults,
journal, personas, access log) is the gap between this and the sandbox on the same load.

    python bench/floor_app.py PORT
"""

from __future__ import annotations

import sys

from flask import Flask, Response

from sandbox.config import Settings
from sandbox.server import serve

# As long as the sandbox's analyze answer for test_customer_high_ltv (849 bytes).
BODY = (
    b'{"customer_id":"test_customer_high_ltv","archetype":{"id":"arch_premium_deal_hunter",'
    + b'"level":"L2","padding":"'
    + b"x" * 730
    + b'"}'
)


def create_floor_app() -> Flask:
    app = Flask("floor")

    @app.post("/<path:anything>")
    def fixed(anything: str) -> Response:
        return Response(BODY, mimetype="application/json")

    return app


def main() -> None:
    port = int(sys.argv[1])
    serve(create_floor_app(), Settings(port=port, log_level="warning", access_log=False))


if __name__ == "__main__":
    main()
