"""`python -m ops.media_keys`: generating the media signing key and activating it, against moto in-process."""

from __future__ import annotations

import json
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from moto import mock_aws

from ops import media_keys
from ops.media_keys import MediaKeyError, activate, generate, main
from tests.conftest import PROJECT_DIR

REGION = "us-east-1"
SECRET_NAME = "photosky-dev-media-signing-key"


def pem_of(key: Any) -> bytes:
    pem: bytes = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return pem


def public_key_pattern() -> str:
    """infra/resources.yaml's AllowedPattern for a key slot (what CloudFormation accepts as MediaPublicKeyA)."""
    from cfnlint.decode import decode_str

    template, _ = decode_str((PROJECT_DIR / "infra" / "resources.yaml").read_text())
    assert template is not None
    pattern: str = str(template["Parameters"]["MediaPublicKeyA"]["AllowedPattern"])
    return pattern


# --- generate -------------------------------------------------------------------------------------------------------


def test_generate_writes_a_p256_pkcs8_key_only_its_owner_can_read(tmp_path: Path) -> None:
    out = tmp_path / "media-key.pem"
    public = generate(out)

    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    text = out.read_text()
    assert text.startswith("-----BEGIN PRIVATE KEY-----")  # PKCS #8, unencrypted
    key = serialization.load_pem_private_key(text.encode(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert isinstance(key.curve, ec.SECP256R1)
    printed = serialization.load_pem_public_key(public.encode())
    assert isinstance(printed, ec.EllipticCurvePublicKey)
    assert printed.public_numbers() == key.public_key().public_numbers()


def test_generate_never_overwrites_a_key(tmp_path: Path) -> None:
    out = tmp_path / "media-key.pem"
    out.write_text("the key that signs today")
    with pytest.raises(MediaKeyError, match="exists"):
        generate(out)
    assert out.read_text() == "the key that signs today"


def test_the_printed_public_key_is_what_the_stack_accepts_as_a_key_slot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["generate", "--out", str(tmp_path / "media-key.pem")]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("-----BEGIN PUBLIC KEY-----")
    assert re.fullmatch(public_key_pattern(), printed)
    assert "PRIVATE" not in printed


# --- activate -------------------------------------------------------------------------------------------------------


@pytest.fixture
def aws() -> Iterator[boto3.session.Session]:
    with mock_aws():
        yield boto3.session.Session(region_name=REGION)


@pytest.fixture
def secret_arn(aws: boto3.session.Session) -> str:
    # As the stack creates it: no value until a key is activated.
    arn: str = aws.client("secretsmanager").create_secret(Name=SECRET_NAME)["ARN"]
    return arn


def register(aws: boto3.session.Session, public_pem: str, slot: str = "a") -> str:
    """The public key in CloudFront, as the stack's key slot creates it; its id (the URLs' Key-Pair-Id)."""
    config = {"CallerReference": f"test-{slot}", "Name": f"photosky-dev-media-{slot}", "EncodedKey": public_pem}
    key_id: str = aws.client("cloudfront").create_public_key(PublicKeyConfig=config)["PublicKey"]["Id"]
    return key_id


def activate_file(aws: boto3.session.Session, secret_arn: str, key_pair_id: str, private_key: Path) -> str:
    return activate(
        aws.client("secretsmanager"),
        aws.client("cloudfront"),
        secret_id=secret_arn,
        key_pair_id=key_pair_id,
        private_key=private_key,
    )


def current_value(aws: boto3.session.Session, secret_arn: str) -> dict[str, str]:
    value: dict[str, str] = json.loads(
        aws.client("secretsmanager").get_secret_value(SecretId=secret_arn)["SecretString"]
    )
    return value


def has_value(aws: boto3.session.Session, secret_arn: str) -> bool:
    versions = aws.client("secretsmanager").list_secret_version_ids(SecretId=secret_arn)["Versions"]
    return bool(versions)


def test_activate_makes_the_key_and_its_id_the_secrets_current_value(
    aws: boto3.session.Session, secret_arn: str, tmp_path: Path
) -> None:
    private_key = tmp_path / "media-key.pem"
    key_pair_id = register(aws, generate(private_key))

    version = activate_file(aws, secret_arn, key_pair_id, private_key)

    value = current_value(aws, secret_arn)
    assert set(value) == {"key_pair_id", "private_key"}
    assert value["key_pair_id"] == key_pair_id
    stored = serialization.load_pem_private_key(value["private_key"].encode(), password=None)
    written = serialization.load_pem_private_key(private_key.read_bytes(), password=None)
    assert isinstance(stored, ec.EllipticCurvePrivateKey)
    assert isinstance(written, ec.EllipticCurvePrivateKey)
    assert stored.private_numbers() == written.private_numbers()
    assert aws.client("secretsmanager").get_secret_value(SecretId=secret_arn)["VersionId"] == version


def test_what_activate_stores_is_what_the_api_reads(
    aws: boto3.session.Session, secret_arn: str, tmp_path: Path
) -> None:
    media = pytest.importorskip("chalicelib.media")
    private_key = tmp_path / "media-key.pem"
    key_pair_id = register(aws, generate(private_key))
    activate_file(aws, secret_arn, key_pair_id, private_key)

    text = aws.client("secretsmanager").get_secret_value(SecretId=secret_arn)["SecretString"]
    parsed = media.parse_media_key(text)

    written = serialization.load_pem_private_key(private_key.read_bytes(), password=None)
    assert isinstance(written, ec.EllipticCurvePrivateKey)
    assert (parsed.key_pair_id, parsed.secret) == (key_pair_id, written.private_numbers().private_value)


def test_a_sec1_key_is_accepted_and_stored_as_pkcs8(
    aws: boto3.session.Session, secret_arn: str, tmp_path: Path
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    sec1 = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )
    assert sec1.startswith(b"-----BEGIN EC PRIVATE KEY-----")  # what `openssl ecparam -genkey` writes
    private_key = tmp_path / "openssl.pem"
    private_key.write_bytes(sec1)
    key_pair_id = register(aws, media_keys.public_pem(key))

    activate_file(aws, secret_arn, key_pair_id, private_key)

    assert current_value(aws, secret_arn)["private_key"].startswith("-----BEGIN PRIVATE KEY-----")


def test_a_private_key_cloudfront_does_not_hold_is_refused(
    aws: boto3.session.Session, secret_arn: str, tmp_path: Path
) -> None:
    # E.g. the id of the other slot's key: activating it would make every new media URL fail with 403.
    other_id = register(aws, generate(tmp_path / "other.pem"), slot="b")
    private_key = tmp_path / "media-key.pem"
    generate(private_key)

    with pytest.raises(MediaKeyError, match=f"{other_id} is not this private key's public half"):
        activate_file(aws, secret_arn, other_id, private_key)
    assert not has_value(aws, secret_arn)


class CloudFrontWithoutTheKey:
    """CloudFront's answer for an id it does not hold (moto 5.2.5 raises KeyError in-process instead)."""

    def get_public_key(self, Id: str) -> Any:
        raise ClientError(
            {"Error": {"Code": "NoSuchPublicKey", "Message": "The specified public key does not exist."}},
            "GetPublicKey",
        )


def test_an_unknown_key_pair_id_is_refused(aws: boto3.session.Session, secret_arn: str, tmp_path: Path) -> None:
    private_key = tmp_path / "media-key.pem"
    generate(private_key)
    secrets = aws.client("secretsmanager")
    with pytest.raises(MediaKeyError, match=r"K2JCJMDEHXQW5F.*NoSuchPublicKey"):
        activate(
            secrets,
            CloudFrontWithoutTheKey(),
            secret_id=secret_arn,
            key_pair_id="K2JCJMDEHXQW5F",
            private_key=private_key,
        )
    with pytest.raises(MediaKeyError, match="not a CloudFront public key id"):
        activate_file(aws, secret_arn, "K2JC JMDE", private_key)
    assert not has_value(aws, secret_arn)


def other_keys() -> dict[str, bytes]:
    p384 = ec.generate_private_key(ec.SECP384R1())
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    p256 = ec.generate_private_key(ec.SECP256R1())
    encrypted = p256.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase"),
    )
    public = media_keys.public_pem(p256).encode()
    return {"p384": pem_of(p384), "rsa": pem_of(rsa_key), "encrypted": encrypted, "public": public, "text": b"hello"}


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("p384", "not an ECDSA P-256 private key"),
        ("rsa", "not an ECDSA P-256 private key"),
        ("encrypted", "encrypted"),
        ("public", "not a PEM private key"),
        ("text", "not a PEM private key"),
    ],
)
def test_anything_but_a_p256_private_key_is_refused(
    aws: boto3.session.Session, secret_arn: str, tmp_path: Path, kind: str, message: str
) -> None:
    key_pair_id = register(aws, generate(tmp_path / "registered.pem"))
    private_key = tmp_path / f"{kind}.pem"
    private_key.write_bytes(other_keys()[kind])
    with pytest.raises(MediaKeyError, match=message):
        activate_file(aws, secret_arn, key_pair_id, private_key)
    assert not has_value(aws, secret_arn)


def test_the_command_line_activates_with_the_usual_aws_settings(
    aws: boto3.session.Session, secret_arn: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    private_key = tmp_path / "media-key.pem"
    assert main(["generate", "--out", str(private_key)]) == 0
    key_pair_id = register(aws, capsys.readouterr().out)

    argv = ["activate", "--secret-id", secret_arn, "--key-pair-id", key_pair_id, "--private-key", str(private_key)]
    assert main(argv) == 0

    assert f"activated {key_pair_id}" in capsys.readouterr().out
    assert current_value(aws, secret_arn)["key_pair_id"] == key_pair_id


def test_the_command_line_reports_a_refusal_without_a_traceback(
    aws: boto3.session.Session, secret_arn: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    private_key = tmp_path / "media-key.pem"
    generate(private_key)
    missing_secret = secret_arn.replace(SECRET_NAME, "photosky-dev-no-such-secret")
    key_pair_id = register(aws, media_keys.public_pem(media_keys.load_signing_key(private_key.read_bytes())))

    argv = ["activate", "--secret-id", missing_secret, "--key-pair-id", key_pair_id, "--private-key", str(private_key)]
    assert main(argv) == 1
    assert capsys.readouterr().err.startswith("ops.media_keys: error:")
    assert main(["activate", "--secret-id", secret_arn, "--key-pair-id", key_pair_id, "--private-key", "nope.pem"]) == 1
