"""PhotoSky's photo routes on AWS Lambda Powertools' APIGatewayRestResolver (validation on, pydantic models)."""

from __future__ import annotations

import time
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.event_handler.openapi.params import Query

from bench.peers.shared import NewPhotoIn, error_status
from chalicelib import deps, errors, logs
from chalicelib.photos import schemas as photo_schemas
from chalicelib.photos.models import DownloadUrls, ListQuery

app = APIGatewayRestResolver(enable_validation=True)


def log_requests(resolver: APIGatewayRestResolver, next_middleware: NextMiddleware) -> Response[Any]:
    started = time.perf_counter()
    response = next_middleware(resolver)
    event = resolver.current_event
    logs.emit(
        "request",
        request_id=event.request_context.request_id,
        user_id=(event.request_context.authorizer.claims or {}).get("sub"),
        method=event.http_method,
        route=event.resource,
        status=response.status_code,
        latency_ms=logs.elapsed_ms(started),
    )
    return response


app.use(middlewares=[log_requests])


@app.exception_handler(errors.DomainError)
def domain_error(error: errors.DomainError) -> Response[Any]:
    status, body, headers = error_status(error)
    return Response(status_code=status, content_type="application/json", body=body, headers=headers)


def current_user_id() -> str:
    sub = (app.current_event.request_context.authorizer.claims or {}).get("sub")
    if not isinstance(sub, str) or not sub:
        raise errors.Unauthenticated("no verified identity on the request")
    return sub


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/photos")
def start_upload(new: NewPhotoIn) -> tuple[dict[str, Any], int]:
    owner_id = current_user_id()
    # app.py spends the caller's write-rate token before it parses the body; here validation runs first (the
    # resolver validates before calling the view), so only an invalid body is counted differently.
    deps.write_limiter().spend(owner_id)
    photo, upload = deps.photo_service().start_upload(owner_id, new.to_domain(deps.settings().max_upload_bytes))
    no_urls_yet = DownloadUrls(original=None, large=None, small=None)
    return {"photo": photo_schemas.photo_out(photo, no_urls_yet), "upload": photo_schemas.upload_out(upload)}, 201


@app.get("/photos")
def list_photos(
    limit: Annotated[int, Query(ge=1, le=100)] = 30,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
    tag: Annotated[str | None, Query(max_length=40)] = None,
) -> dict[str, Any]:
    owner_id = current_user_id()
    service = deps.photo_service()
    query = ListQuery(tag=photo_schemas.normalize_tag(tag, "tag") if tag is not None else None)
    page = service.list(owner_id, limit=limit, cursor=cursor, query=query)
    items = [photo_schemas.photo_out(photo, service.download_urls(photo)) for photo in page.items]
    return {"items": items, "next_cursor": page.next_cursor}


@app.get("/photos/<photo_id>")
def get_photo(photo_id: str) -> dict[str, Any]:
    service = deps.photo_service()
    photo = service.get(current_user_id(), photo_id)
    return photo_schemas.photo_out(photo, service.download_urls(photo))


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
