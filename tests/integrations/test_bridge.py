"""The bridge that serves the ASGI dashboard from a WSGI framework's view: a whole request in,
a whole response out, from many threads at once, with the host's verdict in the scope."""

from __future__ import annotations

import json
import threading
from typing import Any

from conveyor.integrations._asgi import Bridge, HostRequest, permissions_from_host
from conveyor.integrations._permissions import SCOPE_KEY


async def echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """An ASGI app answering with what it was given (and two cookies)."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    answer = {
        "path": scope["path"],
        "root_path": scope["root_path"],
        "query": scope["query_string"].decode(),
        "body": body.decode(),
        "headers": {k.decode(): v.decode() for k, v in scope["headers"]},
        "permissions": sorted(scope[SCOPE_KEY]),
    }
    headers = [
        (b"content-type", b"application/json"),
        (b"set-cookie", b"a=1"),
        (b"set-cookie", b"b=2"),
    ]
    await send({"type": "http.response.start", "status": 201, "headers": headers})
    await send(
        {"type": "http.response.body", "body": json.dumps(answer)[:5].encode(), "more_body": True}
    )
    await send({"type": "http.response.body", "body": json.dumps(answer)[5:].encode()})


def request(n: int) -> HostRequest:
    return HostRequest(
        method="post",
        scheme="http",
        root_path="/admin/jobs",
        path=f"/admin/jobs/api/{n}",
        query_string=b"x=1",
        headers=[("Content-Type", "text/plain"), ("Host", "site.example")],
        body=f"body {n}".encode(),
        client=("127.0.0.1", 5000),
        server=("site.example", 80),
        permissions=frozenset({"view"}),
    )


def test_a_request_goes_through_whole_and_its_answer_comes_back_whole() -> None:
    bridge = Bridge(echo)
    try:
        reply = bridge.call(request(1))
    finally:
        bridge.close()
    assert reply.status == 201
    assert [v for k, v in reply.headers if k == "set-cookie"] == ["a=1", "b=2"]
    assert json.loads(reply.body) == {
        "path": "/admin/jobs/api/1",
        "root_path": "/admin/jobs",
        "query": "x=1",
        "body": "body 1",
        "headers": {"content-type": "text/plain", "host": "site.example"},
        "permissions": ["view"],
    }


def test_threads_share_one_loop_and_a_closed_bridge_starts_again() -> None:
    bridge = Bridge(echo)
    answers: dict[int, str] = {}

    def call(n: int) -> None:
        answers[n] = json.loads(bridge.call(request(n)).body)["body"]

    threads = [threading.Thread(target=call, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert answers == {n: f"body {n}" for n in range(20)}
    bridge.close()
    assert bridge.call(request(99)).status == 201
    bridge.close()


def test_the_dashboards_hook_reads_only_the_scope() -> None:
    class Request:
        def __init__(self, scope: dict[str, Any]) -> None:
            self.scope = scope

    assert permissions_from_host(Request({})) == set()
    assert permissions_from_host(Request({SCOPE_KEY: frozenset({"manage", "view"})})) == {
        "manage",
        "view",
    }
