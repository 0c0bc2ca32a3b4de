"""sandbox.proxy.path.Served: the proxy's request reads as werkzeug's Request would."""

from __future__ import annotations

import pytest
from werkzeug import Request

from sandbox.netfaults import BODY_KEY
from sandbox.proxy.path import Served


@pytest.mark.parametrize(
    "path_info",
    [
        "/api/intelligence/analyze",
        "//api//x",
        "",
        "/api/customers/" + "café".encode().decode("latin-1"),  # UTF-8 bytes, PEP 3333
        "/api/customers/\xff\xfe",  # bytes that are not UTF-8
    ],
)
@pytest.mark.parametrize("method", ["POST", "get"])
def test_method_and_path_read_as_werkzeug_reads_them(path_info, method):
    environ = {"REQUEST_METHOD": method, "PATH_INFO": path_info, BODY_KEY: b"{}"}
    served, werkzeug = Served(environ, 1000), Request(environ)
    assert (served.method, served.path) == (werkzeug.method, werkzeug.path)
    assert served.environ is environ and served.max_content_length == 1000
    assert served.get_data() == b"{}"
