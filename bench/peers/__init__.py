"""The same photo routes written with PhotoSky's two usual peers, for the warm-request comparison.

Each peer is a minimal but honest equivalent of app.py's photo routes: the same service layer (so the same
DynamoDB calls and presigned URLs), the same per-user write-rate token spent by every write route before its own
calls (`deps.write_limiter().spend`, as app.py does), the same response shapes, the caller from the Cognito claims
API Gateway passes, request validation in the framework's own idiom (pydantic models with the same limits), the
same domain error → HTTP mapping, and the same one-line structured log per request.
"""
