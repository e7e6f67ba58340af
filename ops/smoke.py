"""`python -m ops.smoke --outputs <stack outputs>`: prove that a deployed stage works, end to end, as a user would.

Creates a throwaway Cognito user (``photosky-smoke-<random>``, an email on the reserved ``.test`` domain, no message
sent, a random password set permanent), signs in as the web client does (InitiateAuth, USER_PASSWORD_AUTH, on the
SPA client), creates the profile, uploads a small real JPEG through the presigned POST, waits for READY, finds the
photo in the listing, downloads its small preview (CloudFront signed URL or S3 presigned URL alike), deletes the
photo and purges it from the trash, deletes the account (``DELETE /users/me`` until 204) and the Cognito user.
Each step is printed as it finishes, with its latency; the last line is the total and PASS or FAIL.

Nothing is left behind, even when a step fails or the run is interrupted (Ctrl-C, or SIGTERM from a cancelled CI
job): the clean-up (the account through the API, then the Cognito user) runs last whatever happened, each of its
steps printed too. If it cannot finish, the report says exactly what is left (user name, sub, photo id) and the
exit status is not 0. The password and the tokens are never printed.

--outputs is either describe-stacks' Outputs list of the stage's stack (``aws cloudformation describe-stacks
--stack-name photosky-dev --query Stacks[0].Outputs``: EndpointURL, UserPoolId, UserPoolClientId, Region) or the
dev stack's ``.devstack/outputs.json`` (api_url, user_pool_id, user_pool_client_id, region, aws_endpoint_url): the
CloudFormation names are renamed to the dev stack's, and both run the same code. For the ``chalice deploy`` path,
whose resources stack has no EndpointURL, pass ``--api-url`` (the URL ``chalice deploy`` printed).

IAM: the Cognito admin calls on the stage's user pool, nothing else (the API is called over HTTPS with the ID token,
and InitiateAuth is an unauthenticated call)::

    cognito-idp:AdminCreateUser, cognito-idp:AdminSetUserPassword, cognito-idp:AdminDeleteUser
    on arn:aws:cognito-idp:<region>:<account>:userpool/<UserPoolId>

Credentials come from the default chain (environment, profile, OIDC web identity in CI). Against the dev stack
(outputs with ``aws_endpoint_url``) every AWS call goes to that endpoint with throwaway credentials, never to AWS.
Needs only the standard library and boto3 (no image libraries: the JPEG is encoded here).

Exit status: 0 every step passed and nothing is left; 1 a step or the clean-up failed; 2 bad arguments or outputs
file; 128 + the signal's number (130 for Ctrl-C) when interrupted.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import http.client
import ipaddress
import json
import os
import re
import secrets
import signal
import struct
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, TextIO

from infra.configure_stage import ConfigureError, read_outputs

if TYPE_CHECKING:
    from mypy_boto3_cognito_idp import CognitoIdentityProviderClient

# The steps, in order (each one's line names it).
CREATE_USER = "create user"
SIGN_IN = "sign in"
CREATE_PROFILE = "create profile"
UPLOAD = "upload"
WAIT_READY = "wait for READY"
LIST = "list"
DOWNLOAD_PREVIEW = "download preview"
DELETE_PHOTO = "delete photo"
DELETE_ACCOUNT = "delete account"
DELETE_USER = "delete user"
STEPS = (
    CREATE_USER,
    SIGN_IN,
    CREATE_PROFILE,
    UPLOAD,
    WAIT_READY,
    LIST,
    DOWNLOAD_PREVIEW,
    DELETE_PHOTO,
    DELETE_ACCOUNT,
    DELETE_USER,
)
CLEANUP_ACCOUNT = "cleanup: delete account"
CLEANUP_USER = "cleanup: delete user"
CLEANUP = "cleanup"

# CloudFormation output names -> the dev stack's names for the same values.
STACK_OUTPUT_NAMES = {
    "EndpointURL": "api_url",
    "UserPoolId": "user_pool_id",
    "UserPoolClientId": "user_pool_client_id",
    "Region": "region",
}
REQUIRED = ("api_url", "user_pool_id", "user_pool_client_id", "region")
_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$")
_LOOPBACK_NAMES = frozenset({"localhost"})

DEFAULT_TIMEOUT_SECONDS = 60.0
# The ID token lives 60 minutes (infra/resources.yaml): every call, the clean-up's included, must fit in it.
MAX_TIMEOUT_SECONDS = 600.0
HTTP_TIMEOUT_SECONDS = 30.0  # API Gateway gives up on an integration after 29 s
FIRST_POLL_SECONDS = 0.1
MAX_POLL_SECONDS = 2.0
# A 503 means nothing was done (CONTRACT.md): the same request is sent again, after Retry-After (capped).
API_ATTEMPTS = 3
MAX_RETRY_AFTER_SECONDS = 5.0
# DELETE /users/me answers 202 while there is more to delete; a smoke user has one photo, so this is generous.
ACCOUNT_DELETION_SECONDS = 60.0
MAX_LIST_PAGES = 10
NAME_WIDTH = len(CLEANUP_ACCOUNT)
EMAIL_DOMAIN = "photosky.test"  # .test is reserved (RFC 2606): nothing is ever delivered there
USER_AGENT = "photosky-smoke"

# The password's shape (tests look for it in the output): upper, lower and digit, whatever the random part holds.
PASSWORD_SHAPE = re.compile(r"Ps[A-Za-z0-9_-]{40}9a")


def new_password() -> str:
    return f"Ps{secrets.token_urlsafe(30)}9a"


def new_username() -> str:
    return f"photosky-smoke-{secrets.token_hex(6)}"


# --- the stage: its outputs ----------------------------------------------------------------------------------------


class OutputsError(Exception):
    """The outputs file (or --api-url) cannot say where the stage is."""


@dataclass(frozen=True)
class Target:
    api_url: str  # without a trailing slash
    region: str
    user_pool_id: str
    user_pool_client_id: str
    aws_endpoint_url: str | None = None  # the dev stack's emulated AWS; None: AWS itself

    def describe(self, environ: Mapping[str, str]) -> str:
        if self.aws_endpoint_url:
            where = f"emulated AWS at {self.aws_endpoint_url}"
        else:
            # boto3 honours AWS_ENDPOINT_URL: say so, so that nobody mistakes such a run for one against AWS.
            override = environ.get("AWS_ENDPOINT_URL")
            where = f"AWS_ENDPOINT_URL {override}" if override else "AWS, default credentials"
        return f"smoke test of {self.api_url} (user pool {self.user_pool_id}, {self.region}, {where})"


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_api_url(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise OutputsError(f"the API URL must be an http(s) URL without a query, got {url!r}")
    # Every call carries an ID token: plain HTTP only to this machine (the dev stack).
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise OutputsError(f"the API URL must be https (plain http only on this machine), got {url!r}")
    return url.rstrip("/")


def target_from_outputs(document: Any, api_url: str | None = None) -> Target:
    """The stage described by describe-stacks' Outputs list (or a {name: value} object of the same names), or by
    the dev stack's outputs.json. The CloudFormation names are renamed to the dev stack's; the rest is shared."""
    try:
        outputs = read_outputs(document)
    except ConfigureError as e:
        raise OutputsError(str(e)) from None
    except (KeyError, TypeError):
        raise OutputsError("each entry of describe-stacks' Outputs list needs OutputKey and OutputValue") from None
    stack_shaped = isinstance(document, list) or any(name in outputs for name in STACK_OUTPUT_NAMES)
    values = {STACK_OUTPUT_NAMES.get(name, name): value.strip() for name, value in outputs.items()}
    if api_url is not None:
        values["api_url"] = api_url
    missing = [name for name in REQUIRED if not values.get(name)]
    if missing:
        spelled = {dev: stack for stack, dev in STACK_OUTPUT_NAMES.items()} if stack_shaped else {}
        names = [spelled.get(name, name) for name in missing]
        hint = " (or pass --api-url)" if "api_url" in missing else ""
        raise OutputsError(f"the outputs lack: {', '.join(names)}{hint}")
    if not _REGION.match(values["region"]):
        raise OutputsError(f"the region is not an AWS region: {values['region']!r}")
    endpoint = values.get("aws_endpoint_url") or None
    if endpoint is not None and urllib.parse.urlsplit(endpoint).scheme not in ("http", "https"):
        raise OutputsError(f"aws_endpoint_url must be an http(s) URL, got {endpoint!r}")
    return Target(
        api_url=_check_api_url(values["api_url"]),
        region=values["region"],
        user_pool_id=values["user_pool_id"],
        user_pool_client_id=values["user_pool_client_id"],
        aws_endpoint_url=endpoint,
    )


def load_target(path: Path, api_url: str | None = None) -> Target:
    try:
        text = path.read_text()
    except OSError as e:
        raise OutputsError(f"cannot read {path}: {e.strerror or e}") from None
    try:
        document = json.loads(text)
    except ValueError as e:
        raise OutputsError(f"{path} is not JSON ({e})") from None
    return target_from_outputs(document, api_url)


def cognito_client(target: Target) -> CognitoIdentityProviderClient:
    if target.aws_endpoint_url is not None:
        from devstack.clients import emulated_client

        # The dev stack: its endpoint and throwaway credentials, whatever the environment says.
        client: CognitoIdentityProviderClient = emulated_client(
            "cognito-idp", {"aws_endpoint_url": target.aws_endpoint_url, "region": target.region}
        )
        return client
    import boto3
    from botocore.config import Config

    config = Config(connect_timeout=10, read_timeout=HTTP_TIMEOUT_SECONDS, retries={"mode": "standard"})
    return boto3.session.Session().client("cognito-idp", region_name=target.region, config=config)


# --- HTTP ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    status: int
    headers: Mapping[str, str]
    body: bytes
    attempts: int = 1

    def json(self) -> Any:
        try:
            return json.loads(self.body) if self.body else None
        except ValueError:
            return None

    def describe(self) -> str:
        """The status and the error's Code and Message (never a header: the request's token is not echoed)."""
        parsed = self.json()
        if isinstance(parsed, dict) and ("Code" in parsed or "message" in parsed or "Message" in parsed):
            code = parsed.get("Code", "")
            message = parsed.get("Message", parsed.get("message", ""))
            return f"HTTP {self.status} {code}: {message}".replace(" :", ":")
        excerpt = self.body[:200].decode("utf-8", "replace").replace("\n", " ")
        return f"HTTP {self.status}" + (f": {excerpt}" if excerpt else "")


Transport = Callable[[str, str, Mapping[str, str], bytes | None], Reply]

# The dev stack is on 127.0.0.1: never through a proxy the environment may name.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_DEFAULT = urllib.request.build_opener()


def urllib_transport(method: str, url: str, headers: Mapping[str, str], data: bytes | None) -> Reply:
    """One request; HTTP errors come back as replies, a failure to connect raises OSError."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https"):  # the URLs the API hands out must not open files
        raise StepFailed(f"not an http(s) URL: {safe_url(url)}")
    opener = _DIRECT if _is_loopback(parts.hostname or "") else _DEFAULT
    # The scheme is checked above (S310: no file: URLs from a reply).
    request = urllib.request.Request(  # noqa: S310
        url, data=data, method=method, headers={"User-Agent": USER_AGENT, **headers}
    )
    try:
        with opener.open(request, timeout=HTTP_TIMEOUT_SECONDS) as response:
            return Reply(response.status, dict(response.headers), response.read())
    except urllib.error.HTTPError as e:
        with e:
            return Reply(e.code, dict(e.headers or {}), e.read())


def safe_url(url: str) -> str:
    """A URL fit to print: no query string (a signed URL's query is a credential for its object)."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def _retry_after(reply: Reply) -> float:
    try:
        seconds = float(reply.headers.get("Retry-After", reply.headers.get("retry-after", "1")))
    except ValueError:
        seconds = 1.0
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


def token_subject(id_token: str) -> str:
    """The `sub` claim, read without verifying (the API verifies; this is only to name the user in the report)."""
    try:
        payload = id_token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        subject = claims["sub"]
    except (IndexError, KeyError, TypeError, ValueError, binascii.Error):
        raise StepFailed("the ID token carries no readable sub claim") from None
    if not isinstance(subject, str):
        raise StepFailed("the ID token's sub claim is not a string")
    return subject


# --- the image -----------------------------------------------------------------------------------------------------

# ITU T.81 Annex K, table K.3: the standard luminance DC table (categories 0-11), used for all three components.
_DC_BITS = (0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0)
_DC_VALUES = bytes(range(12))
# Every block is flat, so the only AC symbol ever written is end-of-block (0x00): a one-symbol, one-bit table.
_AC_BITS = (1,) + (0,) * 15
_AC_VALUES = b"\x00"
SMOKE_IMAGE_SIZE = (320, 240)  # wider than the small preview (256), so it is really scaled


def _huffman_codes(bits: tuple[int, ...], values: bytes) -> dict[int, tuple[int, int]]:
    """symbol -> (code, length), the canonical codes of T.81 Annex C."""
    codes: dict[int, tuple[int, int]] = {}
    code, symbols = 0, iter(values)
    for length, count in enumerate(bits, start=1):
        for _ in range(count):
            codes[next(symbols)] = (code, length)
            code += 1
        code <<= 1
    return codes


class _BitWriter:
    def __init__(self) -> None:
        self._out = bytearray()
        self._bits = 0
        self._count = 0

    def write(self, value: int, length: int) -> None:
        self._bits = (self._bits << length) | (value & ((1 << length) - 1))
        self._count += length
        while self._count >= 8:
            self._count -= 8
            byte = (self._bits >> self._count) & 0xFF
            self._out.append(byte)
            if byte == 0xFF:
                self._out.append(0)  # byte stuffing: 0xFF in entropy-coded data is followed by 0x00
        self._bits &= (1 << self._count) - 1

    def finish(self) -> bytes:
        if self._count:
            self.write((1 << (8 - self._count)) - 1, 8 - self._count)  # pad the last byte with 1 bits
        return bytes(self._out)


def _segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


def block_colour(column: int, row: int, columns: int, rows: int) -> tuple[int, int, int]:
    """A colour gradient: red grows to the right, green downwards, blue against both."""
    red = 255 * column // (columns - 1)
    green = 255 * row // (rows - 1)
    return red, green, 255 - (red + green) // 2


def smoke_jpeg(width: int = SMOKE_IMAGE_SIZE[0], height: int = SMOKE_IMAGE_SIZE[1]) -> bytes:
    """A real baseline JPEG (JFIF, YCbCr 4:4:4) of a colour gradient, without an image library.

    Each 8x8 block is one flat colour, so each block is its DC coefficient alone (no DCT to compute: a flat block's
    DC is 8 x (value - 128)) followed by end-of-block. Any decoder reads it; the worker makes real previews of it."""
    if width % 8 or height % 8:
        raise ValueError("width and height must be multiples of 8")
    columns, rows = width // 8, height // 8
    dc_codes, eob = _huffman_codes(_DC_BITS, _DC_VALUES), _huffman_codes(_AC_BITS, _AC_VALUES)[0]
    writer = _BitWriter()
    previous = [0, 0, 0]  # each component's DC is coded as the difference from its previous block's
    for row in range(rows):
        for column in range(columns):
            red, green, blue = block_colour(column, row, columns, rows)
            ycbcr = (
                0.299 * red + 0.587 * green + 0.114 * blue,
                128 - 0.168736 * red - 0.331264 * green + 0.5 * blue,
                128 + 0.5 * red - 0.418688 * green - 0.081312 * blue,
            )
            for component, value in enumerate(ycbcr):
                dc = round(8 * (min(max(value, 0.0), 255.0) - 128))  # quantised by 1: exact
                diff, previous[component] = dc - previous[component], dc
                size = abs(diff).bit_length()
                writer.write(*dc_codes[size])
                if size:
                    writer.write(diff if diff > 0 else diff + (1 << size) - 1, size)
                writer.write(*eob)
    components = b"".join(bytes((ident, 0x11, 0)) for ident in (1, 2, 3))  # 1x1 sampling, quantisation table 0
    return b"".join(
        (
            b"\xff\xd8",
            _segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"),
            _segment(0xDB, b"\x00" + b"\x01" * 64),  # every coefficient quantised by 1
            _segment(0xC0, struct.pack(">BHHB", 8, height, width, 3) + components),
            _segment(0xC4, b"\x00" + bytes(_DC_BITS) + _DC_VALUES),
            _segment(0xC4, b"\x10" + bytes(_AC_BITS) + _AC_VALUES),
            _segment(0xDA, b"\x03\x01\x00\x02\x00\x03\x00\x00\x3f\x00"),
            writer.finish(),
            b"\xff\xd9",
        )
    )


_IMAGE_SIGNATURES = {"image/jpeg": (b"\xff\xd8\xff",), "image/webp": (b"RIFF",), "image/png": (b"\x89PNG",)}


# --- the report ----------------------------------------------------------------------------------------------------


class StepFailed(Exception):
    """A step did not get what the contract promises; the message says what came instead."""


class Interrupted(BaseException):
    """SIGINT (Ctrl-C) or SIGTERM (a cancelled CI job): the steps stop, the clean-up still runs."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def format_line(verdict: str, name: str, milliseconds: float | None, detail: str = "") -> str:
    """One aligned report line: verdict, step, latency, what happened."""
    latency = f"{milliseconds:>7.0f} ms" if milliseconds is not None else " " * 10
    return f"{verdict:<4}  {name:<{NAME_WIDTH}}  {latency}  {detail}".rstrip()


class Report:
    def __init__(self, out: TextIO, clock: Callable[[], float] = time.monotonic) -> None:
        self._out = out
        self._clock = clock
        self._started = clock()
        self.failed_step: str | None = None
        self.last_step: str | None = None  # the step that started last

    def print(self, text: str) -> None:
        print(text, file=self._out, flush=True)  # at once: a pipeline's log shows how far it got

    def line(self, verdict: str, name: str, milliseconds: float | None, detail: str = "") -> None:
        self.print(format_line(verdict, name, milliseconds, detail))

    def run(self, name: str, action: Callable[[], str]) -> None:
        """Run one step and print its line; StepFailed (and Interrupted) go on to the caller."""
        started = self._clock()
        self.last_step = name

        def elapsed() -> float:
            return (self._clock() - started) * 1000

        try:
            detail = action()
        except Interrupted as e:
            self._fail(name, elapsed(), f"interrupted ({e})")
            raise
        except StepFailed as e:
            self._fail(name, elapsed(), str(e))
            raise
        except (OSError, http.client.HTTPException) as e:
            self._fail(name, elapsed(), f"no answer: {e}")
            raise StepFailed(str(e)) from e
        except Exception as e:  # a boto3 ClientError, or a reply of an unexpected shape: reported, never a traceback
            self._fail(name, elapsed(), f"{type(e).__name__}: {e}")
            raise StepFailed(str(e)) from e
        self.line("ok", name, elapsed(), detail)

    def _fail(self, name: str, milliseconds: float, detail: str) -> None:
        self.failed_step = self.failed_step or name
        self.line("FAIL", name, milliseconds, detail)

    def total(self, passed: bool, summary: str) -> None:
        self.line("PASS" if passed else "FAIL", "total", (self._clock() - self._started) * 1000, summary)


# --- the smoke test ------------------------------------------------------------------------------------------------


@dataclass
class _State:
    """What exists in the stage because of this run, so the clean-up knows what to remove and what to report."""

    user_may_exist: bool = False
    user_deleted: bool = False
    sub: str | None = None
    account_may_exist: bool = False
    account_deletion_started: bool = False  # a 202: the deletion is marked and the scheduled job would finish it
    account_deleted: bool = False
    uploads_started: int = 0
    photo_id: str | None = None
    photo_deleted: bool = False
    photo: dict[str, Any] = field(default_factory=dict)
    listed: dict[str, Any] = field(default_factory=dict)


def _expect(reply: Reply, what: str, *statuses: int) -> Any:
    if reply.status not in statuses:
        expected = " or ".join(str(status) for status in statuses)
        raise StepFailed(f"{what}: expected {expected}, got {reply.describe()}")
    return reply.json()


def _field(document: Any, *path: str) -> Any:
    value = document
    for name in path:
        if not isinstance(value, dict) or name not in value:
            raise StepFailed(f"the reply has no {'.'.join(path)}")
        value = value[name]
    return value


class Smoke:
    def __init__(
        self,
        target: Target,
        cognito: CognitoIdentityProviderClient,
        transport: Transport = urllib_transport,
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self.target = target
        self._cognito = cognito
        self._transport = transport
        self._timeout = timeout
        self._clock = clock
        self._sleep = sleep
        self.username = username or new_username()
        self._password = password or new_password()
        self._token: str | None = None
        self.state = _State()

    def steps(self) -> list[tuple[str, Callable[[], str]]]:
        return [
            (CREATE_USER, self.create_user),
            (SIGN_IN, self.sign_in),
            (CREATE_PROFILE, self.create_profile),
            (UPLOAD, self.upload),
            (WAIT_READY, self.wait_ready),
            (LIST, self.find_in_list),
            (DOWNLOAD_PREVIEW, self.download_preview),
            (DELETE_PHOTO, self.delete_photo),
            (DELETE_ACCOUNT, self.delete_account),
            (DELETE_USER, self.delete_user),
        ]

    # Cognito

    def create_user(self) -> str:
        # Before the call: a reply lost on its way back may still leave a user to delete.
        self.state.user_may_exist = True
        pool = self.target.user_pool_id
        self._cognito.admin_create_user(
            UserPoolId=pool,
            Username=self.username,
            UserAttributes=[
                {"Name": "email", "Value": f"{self.username}@{EMAIL_DOMAIN}"},
                {"Name": "email_verified", "Value": "true"},
            ],
            MessageAction="SUPPRESS",
        )
        self._cognito.admin_set_user_password(
            UserPoolId=pool, Username=self.username, Password=self._password, Permanent=True
        )
        return self.username

    def sign_in(self) -> str:
        result = self._cognito.initiate_auth(
            AuthFlow="USER_PASSWORD_AUTH",
            ClientId=self.target.user_pool_client_id,
            AuthParameters={"USERNAME": self.username, "PASSWORD": self._password},
        )
        if "AuthenticationResult" not in result:
            raise StepFailed(f"Cognito answered with the challenge {result.get('ChallengeName')} instead of tokens")
        self._token = result["AuthenticationResult"].get("IdToken")
        if not self._token:
            raise StepFailed("Cognito returned no ID token")
        self.state.sub = token_subject(self._token)
        return f"ID token for sub {self.state.sub}"

    def delete_user(self) -> str:
        try:
            self._cognito.admin_delete_user(UserPoolId=self.target.user_pool_id, Username=self.username)
        except Exception as e:
            # Its creation may have failed before the user existed: then there is nothing to delete.
            if _error_code(e) != "UserNotFoundException":
                raise
            self.state.user_deleted = True
            return f"{self.username} was not there"
        self.state.user_deleted = True
        return self.username

    # The API

    def api(self, method: str, path: str, body: Any = None) -> Reply:
        if self._token is None:
            raise StepFailed("not signed in")
        headers = {"Authorization": self._token, "Accept": "application/json"}
        data = None if body is None else json.dumps(body).encode()
        if data is not None:
            headers["Content-Type"] = "application/json"
        for attempt in range(1, API_ATTEMPTS + 1):
            reply = self._transport(method, self.target.api_url + path, headers, data)
            if reply.status != 503 or attempt == API_ATTEMPTS:
                return replace(reply, attempts=attempt)
            self._sleep(_retry_after(reply))
        raise AssertionError("unreachable")  # pragma: no cover

    def create_profile(self) -> str:
        self.state.account_may_exist = True
        reply = self.api("POST", "/users", {"display_name": "PhotoSky smoke test"})
        if reply.status == 401:
            # Refused before anything was written: there is no account to delete.
            self.state.account_may_exist = False
            raise StepFailed("the API refused the ID token (401): is the API's authorizer on this user pool?")
        if reply.status == 409 and reply.attempts > 1:
            return "409 after a retry: the first attempt created it"
        _expect(reply, "POST /users", 201)
        return "201"

    def upload(self) -> str:
        data = smoke_jpeg()
        self.state.uploads_started += 1
        reply = self.api(
            "POST",
            "/photos",
            {
                "filename": "photosky-smoke.jpg",
                "content_type": "image/jpeg",
                "size_bytes": len(data),
                "title": "PhotoSky smoke test",
            },
        )
        created = _expect(reply, "POST /photos", 201)
        self.state.photo_id = str(_field(created, "photo", "photo_id"))
        url, fields = _field(created, "upload", "url"), _field(created, "upload", "fields")
        from devstack.clients import presigned_post_body

        form, form_type = presigned_post_body(fields, data, "image/jpeg", filename="photosky-smoke.jpg")
        sent = self._transport("POST", url, {"Content-Type": form_type}, form)
        if sent.status not in (200, 201, 204):
            raise StepFailed(f"the presigned POST to {safe_url(url)}: {sent.describe()}")
        width, height = SMOKE_IMAGE_SIZE
        return f"photo {self.state.photo_id}, {len(data)}-byte JPEG {width}x{height}"

    def wait_ready(self) -> str:
        deadline = self._clock() + self._timeout
        delay, polls = FIRST_POLL_SECONDS, 0
        while True:
            photo = _expect(self.api("GET", f"/photos/{self.state.photo_id}"), "GET /photos/{id}", 200)
            polls += 1
            status = _field(photo, "status")
            if status == "READY":
                self.state.photo = photo
                return f"READY after {polls} poll(s)"
            if status == "REJECTED":
                raise StepFailed(f"REJECTED: {photo.get('rejection_reason')}")
            if status != "PENDING":
                raise StepFailed(f"unexpected status {status!r}")
            remaining = deadline - self._clock()
            if remaining <= 0:
                raise StepFailed(f"still PENDING after {self._timeout:g} s ({polls} poll(s)); --timeout waits longer")
            self._sleep(min(delay, remaining))
            delay = min(delay * 2, MAX_POLL_SECONDS)

    def find_in_list(self) -> str:
        cursor: str | None = None
        for page in range(1, MAX_LIST_PAGES + 1):
            query = "?limit=100" + (f"&cursor={urllib.parse.quote(cursor, safe='')}" if cursor else "")
            listing = _expect(self.api("GET", f"/photos{query}"), "GET /photos", 200)
            for item in _field(listing, "items"):
                if isinstance(item, dict) and item.get("photo_id") == self.state.photo_id:
                    self.state.listed = item
                    return f"found on page {page}"
            cursor = listing.get("next_cursor")
            if not cursor:
                break
        raise StepFailed(f"photo {self.state.photo_id} is not in GET /photos")

    def download_preview(self) -> str:
        url = _field(self.state.listed, "urls", "small")
        if not isinstance(url, str) or not url:
            raise StepFailed("the listed photo has no urls.small")
        # A signed URL (CloudFront or S3): no Authorization header, as a browser's <img> sends none.
        reply = self._transport("GET", url, {}, None)
        if reply.status != 200:
            raise StepFailed(f"GET {safe_url(url)}: {reply.describe()}")
        content_type = reply.headers.get("Content-Type", reply.headers.get("content-type", ""))
        media_type = content_type.split(";")[0].strip().lower()
        if not media_type.startswith("image/"):
            raise StepFailed(f"GET {safe_url(url)}: Content-Type {content_type!r}, not an image")
        if not reply.body:
            raise StepFailed(f"GET {safe_url(url)}: an empty body")
        if not reply.body.startswith(_IMAGE_SIGNATURES.get(media_type, (b"",))):
            raise StepFailed(f"GET {safe_url(url)}: the body is not a {media_type}")
        return f"small: {media_type}, {len(reply.body)} bytes"

    def delete_photo(self) -> str:
        path = f"/photos/{self.state.photo_id}"
        # A retried DELETE may find the first attempt did the work (README, "Retrying safely"): 404 then.
        trashed = self.api("DELETE", path)
        _expect(trashed, f"DELETE {path}", *((204, 404) if trashed.attempts > 1 else (204,)))
        purged = self.api("DELETE", f"{path}?permanent=true")
        _expect(purged, f"DELETE {path}?permanent=true", *((204, 404) if purged.attempts > 1 else (204,)))
        _expect(self.api("GET", path), f"GET {path} after the purge", 404)
        self.state.photo_deleted = True
        return "trashed, purged, then 404"

    def delete_account(self) -> str:
        deadline = self._clock() + ACCOUNT_DELETION_SECONDS
        delay, calls = 0.25, 0
        while True:
            reply = self.api("DELETE", "/users/me")
            calls += 1
            if reply.status == 204:
                self.state.account_deleted = True
                return f"204 after {calls} call(s)"
            _expect(reply, "DELETE /users/me", 202, 204)
            self.state.account_deletion_started = True
            if self._clock() > deadline:
                raise StepFailed(f"still 202 after {ACCOUNT_DELETION_SECONDS:g} s")
            self._sleep(delay)
            delay = min(delay * 2, MAX_RETRY_AFTER_SECONDS)

    # The clean-up

    def cleanup_steps(self) -> list[tuple[str, Callable[[], str]]]:
        state, steps = self.state, []
        if state.account_may_exist and not state.account_deleted:
            steps.append((CLEANUP_ACCOUNT, self.delete_account))
        if state.user_may_exist and not state.user_deleted:
            steps.append((CLEANUP_USER, self.delete_user_unless_needed))
        return steps

    def delete_user_unless_needed(self) -> str:
        state = self.state
        if state.account_may_exist and not state.account_deleted and not state.account_deletion_started:
            # Only this user can still delete the account through the API (DELETE /users/me): keep it.
            raise StepFailed(f"kept {self.username}: the account above can only be deleted by signing in as it")
        return self.delete_user()

    def left_behind(self) -> list[str]:
        """What this run leaves in the stage, each named so that an operator can find it."""
        state, left = self.state, []
        if state.account_may_exist and not state.account_deleted:
            held = "its profile"
            if state.photo_id and not state.photo_deleted:
                held += f" and photo {state.photo_id}"
            elif state.uploads_started and not state.photo_id:
                held += " and any photo it started"
            how = (
                "its deletion has begun: the scheduled clean-up job finishes it"
                if state.account_deletion_started
                else "sign in as it (aws cognito-idp admin-set-user-password) and DELETE /users/me"
            )
            left.append(f"the account of {self.username} (sub {state.sub}): {held}; {how}")
        if state.user_may_exist and not state.user_deleted:
            left.append(f"Cognito user {self.username} in user pool {self.target.user_pool_id}")
        return left


def _error_code(error: Exception) -> str | None:
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        return str(code) if code is not None else None
    return None


class _SignalGuard:
    """SIGINT and SIGTERM stop the steps (Interrupted), but never the clean-up: there they are only noted."""

    def __init__(self) -> None:
        self.cleaning = False
        self.ignored: list[str] = []

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if self.cleaning:
            self.ignored.append(signal.Signals(signum).name)  # no printing here: it could land inside a print
            return
        raise Interrupted(signum)

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        previous = {signum: signal.signal(signum, self) for signum in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)


def _clean_up(smoke: Smoke, report: Report) -> None:
    steps = smoke.cleanup_steps()
    if not steps:
        report.line("ok", CLEANUP, 0, "nothing to remove")
    for name, action in steps:
        with contextlib.suppress(StepFailed):
            report.run(name, action)


def run(smoke: Smoke, report: Report) -> int:
    """Every step, then the clean-up whatever happened; the exit status."""
    guard = _SignalGuard()
    code, outcome = 0, f"{len(STEPS)} steps passed"
    report.print(smoke.target.describe(os.environ))
    with guard.installed():
        try:
            for name, action in smoke.steps():
                report.run(name, action)
        except StepFailed:
            code, outcome = 1, f"{report.failed_step} failed"
        except Interrupted as e:
            # A signal may land between two steps (while a line is printed): then the last one had finished.
            where = f"during {report.failed_step}" if report.failed_step else f"after {report.last_step}"
            code, outcome = 128 + e.signum, f"interrupted by {e} {where}"
        finally:
            guard.cleaning = True
            _clean_up(smoke, report)
    left = smoke.left_behind()  # nothing unless a step failed, so the status is not 0 already
    for item in left:
        report.line("LEFT", "left behind", None, item)
    if guard.ignored:
        report.print(f"({', '.join(guard.ignored)} during the clean-up: it was finished first)")
    report.total(code == 0, outcome + ("; LEFT BEHIND: see above" if left else "; nothing left behind"))
    return code


def main(argv: list[str] | None = None, out: TextIO | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ops.smoke",
        description=__doc__.splitlines()[0] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.splitlines()[2:]) if __doc__ else None,
    )
    parser.add_argument("--outputs", required=True, type=Path, help="describe-stacks' Outputs, or outputs.json")
    parser.add_argument("--api-url", help="the API's URL, when the outputs have no EndpointURL (chalice deploy)")
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_SECONDS,
        help=f"seconds to wait for READY (default {DEFAULT_TIMEOUT_SECONDS:g}, at most {MAX_TIMEOUT_SECONDS:g})",
    )
    args = parser.parse_args(argv)
    if not 0 <= args.timeout <= MAX_TIMEOUT_SECONDS:
        parser.error(f"--timeout must be between 0 and {MAX_TIMEOUT_SECONDS:g} seconds")
    try:
        target = load_target(args.outputs, args.api_url)
    except OutputsError as e:
        print(f"ops.smoke: error: {e}", file=sys.stderr)
        return 2
    smoke = Smoke(target, cognito_client(target), timeout=args.timeout)
    return run(smoke, Report(out or sys.stdout))


if __name__ == "__main__":
    sys.exit(main())
