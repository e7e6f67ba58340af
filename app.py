"""PhotoSky API: routes only. Each view parses, identifies the caller, calls one service method, shapes the reply."""

from __future__ import annotations

import time
from typing import Any

from chalice.app import Chalice, CloudWatchEvent, CognitoUserPoolAuthorizer, Rate, Request, Response, SQSEvent

from chalicelib import config, deps, logs, web
from chalicelib.photos import schemas as photo_schemas
from chalicelib.photos.events import uploaded_object_keys
from chalicelib.photos.models import DownloadUrls
from chalicelib.users import schemas as user_schemas

app = Chalice(app_name="photosky")
app.register_middleware(web.log_requests, "http")
app.register_middleware(web.allow_spa_origin, "http")

# API Gateway verifies the Cognito ID token before the Lambda runs; the Lambda only reads the claims.
cognito = CognitoUserPoolAuthorizer("PhotoSkyUsers", provider_arns=config.user_pool_arns())


def _writer(request: Request | None) -> str:
    """The caller of a route that writes, once it has spent one of its write-rate tokens: before the body is parsed,
    so malformed writes spend too. Every POST, PATCH and DELETE identifies its caller through here."""
    user_id = web.current_user_id(request)
    deps.write_limiter().spend(user_id)
    return user_id


@app.route("/health", methods=["GET"])
def health() -> dict[str, str]:
    return {"status": "ok"}


# CORS preflight, answered by the Lambda so it knows the SPA's origin (API Gateway's generated mock could not).
# Browsers send it without credentials, so it has no authorizer; it answers only with CORS headers, never data.
@app.route("/users", methods=["OPTIONS"])
@app.route("/users/me", methods=["OPTIONS"])
@app.route("/users/{user_id}", methods=["OPTIONS"])
@app.route("/photos", methods=["OPTIONS"])
@app.route("/photos/{photo_id}", methods=["OPTIONS"])
def preflight(**_path: str) -> Response:
    request = app.current_request
    route = (request.context or {}).get("resourcePath", "") if request else ""
    return web.preflight_response(request, sorted(app.routes.get(route, {})))


@app.route("/users", methods=["POST"], authorizer=cognito)
@web.http_errors
def create_profile() -> Response:
    request = app.current_request
    user_id = _writer(request)
    new = user_schemas.parse_new_profile(web.json_body(request))
    account = deps.user_service().create_profile(user_id, new)
    return Response(body=user_schemas.account_out(account), status_code=201)


@app.route("/users/me", methods=["GET"], authorizer=cognito)
@web.http_errors
def get_my_profile() -> dict[str, Any]:
    account = deps.user_service().get_account(web.current_user_id(app.current_request))
    return user_schemas.account_out(account)


@app.route("/users/me", methods=["PATCH"], authorizer=cognito)
@web.http_errors
def update_my_profile() -> dict[str, Any]:
    request = app.current_request
    user_id = _writer(request)
    changes = user_schemas.parse_profile_changes(web.json_body(request))
    account = deps.user_service().update_profile(user_id, changes)
    return user_schemas.account_out(account)


@app.route("/users/{user_id}", methods=["GET"], authorizer=cognito)
@web.http_errors
def get_profile(user_id: str) -> dict[str, Any]:
    web.current_user_id(app.current_request)
    return user_schemas.public_profile_out(deps.user_service().get_public_profile(user_id))


@app.route("/photos", methods=["POST"], authorizer=cognito)
@web.http_errors
def start_upload() -> Response:
    request = app.current_request
    owner_id = _writer(request)
    new = photo_schemas.parse_new_photo(web.json_body(request), max_upload_bytes=deps.settings().max_upload_bytes)
    photo, upload = deps.photo_service().start_upload(owner_id, new)
    no_urls_yet = DownloadUrls(original=None, large=None, small=None)
    body = {"photo": photo_schemas.photo_out(photo, no_urls_yet), "upload": photo_schemas.upload_out(upload)}
    return Response(body=body, status_code=201)


@app.route("/photos", methods=["GET"], authorizer=cognito)
@web.http_errors
def list_photos() -> dict[str, Any]:
    request = app.current_request
    owner_id = web.current_user_id(request)
    limit, cursor, tag = photo_schemas.parse_list_query(request.query_params if request else None)
    service = deps.photo_service()
    page = service.list(owner_id, limit=limit, cursor=cursor, tag=tag)
    items = [photo_schemas.photo_out(photo, service.download_urls(photo)) for photo in page.items]
    return {"items": items, "next_cursor": page.next_cursor}


@app.route("/photos/{photo_id}", methods=["GET"], authorizer=cognito)
@web.http_errors
def get_photo(photo_id: str) -> dict[str, Any]:
    service = deps.photo_service()
    photo = service.get(web.current_user_id(app.current_request), photo_id)
    return photo_schemas.photo_out(photo, service.download_urls(photo))


@app.route("/photos/{photo_id}", methods=["PATCH"], authorizer=cognito)
@web.http_errors
def update_photo(photo_id: str) -> dict[str, Any]:
    request = app.current_request
    owner_id = _writer(request)
    changes = photo_schemas.parse_photo_changes(web.json_body(request))
    service = deps.photo_service()
    photo = service.update(owner_id, photo_id, changes)
    return photo_schemas.photo_out(photo, service.download_urls(photo))


@app.route("/photos/{photo_id}", methods=["DELETE"], authorizer=cognito)
@web.http_errors
def delete_photo(photo_id: str) -> Response:
    owner_id = _writer(app.current_request)
    deps.photo_service().delete(owner_id, photo_id)
    return Response(body="", status_code=204)


# The upload worker: S3 ObjectCreated on uploads/ -> SQS (retries, dead-letter queue) -> here, one message at a
# time so one bad file never makes a batch retry. Failures raise and SQS redelivers.
@app.on_sqs_message(queue=config.uploads_queue_name(), batch_size=1)
def process_uploads(event: SQSEvent) -> None:
    worker = deps.upload_processor()  # the first call loads the image libraries: only the worker pays for them
    bucket = deps.settings().bucket_name
    for record in event:
        for key in uploaded_object_keys(record.body, bucket=bucket):
            started, outcome = time.perf_counter(), "failed"
            try:
                outcome = str(worker.ingest(key))
            except Exception as e:
                outcome = f"failed: {type(e).__name__}"  # SQS redelivers; the traceback goes to the runtime's log
                raise
            finally:
                logs.emit("upload", object_key=key, outcome=outcome, latency_ms=logs.elapsed_ms(started))


@app.schedule(Rate(15, unit=Rate.MINUTES))
def release_abandoned_uploads(event: CloudWatchEvent) -> None:
    started = time.perf_counter()
    counts = deps.upload_processor().release_abandoned()
    logs.emit("reconcile", outcomes=counts, latency_ms=logs.elapsed_ms(started))
