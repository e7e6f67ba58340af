"""The workload at the target: 10 M users, 5,000 uploads/s and 50,000 API requests/s at peak.

Every assumption is stated here, with why; the simulation samples it with a seed, so a report is reproducible.

- **Who is active** (users ranked by activity, rank r chosen with weight r^-0.7 over 10 M): the top 1% of users make
  about a quarter of the requests, and the busiest one about 0.24% of them (120 API requests/s at the target: an
  automated client, far beyond a person, so a hot user is in the sample). A power law, not a lognormal, because a
  power law's top rank is what heats one partition, and 0.7 keeps the head heavy without one user being the service.
- **Library sizes** lognormal, median 2,000 photos, sigma 1.5 (a few with 100,000+, most a few thousand): a listing
  reads a full page unless the library is smaller. **Album sizes** lognormal, median 40, sigma 1.2.
- **Albums** viewed with Zipf exponent 0.9 over 20 M albums (a few family albums are everyone's); **share links**
  viewed with exponent 1.1 over 5 M links, and on top a viral link taking 30% of all link views. The viral link is
  of the hottest album (album 0), whose owner is user 0, the busiest user: the worst case, on purpose.
- **Uploads** (5,000/s, on top of the 50,000 API requests): each is POST /photos, the worker's processing of the
  object and its push to the owner's connections; 2% are abandoned and released by the reconciler.
- **Writes per user** never exceed the app's write-rate limit (chalicelib.config.Settings: write_rate_limit per
  write_rate_window_seconds, read at run time): a write sampled beyond it is refused (API answers 429) and not
  simulated. Sustained, that is 5 writes/s per user; a whole window's tokens spent in one second is bounded
  separately (simulate.burst_ceiling, in the report).
- **Public link routes** are throttled by API Gateway (infra.package.PUBLIC_ROUTE_THROTTLING, prod, read at run time):
  their share of the mix is cut to that ceiling, the rest refused at the gateway.
- **Album pages keep their photos** (chalicelib/albums/shown_photos.py: a photo read for an album page is kept for
  TTL_SECONDS in the API environment that read it). So an album's views put at most one page of photo reads per
  environment per window on the owners' partitions, however many views there are: with views spread evenly over
  API_ENVIRONMENTS environments, an album viewed v times a second costs (E / TTL) * (1 - e^(-v * TTL / E)) page
  reads a second. E = 540, the API's environments at the target's peak (docs/SCALE.md: 50,000 requests/s at ~10 ms
  each, Little's law). The viewer's own photos are read fresh; the simulation counts every page as someone else's
  (an album's owner viewing it reads it all fresh, a small share of its views).
- **Scheduled job** (app.py's release_abandoned_uploads, on its schedule): its sweep queries every shard of each
  swept index; the simulation puts a run in second 0, at the peak (worst case). The items it settles (abandoned
  uploads, photos whose trash time is up) are simulated at the rate they accrue: 2% of uploads, and every photo
  trashed 30 days earlier (the trash rate).
"""

from __future__ import annotations

from dataclasses import dataclass

TARGET_USERS = 10_000_000
UPLOADS_PER_SECOND = 5_000
API_REQUESTS_PER_SECOND = 50_000
ACTIVITY_ZIPF = 0.7
LIBRARY_MEDIAN, LIBRARY_SIGMA = 2_000, 1.5
ALBUMS, ALBUM_ZIPF = 20_000_000, 0.9
ALBUM_MEDIAN, ALBUM_SIGMA = 40, 1.2
LINKS, LINK_ZIPF = 5_000_000, 1.1
VIRAL_LINK_SHARE = 0.3
ABANDONED_UPLOAD_SHARE = 0.02
PUBLIC_STAGE = "prod"
API_ENVIRONMENTS = 540
# Operations showing an album page (their photos come through the album pages' keep, above).
ALBUM_PAGES = frozenset({"albums.photos.list", "public.view"})

# The API mix: each operation's share of the 50,000 requests/s (sums to 1). Reads dominate, as in any photo
# library: browsing (library, a photo, timeline, albums) is most of it; edits a few percent.
API_MIX: dict[str, float] = {
    "photos.list": 0.20,
    "photos.get": 0.15,
    "photos.timeline": 0.05,
    "photos.list_favourites": 0.03,
    "photos.list_tag": 0.02,
    "trash.list": 0.01,
    "photos.edit": 0.03,
    "photos.batch": 0.005,
    "photos.delete": 0.02,
    "photos.restore": 0.003,
    "photos.delete_permanent": 0.003,
    "trash.empty": 0.001,
    "users.me": 0.05,
    "users.update": 0.002,
    "users.get": 0.01,
    "users.create": 0.0005,
    "users.delete": 0.0001,
    "albums.list": 0.06,
    "albums.get": 0.03,
    "albums.photos.list": 0.08,
    "albums.members.list": 0.01,
    "albums.create": 0.003,
    "albums.update": 0.002,
    "albums.photos.add": 0.01,
    "albums.photos.remove": 0.002,
    "albums.members.add": 0.003,
    "albums.members.change": 0.0005,
    "albums.members.remove": 0.001,
    "albums.delete": 0.001,
    "albums.links.create": 0.002,
    "albums.links.list": 0.003,
    "albums.links.revoke": 0.0005,
    "public.view": 0.02,
    "public.unlock": 0.001,
    "ws.connect": 0.03,
    "ws.disconnect": 0.03,
    "ws.message": 0.1,
}
API_MIX["photos.list"] += 1.0 - sum(API_MIX.values())  # the library listing takes what the rest leaves

# Operations simulated as one: an upload is its POST /photos and the worker's processing of the same photo, by the
# same user (the worker's writes follow the user's capped uploads).
COMPOSITES: dict[str, tuple[str, ...]] = {"upload": ("upload.start", "upload.worker")}

# Operations that spend one of the caller's write-rate tokens (every POST, PATCH and DELETE of a signed-in user).
WRITES = frozenset(
    {
        "upload",
        "upload.start",
        "photos.edit",
        "photos.batch",
        "photos.delete",
        "photos.restore",
        "photos.delete_permanent",
        "trash.empty",
        "users.update",
        "users.create",
        "users.delete",
        "albums.create",
        "albums.update",
        "albums.photos.add",
        "albums.photos.remove",
        "albums.members.add",
        "albums.members.change",
        "albums.members.remove",
        "albums.delete",
        "albums.links.create",
        "albums.links.revoke",
    }
)

# Operations that make a new album: its id is fresh, not a popular one.
CREATES = frozenset({"albums.create"})

# In operations on an album, which user symbol is the album's owner (whose partition holds its photos); the other
# users are independent draws. (n: the trace's numbering, the actor first.)
ALBUM_OWNER: dict[str, int] = {"public.view": 0, "albums.photos.list": 1, "albums.list": 1, "albums.get": 1}


@dataclass(frozen=True)
class Route:
    method: str
    path: str


# What each operation exercises: every route of app.py and every event handler is here or in EXCLUDED.
COVERS: dict[str, tuple[Route | str, ...]] = {
    "upload.start": (Route("POST", "/photos"),),
    "upload.worker": ("process_uploads",),
    "photos.list": (Route("GET", "/photos"),),
    "photos.list_favourites": (Route("GET", "/photos"),),
    "photos.list_tag": (Route("GET", "/photos"),),
    "photos.get": (Route("GET", "/photos/{photo_id}"),),
    "photos.timeline": (Route("GET", "/photos/timeline"),),
    "trash.list": (Route("GET", "/trash"),),
    "photos.edit": (Route("PATCH", "/photos/{photo_id}"),),
    "photos.batch": (Route("POST", "/photos/batch"),),
    "photos.delete": (Route("DELETE", "/photos/{photo_id}"),),
    "photos.restore": (Route("POST", "/photos/{photo_id}/restore"),),
    "photos.delete_permanent": (Route("DELETE", "/photos/{photo_id}"),),
    "trash.empty": (Route("DELETE", "/trash"),),
    "users.me": (Route("GET", "/users/me"),),
    "users.update": (Route("PATCH", "/users/me"),),
    "users.get": (Route("GET", "/users/{user_id}"),),
    "users.create": (Route("POST", "/users"),),
    "users.delete": (Route("DELETE", "/users/me"),),
    "albums.list": (Route("GET", "/albums"),),
    "albums.get": (Route("GET", "/albums/{album_id}"),),
    "albums.photos.list": (Route("GET", "/albums/{album_id}/photos"),),
    "albums.members.list": (Route("GET", "/albums/{album_id}/members"),),
    "albums.create": (Route("POST", "/albums"),),
    "albums.update": (Route("PATCH", "/albums/{album_id}"),),
    "albums.photos.add": (Route("POST", "/albums/{album_id}/photos"),),
    "albums.photos.remove": (Route("POST", "/albums/{album_id}/photos/remove"),),
    "albums.members.add": (Route("POST", "/albums/{album_id}/members"),),
    "albums.members.change": (Route("PATCH", "/albums/{album_id}/members/{user_id}"),),
    "albums.members.remove": (Route("DELETE", "/albums/{album_id}/members/{user_id}"),),
    "albums.delete": (Route("DELETE", "/albums/{album_id}"),),
    "albums.links.create": (Route("POST", "/albums/{album_id}/links"),),
    "albums.links.list": (Route("GET", "/albums/{album_id}/links"),),
    "albums.links.revoke": (Route("DELETE", "/albums/{album_id}/links/{link_id}"),),
    "public.view": (Route("GET", "/public/albums/{token}"),),
    "public.unlock": (Route("POST", "/public/albums/{token}/unlock"),),
    "ws.connect": ("websocket_connect",),
    "ws.disconnect": ("websocket_disconnect",),
    "ws.message": ("websocket_message",),
    "jobs.sweep": ("release_abandoned_uploads",),
    "jobs.release_one": ("release_abandoned_uploads",),
    "jobs.purge_one": ("release_abandoned_uploads",),
}

# Routes and handlers left out of the workload, with why.
EXCLUDED: dict[Route | str, str] = {
    Route("GET", "/health"): "answers from memory: no DynamoDB or S3 request",
    # Every OPTIONS route is the CORS preflight (app.preflight): headers only, no request to any store.
    **{
        Route("OPTIONS", path): "CORS preflight: headers only, no DynamoDB or S3 request"
        for path in (
            "/users",
            "/users/me",
            "/users/{user_id}",
            "/photos",
            "/photos/timeline",
            "/photos/batch",
            "/photos/{photo_id}",
            "/photos/{photo_id}/restore",
            "/trash",
            "/albums",
            "/albums/{album_id}",
            "/albums/{album_id}/photos",
            "/albums/{album_id}/photos/remove",
            "/albums/{album_id}/members",
            "/albums/{album_id}/members/{user_id}",
            "/albums/{album_id}/links",
            "/albums/{album_id}/links/{link_id}",
            "/public/albums/{token}",
            "/public/albums/{token}/unlock",
        )
    },
}


def public_route_ceiling(path: str, method: str) -> float:
    """Requests/s API Gateway lets through to a public share-link route (its own throttle, prod)."""
    from infra.package import PUBLIC_ROUTE_THROTTLING

    rate, _burst = PUBLIC_ROUTE_THROTTLING[(path, method)][PUBLIC_STAGE]
    return float(rate)


def rates() -> dict[str, float]:
    """Operations per second at the target, steady state (the sweep is placed by the simulation)."""
    found = {op: share * API_REQUESTS_PER_SECOND for op, share in API_MIX.items()}
    found["public.view"] = min(found["public.view"], public_route_ceiling("/public/albums/{token}", "GET"))
    found["public.unlock"] = min(found["public.unlock"], public_route_ceiling("/public/albums/{token}/unlock", "POST"))
    found["upload"] = UPLOADS_PER_SECOND * (1 - ABANDONED_UPLOAD_SHARE)
    found["upload.start"] = UPLOADS_PER_SECOND * ABANDONED_UPLOAD_SHARE  # started, never finished
    found["jobs.release_one"] = UPLOADS_PER_SECOND * ABANDONED_UPLOAD_SHARE
    found["jobs.purge_one"] = found["photos.delete"]
    return found
