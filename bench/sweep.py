"""How much CPU the scheduled job's AWS calls cost the function: what bounds one run's sweep (docs/SCALE.md).

`python -m bench.sweep [--calls N] [--rounds R]`. A purge is a GetItem, a Query, one TransactWriteItems and one S3
DeleteObjects, back to back (ops.capacity's trace; chalicelib/photos/service.py); on 16 threads (chalicelib/sweep.py)
the network waits overlap and the function's CPU becomes the bound, so the CPU one call costs the client decides how
many items a run settles a second. Each call here goes through botocore exactly as the app's clients make it
(chalicelib.deps' retry and timeout config, SigV4, the JSON/XML protocols) to a local HTTP server in another process
that answers at once with a fixed, valid response, so only the client's CPU is counted (time.process_time).

Baseline, in the same round: a bare HTTP POST of the same size to the same server (http.client), the transport
floor. Rounds alternate which goes first; the figures are the median over rounds with the smallest and largest, and
the ratio is taken within each round. Nothing here reaches AWS.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

from chalicelib.deps import AWS_CLIENT_CONFIG

# A tiny server, run in its own process so its CPU is not the client's: any POST gets a canned answer for the
# operation it names (X-Amz-Target for DynamoDB, ?delete for S3).
_SERVER = r"""
import http.server, json, sys
ANSWERS = {
    "DynamoDB_20120810.GetItem": json.dumps({"Item": {"PK": {"S": "USER#u"}, "SK": {"S": "PHOTO#p"},
        "status": {"S": "READY"}, "title": {"S": "A photo"}, "size_bytes": {"N": "123456"},
        "tags": {"L": [{"S": "a"}, {"S": "b"}]}}}).encode(),
    "DynamoDB_20120810.Query": json.dumps({"Items": [], "Count": 0, "ScannedCount": 0}).encode(),
    "DynamoDB_20120810.TransactWriteItems": b"{}",
}
S3_DELETED = (b'<?xml version="1.0" encoding="UTF-8"?><DeleteResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
    + b"".join(b"<Deleted><Key>previews/u/p/%d.webp</Key></Deleted>" % n for n in range(6)) + b"</DeleteResult>")
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out at once: no 40 ms delayed-ACK stall per answer
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        target = self.headers.get("X-Amz-Target")
        if target:
            body, kind = ANSWERS.get(target, b"{}"), "application/x-amz-json-1.0"
        elif "delete" in self.path:
            body, kind = S3_DELETED, "application/xml"
        else:
            body, kind = b"ok", "text/plain"
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
"""

# One vCPU at 1,769 MB (Lambda); the scheduled function has 1,536 MB (.chalice/config.json).
FULL_VCPU_MB, SWEEP_MB = 1769, 1536


@dataclass(frozen=True)
class Round:
    purge_cpu_us: float  # the four calls of one purge, client CPU
    floor_cpu_us: float  # four bare POSTs of the same sizes


def _clients(port: int) -> tuple[Any, Any]:
    # Throwaway credentials for the local server (it checks none): SigV4 still runs, as it does in Lambda.
    session = boto3.session.Session(
        aws_access_key_id="bench",
        aws_secret_access_key="bench",  # noqa: S106
        region_name="us-east-1",
    )
    endpoint = f"http://127.0.0.1:{port}"
    dynamodb = session.client("dynamodb", endpoint_url=endpoint, config=AWS_CLIENT_CONFIG)
    s3 = session.client(
        "s3",
        endpoint_url=endpoint,
        config=AWS_CLIENT_CONFIG.merge(Config(signature_version="s3v4", s3={"addressing_style": "path"})),
    )
    return dynamodb, s3


def _purge_calls(dynamodb: Any, s3: Any) -> Callable[[], None]:
    """One purge's requests, shaped as chalicelib makes them (keys, a three-item transaction, six objects)."""
    key = {"PK": {"S": "USER#0b7d3f0e-2c5a-4e61-9d1f-7a8b9c0d1e2f"}, "SK": {"S": "PHOTO#01JABCDEFGHJKMNPQRSTVWXYZ0"}}

    def purge() -> None:
        dynamodb.get_item(TableName="photosky-prod", Key=key, ConsistentRead=True)
        dynamodb.query(
            TableName="photosky-prod",
            KeyConditionExpression="PK = :pk AND begins_with(SK, :prefix)",
            ExpressionAttributeValues={":pk": key["PK"], ":prefix": {"S": "PHOTOALBUM#01JABCDEFGHJKMNPQRSTVWXYZ0#"}},
            ConsistentRead=True,
        )
        dynamodb.transact_write_items(
            TransactItems=[
                {
                    "Delete": {
                        "TableName": "photosky-prod",
                        "Key": key,
                        "ConditionExpression": "revision = :r",
                        "ExpressionAttributeValues": {":r": {"N": "7"}},
                    }
                },
                {
                    "Update": {
                        "TableName": "photosky-prod",
                        "Key": {"PK": key["PK"], "SK": {"S": "USAGE"}},
                        "UpdateExpression": "ADD photos :minus, bytes :size",
                        "ExpressionAttributeValues": {":minus": {"N": "-1"}, ":size": {"N": "-123456"}},
                    }
                },
                {
                    "Delete": {
                        "TableName": "photosky-prod",
                        "Key": {"PK": key["PK"], "SK": {"S": "SHA256#" + "ab" * 32}},
                    }
                },
            ]
        )
        s3.delete_objects(
            Bucket="photosky-prod-photos",
            Delete={"Objects": [{"Key": f"previews/u/p/{n}.webp"} for n in range(6)], "Quiet": True},
        )

    return purge


def _floor_calls(port: int) -> Callable[[], None]:
    """Four bare POSTs on one kept-alive connection: the HTTP transport alone."""
    connection = http.client.HTTPConnection("127.0.0.1", port)
    body = json.dumps({"TableName": "photosky-prod", "Key": {"PK": {"S": "x" * 60}}}).encode()

    def floor() -> None:
        for _ in range(4):
            connection.request("POST", "/", body=body, headers={"Content-Type": "application/json"})
            connection.getresponse().read()

    return floor


def _cpu_us_per(call: Callable[[], None], times: int) -> float:
    started = time.process_time()
    for _ in range(times):
        call()
    return (time.process_time() - started) / times * 1e6


def measure(calls: int = 300, rounds: int = 7, warm: int = 20) -> list[Round]:
    server = subprocess.Popen([sys.executable, "-c", _SERVER], stdout=subprocess.PIPE, text=True)  # noqa: S603
    try:
        port = int(server.stdout.readline()) if server.stdout else 0
        dynamodb, s3 = _clients(port)
        purge, floor = _purge_calls(dynamodb, s3), _floor_calls(port)
        for _ in range(warm):  # endpoint resolution, models, connections
            purge()
            floor()
        results = []
        for n in range(rounds):
            if n % 2:
                floor_us, purge_us = _cpu_us_per(floor, calls), _cpu_us_per(purge, calls)
            else:
                purge_us, floor_us = _cpu_us_per(purge, calls), _cpu_us_per(floor, calls)
            results.append(Round(purge_us, floor_us))
        return results
    finally:
        server.terminate()
        server.wait()


def report(results: list[Round], threads: int = 16, call_wait_ms: float = 8.0) -> str:
    purge = [r.purge_cpu_us for r in results]
    ratios = [r.purge_cpu_us / r.floor_cpu_us for r in results]
    median = statistics.median(purge)
    vcpu = SWEEP_MB / FULL_VCPU_MB
    cpu_bound = vcpu / (median / 1e6)
    network_bound = threads / (4 * call_wait_ms / 1000)
    return "\n".join(
        [
            f"One purge's four AWS calls (GetItem, Query, TransactWriteItems, DeleteObjects), client CPU over "
            f"{len(results)} rounds: median {median:,.0f} µs (min {min(purge):,.0f}, max {max(purge):,.0f}); "
            f"{statistics.median(ratios):.1f}× the bare HTTP floor (min {min(ratios):.1f}×, max {max(ratios):.1f}×).",
            f"At {SWEEP_MB} MB ({vcpu:.2f} vCPU) that is at most {cpu_bound:,.0f} purges/s of botocore alone; "
            f"{threads} threads at {call_wait_ms:g} ms a call wait {network_bound:,.0f}/s: the "
            f"{'CPU' if cpu_bound < network_bound else 'network'} binds. Machine: {os.cpu_count()} CPUs, load "
            f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}.",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300, help="purges per round and arm")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    print(report(measure(args.calls, args.rounds)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
