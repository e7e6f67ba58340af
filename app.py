"""PhotoSky API: routes only. Each view parses, identifies the caller, calls one service method, shapes the reply."""

from __future__ import annotations

import gc

# A cold start makes a few hundred thousand objects (Chalice, botocore and their data) and no garbage worth
# collecting, yet the cyclic collector would walk them about ninety times. It is off while the app loads; at the
# end of this module the survivors are frozen out of every later collection and it is back on (bench/coldstart.py).
gc.disable()

import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chalice.app import (
    Chalice,
    CloudWatchEvent,
    CognitoUserPoolAuthorizer,
    Rate,
    Request,
    Response,
    SQSEvent,
    WebsocketEvent,
)

from chalicelib import clock, config, deps, logs, web
from chalicelib.lazy import lazy_import
from chalicelib.photos import schemas as photo_schemas
from chalicelib.photos.events import uploaded_object_keys
from chalicelib.photos.models import DownloadUrls
from chalicelib.users import schemas as user_schemas

if TYPE_CHECKING:
    from chalicelib.albums import schemas as album_schemas
    from chalicelib.albums.models import Grant
    from chalicelib.realtime import handlers as realtime
else:
    # Imported on first use: a cold start that serves photos never pays for the album code, nor one that serves
    # the REST API for the WebSocket handlers.
    album_schemas = lazy_import("chalicelib.albums.schemas")
    realtime = lazy_import("chalicelib.realtime.handlers")

app = Chalice(app_name="photosky")
# Live status over API Gateway's WebSocket API (issue 16): Chalice still labels its WebSocket support experimental.
app.experimental_feature_flags.update(["WEBSOCKETS"])
app.register_middleware(web.log_requests, "http")
app.register_middleware(web.allow_spa_origin, "http")

# `chalice local --stage local`: serve against the running dev stack, with its token checks (Chalice's local
# authorizer verifies nothing). Imported only there: the dev stack is not packaged into Lambda.
if os.environ.get("AWS_CHALICE_CLI_MODE") and os.environ.get("PHOTOSKY_STAGE") == "local":
    from devstack.chalice_local import attach_to_dev_stack

    attach_to_dev_stack()

# API Gateway verifies the Cognito ID token before the Lambda runs; the Lambda only reads the claims.
cognito = CognitoUserPoolAuthorizer("PhotoSkyUsers", provider_arns=config.user_pool_arns())

# SnapStart (the single stack publishes the API's versions with it, infra/package.py): Lambda initialises once,
# snapshots, and restores every new environment from the snapshot, so what is built before the snapshot costs a
# restored environment nothing. Lambda sets this variable only in that initialisation, and only its runtime has
# snapshot_restore_py; everywhere else clients stay lazy.
if os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE") == "snap-start":
    from snapshot_restore_py import register_before_snapshot  # type: ignore[import-not-found]

    register_before_snapshot(deps.prime)

# A request that purges (emptying the trash, deleting an account) stops taking more work after this long and says
# how much is left: API Gateway gives up on an integration after 29 s.
WORK_BUDGET_SECONDS = 20


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
@app.route("/photos/timeline", methods=["OPTIONS"])
@app.route("/photos/batch", methods=["OPTIONS"])
@app.route("/photos/{photo_id}", methods=["OPTIONS"])
@app.route("/photos/{photo_id}/restore", methods=["OPTIONS"])
@app.route("/trash", methods=["OPTIONS"])
@app.route("/albums", methods=["OPTIONS"])
@app.route("/albums/{album_id}", methods=["OPTIONS"])
@app.route("/albums/{album_id}/photos", methods=["OPTIONS"])
@app.route("/albums/{album_id}/photos/remove", methods=["OPTIONS"])
@app.route("/albums/{album_id}/members", methods=["OPTIONS"])
@app.route("/albums/{album_id}/members/{user_id}", methods=["OPTIONS"])
@app.route("/albums/{album_id}/links", methods=["OPTIONS"])
@app.route("/albums/{album_id}/links/{link_id}", methods=["OPTIONS"])
@app.route("/public/albums/{token}", methods=["OPTIONS"])
@app.route("/public/albums/{token}/unlock", methods=["OPTIONS"])
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


@app.route("/users/me", methods=["DELETE"], authorizer=cognito)
@web.http_errors
def delete_my_account() -> Response:
    user_id = _writer(app.current_request)
    started = time.monotonic()
    finished = deps.account_deletion().delete(
        user_id, out_of_time=lambda: time.monotonic() - started > WORK_BUDGET_SECONDS
    )
    if finished:
        return Response(body="", status_code=204)
    return Response(body={"status": "deleting"}, status_code=202)


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
    limit, cursor, query = photo_schemas.parse_list_query(request.query_params if request else None)
    service = deps.photo_service()
    page = service.list(owner_id, limit=limit, cursor=cursor, query=query)
    items = [photo_schemas.photo_out(photo, service.download_urls(photo)) for photo in page.items]
    return {"items": items, "next_cursor": page.next_cursor}


@app.route("/photos/timeline", methods=["GET"], authorizer=cognito)
@web.http_errors
def photo_timeline() -> dict[str, Any]:
    request = app.current_request
    photo_schemas.parse_no_query(request.query_params if request else None)
    buckets = deps.photo_service().timeline(web.current_user_id(request))
    return {"buckets": [{"month": month, "count": count} for month, count in buckets]}


@app.route("/photos/batch", methods=["POST"], authorizer=cognito)
@web.http_errors
def batch_photos() -> dict[str, Any]:
    request = app.current_request
    owner_id = _writer(request)
    action, photo_ids, tags = photo_schemas.parse_batch(web.json_body(request))
    return photo_schemas.batch_out(deps.photo_service().batch(owner_id, action, photo_ids, tags))


@app.route("/photos/{photo_id}/restore", methods=["POST"], authorizer=cognito)
@web.http_errors
def restore_photo(photo_id: str) -> dict[str, Any]:
    owner_id = _writer(app.current_request)
    service = deps.photo_service()
    photo = service.restore(owner_id, photo_id)
    return photo_schemas.photo_out(photo, service.download_urls(photo))


@app.route("/trash", methods=["GET"], authorizer=cognito)
@web.http_errors
def list_trash() -> dict[str, Any]:
    request = app.current_request
    limit, cursor = photo_schemas.parse_page(request.query_params if request else None)
    service = deps.photo_service()
    page = service.trash(web.current_user_id(request), limit=limit, cursor=cursor)
    items = [photo_schemas.photo_out(photo, service.download_urls(photo)) for photo in page.items]
    return {"items": items, "next_cursor": page.next_cursor}


@app.route("/trash", methods=["DELETE"], authorizer=cognito)
@web.http_errors
def empty_trash() -> Response:
    owner_id = _writer(app.current_request)
    started = time.monotonic()
    remaining = deps.photo_service().empty_trash(
        owner_id, out_of_time=lambda: time.monotonic() - started > WORK_BUDGET_SECONDS
    )
    if remaining:
        return Response(body={"remaining": remaining}, status_code=202)
    return Response(body="", status_code=204)


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
    request = app.current_request
    owner_id = _writer(request)
    permanent = photo_schemas.parse_permanent(request.query_params if request else None)
    deps.photo_service().delete(owner_id, photo_id, permanent=permanent)
    return Response(body="", status_code=204)


# --- albums: every view asks the album service, whose first step is the one authorization check ------------------


def _album_out(grant: Grant, viewer: str) -> dict[str, Any]:
    cover = deps.album_service().cover_urls(grant.album, viewer=viewer)
    return album_schemas.album_out(grant.album, grant.role, cover)


@app.route("/albums", methods=["POST"], authorizer=cognito)
@web.http_errors
def create_album() -> Response:
    request = app.current_request
    owner_id = _writer(request)
    new = album_schemas.parse_new_album(web.json_body(request))
    grant = deps.album_service().create(owner_id, web.current_username(request), new)
    return Response(body=_album_out(grant, owner_id), status_code=201)


@app.route("/albums", methods=["GET"], authorizer=cognito)
@web.http_errors
def list_albums() -> dict[str, Any]:
    request = app.current_request
    user_id = web.current_user_id(request)
    limit, cursor = album_schemas.parse_page_query(request.query_params if request else None)
    page, next_cursor = deps.album_service().list_for(user_id, limit=limit, cursor=cursor)
    return {"items": [_album_out(grant, user_id) for grant in page], "next_cursor": next_cursor}


@app.route("/albums/{album_id}", methods=["GET"], authorizer=cognito)
@web.http_errors
def get_album(album_id: str) -> dict[str, Any]:
    user_id = web.current_user_id(app.current_request)
    return _album_out(deps.album_service().get(user_id, album_id), user_id)


@app.route("/albums/{album_id}", methods=["PATCH"], authorizer=cognito)
@web.http_errors
def update_album(album_id: str) -> dict[str, Any]:
    request = app.current_request
    user_id = _writer(request)
    changes = album_schemas.parse_album_changes(web.json_body(request))
    grant = deps.album_service().update(user_id, album_id, changes)
    return _album_out(grant, user_id)


@app.route("/albums/{album_id}", methods=["DELETE"], authorizer=cognito)
@web.http_errors
def delete_album(album_id: str) -> Response:
    deps.album_service().delete(_writer(app.current_request), album_id)
    return Response(body="", status_code=204)


@app.route("/albums/{album_id}/photos", methods=["POST"], authorizer=cognito)
@web.http_errors
def add_album_photos(album_id: str) -> dict[str, Any]:
    request = app.current_request
    user_id = _writer(request)
    photo_ids = album_schemas.parse_photo_ids(web.json_body(request))
    return album_schemas.results_out(deps.album_service().add_photos(user_id, album_id, photo_ids))


@app.route("/albums/{album_id}/photos/remove", methods=["POST"], authorizer=cognito)
@web.http_errors
def remove_album_photos(album_id: str) -> dict[str, Any]:
    request = app.current_request
    user_id = _writer(request)
    photo_ids = album_schemas.parse_photo_ids(web.json_body(request))
    return album_schemas.results_out(deps.album_service().remove_photos(user_id, album_id, photo_ids))


@app.route("/albums/{album_id}/photos", methods=["GET"], authorizer=cognito)
@web.http_errors
def list_album_photos(album_id: str) -> dict[str, Any]:
    request = app.current_request
    user_id = web.current_user_id(request)
    limit, cursor = album_schemas.parse_page_query(request.query_params if request else None)
    service = deps.album_service()
    page = service.member_photos(user_id, album_id, limit=limit, cursor=cursor)
    items = [
        album_schemas.album_photo_out(
            entry, photo, service.photo_urls(photo, viewer=user_id, original=True), caller=user_id
        )
        for entry, photo in page.items
    ]
    return {"items": items, "next_cursor": page.next_cursor}


@app.route("/albums/{album_id}/members", methods=["POST"], authorizer=cognito)
@web.http_errors
def add_album_member(album_id: str) -> Response:
    request = app.current_request
    user_id = _writer(request)
    username, role = album_schemas.parse_new_member(web.json_body(request))
    member = deps.album_service().add_member(user_id, album_id, username, role)
    return Response(body=album_schemas.member_out(member), status_code=201)


@app.route("/albums/{album_id}/members", methods=["GET"], authorizer=cognito)
@web.http_errors
def list_album_members(album_id: str) -> dict[str, Any]:
    members = deps.album_service().members(web.current_user_id(app.current_request), album_id)
    return {"items": [album_schemas.member_out(member) for member in members]}


@app.route("/albums/{album_id}/members/{user_id}", methods=["PATCH"], authorizer=cognito)
@web.http_errors
def change_album_member(album_id: str, user_id: str) -> dict[str, Any]:
    request = app.current_request
    caller = _writer(request)
    role = album_schemas.parse_role_change(web.json_body(request))
    return album_schemas.member_out(deps.album_service().change_role(caller, album_id, user_id, role))


@app.route("/albums/{album_id}/members/{user_id}", methods=["DELETE"], authorizer=cognito)
@web.http_errors
def remove_album_member(album_id: str, user_id: str) -> Response:
    deps.album_service().remove_member(_writer(app.current_request), album_id, user_id)
    return Response(body="", status_code=204)


@app.route("/albums/{album_id}/links", methods=["POST"], authorizer=cognito)
@web.http_errors
def create_share_link(album_id: str) -> Response:
    request = app.current_request
    user_id = _writer(request)
    new = album_schemas.parse_new_link(web.json_body(request), now=clock.now())
    link, token = deps.album_service().create_link(user_id, album_id, new)
    return Response(body=album_schemas.link_out(link, token), status_code=201)


@app.route("/albums/{album_id}/links", methods=["GET"], authorizer=cognito)
@web.http_errors
def list_share_links(album_id: str) -> dict[str, Any]:
    found = deps.album_service().links(web.current_user_id(app.current_request), album_id)
    return {"items": [album_schemas.link_out(link) for link in found]}


@app.route("/albums/{album_id}/links/{link_id}", methods=["DELETE"], authorizer=cognito)
@web.http_errors
def revoke_share_link(album_id: str, link_id: str) -> Response:
    deps.album_service().revoke_link(_writer(app.current_request), album_id, link_id)
    return Response(body="", status_code=204)


# Public: no authorizer. The token in the path is the credential (256 random bits, only its hash stored); in AWS
# these two routes have their own, lower throttling (infra/package.py).
@app.route("/public/albums/{token}", methods=["GET"])
@web.http_errors
def public_album(token: str) -> dict[str, Any]:
    request = app.current_request
    limit, cursor = album_schemas.parse_page_query(request.query_params if request else None)
    service = deps.album_service()
    access = web.header(request, "X-Link-Access")
    grant, page = service.public_album(token, access, limit=limit, cursor=cursor)
    original = bool(grant.link and grant.link.allow_download)
    items = [
        album_schemas.public_photo_out(photo, service.photo_urls(photo, viewer=None, original=original))
        for _, photo in page.items
    ]
    return {
        "album": album_schemas.public_album_out(grant.album, service.cover_urls(grant.album, viewer=None)),
        "allow_download": original,
        "items": items,
        "next_cursor": page.next_cursor,
    }


@app.route("/public/albums/{token}/unlock", methods=["POST"])
@web.http_errors
def unlock_public_album(token: str) -> dict[str, Any]:
    password = album_schemas.parse_unlock(web.json_body(app.current_request))
    access_token, expires_at = deps.album_service().unlock(token, password)
    return {"access_token": access_token, "expires_at": expires_at}


# --- live status: API Gateway's WebSocket API (chalicelib/realtime). Chalice names the functions websocket_connect,
# websocket_disconnect and websocket_message whatever these are called. ---------------------------------------------


@app.on_ws_connect()
def websocket_connect(event: WebsocketEvent) -> dict[str, Any]:
    # `<ws_url>?token=<ID token>`: a browser cannot set headers on a WebSocket. A 401 refuses the handshake.
    query = event.to_dict().get("queryStringParameters") or {}
    return realtime.connect(event.connection_id, query.get("token"))


@app.on_ws_disconnect()
def websocket_disconnect(event: WebsocketEvent) -> dict[str, Any]:
    return realtime.disconnect(event.connection_id)


@app.on_ws_message()
def websocket_message(event: WebsocketEvent) -> dict[str, Any]:
    return realtime.message(event.connection_id, event.to_dict().get("body"))


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


# Every 5 minutes: a run lasts at most 270 s (its budgets, below), so runs never overlap, and a backlog of stale
# uploads or of photos to purge drains three times as fast as it did every 15 (docs/SCALE.md).
@app.schedule(Rate(5, unit=Rate.MINUTES))
def release_abandoned_uploads(event: CloudWatchEvent) -> None:
    run_started = time.perf_counter()
    counts = deps.upload_processor().release_abandoned()
    logs.emit("reconcile", outcomes=counts, latency_ms=logs.elapsed_ms(run_started))
    # The other jobs follow in what is left of the run: each stops at half the reconciler's budget, and all of them
    # by one and a half times it from the start (270 s of the function's 300 s); the next run carries on.
    budget = deps.settings().reconcile_budget_seconds

    def out_of_time_after(job_started: float) -> Callable[[], bool]:
        def out_of_time() -> bool:
            now = time.perf_counter()
            return now - job_started > budget / 2 or now - run_started > budget * 1.5

        return out_of_time

    # Album deletions and departures whose request was cut short.
    started = time.perf_counter()
    finished = deps.album_service().finish_left_behind(deadline=out_of_time_after(started))
    logs.emit("album_cleanup", outcomes=finished, latency_ms=logs.elapsed_ms(started))
    # Photos whose time in the trash is up.
    started = time.perf_counter()
    purged = deps.photo_service().purge_expired(out_of_time=out_of_time_after(started))
    logs.emit("trash_purge", outcomes=purged, latency_ms=logs.elapsed_ms(started))
    # Account deletions a request did not finish.
    started = time.perf_counter()
    accounts = deps.account_deletion().finish_left_behind(out_of_time=out_of_time_after(started))
    logs.emit("account_deletion", outcomes=accounts, latency_ms=logs.elapsed_ms(started))


# Everything loaded so far lives as long as the container: keep it out of every collection from now on.
gc.freeze()
gc.enable()
