"""`python -m ops.backfill`: bring photos stored before the library features into the timeline and favourites.

A photo written by an earlier PhotoSky has none of the index attributes its state now puts it under (GSI2's timeline,
for one) and was never counted in its month's ``MONTH#`` counter. Once the new code is deployed, run this once per
stage (against the dev stack by default, or ``--table`` in AWS with credentials that may Scan and write the table):
each such photo is rewritten with its index attributes and a new revision, and counted in its month, in one
transaction. It is safe with the API and the worker running: the rewrite is conditioned on the revision read, and
any write by the new code counts a photo it finds uncounted (``Photo.indexed``), so no photo is counted twice and
none is missed; a photo written meanwhile is already done. Running it again finds nothing to do.

Photos stored earlier have no ``sha256`` (the worker now hashes each upload as it verifies it), so they are not
checked for duplicates; hashing them would mean reading every original back from S3.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from chalicelib.photos.repository import DynamoPhotoRepository, photo_from_item

PROJECT_DIR = Path(__file__).resolve().parent.parent


def legacy_photos(client: Any, table: str) -> Iterator[dict[str, Any]]:
    """Every photo item without the `indexed` mark (a Scan: run once, not on a request path)."""
    scan: dict[str, Any] = {
        "TableName": table,
        "FilterExpression": "entity = :photo AND attribute_not_exists(#indexed)",
        "ExpressionAttributeNames": {"#indexed": "indexed"},  # a DynamoDB reserved word
        "ExpressionAttributeValues": {":photo": {"S": "photo"}},
        "ConsistentRead": True,
    }
    while True:
        page = client.scan(**scan)
        yield from page.get("Items", [])
        if "LastEvaluatedKey" not in page:
            return
        scan["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def backfill(client: Any, table: str) -> dict[str, int]:
    """Rewrite each legacy photo through the repository (so it is placed and counted exactly as a new write would
    be); counts of what was done."""
    repository = DynamoPhotoRepository(client, table)
    counts = {"rewritten": 0, "changed_meanwhile": 0}
    for item in legacy_photos(client, table):
        photo = photo_from_item(item)
        for _ in range(4):
            current = repository.get(photo.owner_id, photo.photo_id)
            if current is None or current.indexed:
                counts["changed_meanwhile"] += 1  # deleted, or written by the new code (which counted it)
                break
            if repository.replace(dataclasses.replace(current, revision=current.revision + 1), current):
                counts["rewritten"] += 1
                break
        else:
            raise RuntimeError(f"photo {photo.owner_id}/{photo.photo_id} kept changing; run again")
    return counts


def _client(args: argparse.Namespace) -> tuple[Any, str]:
    if args.table:
        import boto3

        return boto3.session.Session().client("dynamodb"), args.table
    outputs: Mapping[str, Any] = json.loads(args.outputs.read_text())
    from devstack.clients import emulated_client

    return emulated_client("dynamodb", outputs), outputs["table_name"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops.backfill", description=__doc__.splitlines()[0])
    parser.add_argument("--outputs", type=Path, default=PROJECT_DIR / ".devstack" / "outputs.json")
    parser.add_argument("--table", help="the stage's table in AWS (default: the dev stack's)")
    args = parser.parse_args(argv)
    try:
        client, table = _client(args)
    except FileNotFoundError:
        print(f"backfill: no {args.outputs}: start the dev stack (make dev), or pass --table", file=sys.stderr)
        return 2
    counts = backfill(client, table)
    print(json.dumps(counts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
