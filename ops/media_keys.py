"""`python -m ops.media_keys`: the key pair CloudFront checks PhotoSky's signed media URLs with (docs/MEDIA.md).

    generate --out media-key.pem
        Writes a new ECDSA P-256 private key (PKCS #8 PEM, readable by you alone) and prints its public key: deploy
        the stack with that in an empty key slot (MediaPublicKeyA or MediaPublicKeyB).
    activate --secret-id <MediaSigningKeySecretArn> --key-pair-id <MediaPublicKey?Id> --private-key media-key.pem
        Checks the file is a P-256 private key whose public half is the one CloudFront holds under that id, then
        makes {"key_pair_id", "private_key"} the secret's current value. Every API container signs with it within
        one URL window (PHOTOSKY_MEDIA_URL_WINDOW_SECONDS).

Runs on an operator's machine with AWS credentials (cloudfront:GetPublicKey, secretsmanager:PutSecretValue), never
in Lambda. boto3 reads the usual AWS settings, AWS_ENDPOINT_URL included.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient


class MediaKeyError(Exception):
    pass


def generate(out: Path) -> str:
    """Write a new P-256 private key to `out` (created 0600, never overwritten); its public key in PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    # Created with its final mode, so the key is never readable by others, not even between open and chmod.
    try:
        descriptor = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise MediaKeyError(f"{out} exists: a key is never overwritten (choose another --out)") from None
    with os.fdopen(descriptor, "wb") as file:
        file.write(pem)
    return public_pem(key)


def public_pem(key: ec.EllipticCurvePrivateKey) -> str:
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return public.decode("ascii")


def load_signing_key(pem: bytes) -> ec.EllipticCurvePrivateKey:
    """The P-256 private key in `pem` (PKCS #8 or SEC 1, unencrypted); MediaKeyError for anything else."""
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except TypeError:
        raise MediaKeyError("the private key is encrypted: give an unencrypted PEM (generate writes one)") from None
    except ValueError:
        raise MediaKeyError("not a PEM private key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise MediaKeyError("not an ECDSA P-256 private key (PhotoSky signs media URLs with P-256)")
    return key


def check_public_key(cloudfront: Any, key_pair_id: str, key: ec.EllipticCurvePrivateKey) -> None:
    """Refuse to activate a key CloudFront would not verify: the public key stored under `key_pair_id` must be
    this private key's public half (else every media URL signed from now on would be refused with 403)."""
    try:
        stored = cloudfront.get_public_key(Id=key_pair_id)["PublicKey"]["PublicKeyConfig"]["EncodedKey"]
    except ClientError as e:
        raise MediaKeyError(f"could not read CloudFront's public key {key_pair_id}: {e}") from e
    try:
        public = serialization.load_pem_public_key(stored.encode("ascii"))
    except ValueError:
        raise MediaKeyError(f"CloudFront's public key {key_pair_id} is not a PEM public key") from None
    if (
        not isinstance(public, ec.EllipticCurvePublicKey)
        or public.public_numbers() != key.public_key().public_numbers()
    ):
        raise MediaKeyError(f"CloudFront's public key {key_pair_id} is not this private key's public half")


def secret_value(key_pair_id: str, key: ec.EllipticCurvePrivateKey) -> str:
    """The secret's JSON, as chalicelib.media.parse_media_key reads it."""
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return json.dumps({"key_pair_id": key_pair_id, "private_key": pem.decode("ascii")})


def activate(
    secrets: SecretsManagerClient, cloudfront: Any, *, secret_id: str, key_pair_id: str, private_key: Path
) -> str:
    """Make the key in `private_key`, known to CloudFront as `key_pair_id`, the one the API signs with. Returns the
    new secret version's id."""
    if not key_pair_id.isalnum():
        raise MediaKeyError(f"{key_pair_id!r} is not a CloudFront public key id (e.g. K2JCJMDEHXQW5F)")
    key = load_signing_key(private_key.read_bytes())
    check_public_key(cloudfront, key_pair_id, key)
    version: str = secrets.put_secret_value(SecretId=secret_id, SecretString=secret_value(key_pair_id, key))[
        "VersionId"
    ]
    return version


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ops.media_keys",
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.splitlines()[2:]),
    )
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("generate", help="write a new private key; print its public key")
    make.add_argument("--out", required=True, type=Path, help="where to write the private key (must not exist)")
    use = commands.add_parser("activate", help="put a private key in the media signing key secret")
    use.add_argument("--secret-id", required=True, help="the MediaSigningKeySecretArn stack output")
    use.add_argument("--key-pair-id", required=True, help="the key's MediaPublicKeyAId or MediaPublicKeyBId output")
    use.add_argument("--private-key", required=True, type=Path, help="the file `generate` wrote")
    args = parser.parse_args(argv)
    try:
        if args.command == "generate":
            print(generate(args.out), end="")
            print(f"wrote the private key to {args.out} (mode 0600); deploy with the public key above", file=sys.stderr)
            return 0
        import boto3

        session = boto3.session.Session()
        version = activate(
            session.client("secretsmanager"),
            # CloudFront is global; its API is in us-east-1 whatever the stack's region.
            session.client("cloudfront", region_name="us-east-1"),
            secret_id=args.secret_id,
            key_pair_id=args.key_pair_id,
            private_key=args.private_key,
        )
    except (MediaKeyError, OSError, ClientError, BotoCoreError) as e:
        print(f"ops.media_keys: error: {e}", file=sys.stderr)
        return 1
    print(f"activated {args.key_pair_id} (secret version {version}); the API signs with it within one URL window")
    return 0


if __name__ == "__main__":
    sys.exit(main())
