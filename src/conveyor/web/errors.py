"""How refusals and Conveyor's errors become HTTP answers (JSON with an `error` message)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute, Match

from conveyor.errors import (
    ConveyorError,
    DuplicateJobId,
    JobStateConflict,
    NotFound,
    PermissionHookError,
    QueueFull,
    StoreUnavailable,
    WorkerStateConflict,
)

log = logging.getLogger("conveyor.web")

#: Answers an error on a dashboard page with an HTML page, or None when the request is not
#: for a page (then it gets the JSON answer).
PageErrors = Callable[[Request, int, str], Awaitable[Response | None]]


class Refused(Exception):
    """A request the API answers with `status` and a message (401, 403, 422…)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class BadForm(Refused):
    """A form no page of the dashboard sends as it is (tampered with, or naming jobs that are
    gone): answered with an error page of its status, not a notice on the page it came from."""


def status_for(error: ConveyorError) -> int:
    """The HTTP status that says what kind of Conveyor error this is."""
    if isinstance(error, NotFound):
        return 404
    if isinstance(error, JobStateConflict | DuplicateJobId | WorkerStateConflict):
        return 409
    if isinstance(error, QueueFull):
        return 429
    if isinstance(error, StoreUnavailable):
        return 503
    if isinstance(error, PermissionHookError):
        return 500  # the host application's hook is wrong, not the request: never access
    # Everything else is a request Conveyor refused as invalid (an unknown job name, a bad
    # setting or filter, arguments it cannot store): the caller must change it.
    return 422


def error_response(
    status: int,
    message: str,
    detail: object = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """The JSON body every refusal has."""
    body: dict[str, object] = {"error": message}
    if detail is not None:
        body["detail"] = jsonable_encoder(detail)
    sent = dict(headers or {})
    if status == 401:
        sent.setdefault("WWW-Authenticate", "Bearer")
    return JSONResponse(body, status_code=status, headers=sent)


def install(api: FastAPI, pages: PageErrors | None = None) -> None:
    """Register the handlers that turn errors into JSON answers; `pages` answers the errors
    of requests for dashboard pages (an unknown path, a wrong method) with an HTML page."""

    async def refused(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Refused)
        return error_response(exc.status, exc.message)

    async def conveyor_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ConveyorError)
        status = status_for(exc)
        if status == 500:  # the server's own fault: the message is for its operator
            log.error("conveyor.web: %s", exc)
            return error_response(500, "the dashboard is misconfigured: see the server's log")
        return error_response(status, str(exc))

    async def invalid(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        problems = [
            {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": e.get("type")}
            for e in exc.errors()
        ]
        summary = "; ".join(
            f"{'.'.join(str(part) for part in p['loc'])}: {p['msg']}" for p in problems
        )
        return error_response(422, f"invalid request: {summary}", problems)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        headers = dict(exc.headers or {})
        if exc.status_code == 400:  # a body FastAPI could not decode: malformed input
            return error_response(422, f"invalid request: {exc.detail}")
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(sorted(_allowed_methods(api, request)))
        page = await pages(request, exc.status_code, str(exc.detail)) if pages else None
        if page is not None:
            page.headers.update(headers)
            return page
        return error_response(exc.status_code, str(exc.detail), headers=headers)

    api.add_exception_handler(Refused, refused)
    api.add_exception_handler(ConveyorError, conveyor_error)
    api.add_exception_handler(RequestValidationError, invalid)
    api.add_exception_handler(HTTPException, http_error)


def _allowed_methods(api: FastAPI, request: Request) -> set[str]:
    """Every method some route answers on this path (one path may have several routes)."""
    allowed: set[str] = set()
    for route in api.router.routes:
        if isinstance(route, BaseRoute):
            match, _ = route.matches(request.scope)
            methods = getattr(route, "methods", None)
            if match is not Match.NONE and methods:
                allowed |= set(methods)
    return allowed
