"""PhotoSky's photo routes on FastAPI behind Mangum (pydantic models; `def` views, as FastAPI advises for
blocking clients such as boto3)."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse
from mangum import Mangum

from bench.peers.shared import NewPhotoIn, error_status
from chalicelib import deps, errors, logs
from chalicelib.photos import schemas as photo_schemas
from chalicelib.photos.models import DownloadUrls, ListQuery

app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)


class LogRequests:
    """A pure ASGI middleware (lighter than @app.middleware("http")): one log line per request."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.inner(scope, receive, send)
            return
        started = time.perf_counter()
        status: list[int] = []

        async def sending(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            await send(message)

        await self.inner(scope, receive, sending)
        event = scope.get("aws.event", {})
        context = event.get("requestContext", {})
        logs.emit(
            "request",
            request_id=context.get("requestId"),
            user_id=((context.get("authorizer") or {}).get("claims") or {}).get("sub"),
            method=scope["method"],
            route=context.get("resourcePath"),
            status=status[0] if status else None,
            latency_ms=logs.elapsed_ms(started),
        )


app.add_middleware(LogRequests)


@app.exception_handler(errors.DomainError)
def domain_error(request: Request, error: errors.DomainError) -> JSONResponse:
    status, body, headers = error_status(error)
    return JSONResponse(status_code=status, content=body, headers=headers)


def current_user_id(request: Request) -> str:
    claims = ((request.scope.get("aws.event", {}).get("requestContext") or {}).get("authorizer") or {}).get("claims")
    sub = (claims or {}).get("sub")
    if not isinstance(sub, str) or not sub:
        raise errors.Unauthenticated("no verified identity on the request")
    return sub


UserId = Annotated[str, Depends(current_user_id)]


def writer_id(owner_id: UserId) -> str:
    """The caller of a write route, once one of their write-rate tokens is spent (app.py spends it first thing).

    A dependency, so that, as in app.py, the token is spent before the body is validated: FastAPI runs
    dependencies before it reports the request's validation errors.
    """
    deps.write_limiter().spend(owner_id)
    return owner_id


WriterId = Annotated[str, Depends(writer_id)]


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/photos", status_code=201)
def start_upload(new: NewPhotoIn, owner_id: WriterId) -> dict[str, Any]:
    photo, upload = deps.photo_service().start_upload(owner_id, new.to_domain(deps.settings().max_upload_bytes))
    no_urls_yet = DownloadUrls(original=None, large=None, small=None)
    return {"photo": photo_schemas.photo_out(photo, no_urls_yet), "upload": photo_schemas.upload_out(upload)}


@app.get("/photos")
def list_photos(
    owner_id: UserId,
    limit: Annotated[int, Query(ge=1, le=100)] = 30,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
    tag: Annotated[str | None, Query(max_length=40)] = None,
) -> dict[str, Any]:
    service = deps.photo_service()
    query = ListQuery(tag=photo_schemas.normalize_tag(tag, "tag") if tag is not None else None)
    page = service.list(owner_id, limit=limit, cursor=cursor, query=query)
    items = [photo_schemas.photo_out(photo, service.download_urls(photo)) for photo in page.items]
    return {"items": items, "next_cursor": page.next_cursor}


@app.get("/photos/{photo_id}")
def get_photo(photo_id: str, owner_id: UserId) -> dict[str, Any]:
    service = deps.photo_service()
    photo = service.get(owner_id, photo_id)
    return photo_schemas.photo_out(photo, service.download_urls(photo))


handler = Mangum(app, lifespan="off")
