"""scripts/smoke-test.sh and scripts/alb-shift.sh, the two steps release.yml's blue-green deployment rests on.

The smoke test runs against a real HTTP server on 127.0.0.1; alb-shift runs with a stand-in `aws` first on
PATH that records its arguments, so the listener call it would make is checked without an AWS account.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.deploy.tooling import ROOT

BLUE = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/salescast-dev-blue/1"
GREEN = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/salescast-dev-green/2"
LISTENER = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/salescast-dev/3/4"


def script(name: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(ROOT / "scripts" / name), *args], capture_output=True, text=True, timeout=60, env=env, check=False
    )


@pytest.fixture
def api() -> Iterator[tuple[str, dict[str, int]]]:
    """An HTTP server answering each path with the status set in the yielded dict (200 by default)."""
    statuses: dict[str, int] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(statuses.get(self.path, 200))
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", statuses
    finally:
        server.shutdown()
        server.server_close()


def test_smoke_test_passes_when_every_check_answers_200(api: tuple[str, dict[str, int]]) -> None:
    url, _ = api
    result = script("smoke-test.sh", url, "3")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"smoke test passed: 3 x 3 requests to {url}"


def test_smoke_test_fails_on_a_replica_that_is_not_ready(api: tuple[str, dict[str, int]]) -> None:
    url, statuses = api
    statuses["/api/v1/ready"] = 503
    result = script("smoke-test.sh", url, "3")
    assert result.returncode == 1
    assert result.stderr.strip() == "smoke test failed: GET /api/v1/ready answered 503"


def test_smoke_test_fails_when_nothing_answers() -> None:
    result = script("smoke-test.sh", "http://127.0.0.1:9", "1")
    assert result.returncode == 1
    assert result.stderr.strip() == "smoke test failed: GET /api/v1/health answered 000"


def fake_aws(tmp_path: Path, answer: str = "") -> dict[str, str]:
    """PATH with an `aws` that appends its arguments (JSON) to calls.jsonl and prints `answer`."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    aws = bin_dir / "aws"
    aws.write_text(
        "#!/usr/bin/env python3\nimport json, sys\n"
        f"open({str(tmp_path / 'calls.jsonl')!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
        f"print({answer!r})\n"
    )
    aws.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}


def calls(tmp_path: Path) -> list[list[str]]:
    return [json.loads(line) for line in (tmp_path / "calls.jsonl").read_text().splitlines()]


def test_alb_shift_sets_both_weights_on_the_listener(tmp_path: Path) -> None:
    result = script("alb-shift.sh", LISTENER, BLUE, GREEN, "90", "10", env=fake_aws(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "listener weights: blue 90, green 10"
    [call] = calls(tmp_path)
    assert call[:4] == ["elbv2", "modify-listener", "--listener-arn", LISTENER]
    actions = json.loads(call[call.index("--default-actions") + 1])
    assert actions == [
        {
            "Type": "forward",
            "ForwardConfig": {
                "TargetGroups": [{"TargetGroupArn": BLUE, "Weight": 90}, {"TargetGroupArn": GREEN, "Weight": 10}],
                "TargetGroupStickinessConfig": {"Enabled": False},
            },
        }
    ]


@pytest.mark.parametrize(
    ("blue", "green", "message"),
    [
        ("1000", "0", "weights are integers 0-999, got 1000"),
        ("0", "0", "both weights are 0: nothing would be served"),
        ("ten", "0", "weights are integers 0-999, got ten"),
    ],
)
def test_alb_shift_refuses_bad_weights_without_calling_aws(tmp_path: Path, blue: str, green: str, message: str) -> None:
    result = script("alb-shift.sh", LISTENER, BLUE, GREEN, blue, green, env=fake_aws(tmp_path))
    assert result.returncode == 2
    assert result.stderr.strip() == message
    assert not (tmp_path / "calls.jsonl").exists()


@pytest.mark.parametrize(("weights", "live"), [("90 10", "blue"), ("0 100", "green"), ("50 50", "blue")])
def test_alb_shift_names_the_live_color(tmp_path: Path, weights: str, live: str) -> None:
    blue_weight, green_weight = weights.split()
    answer = f"{BLUE}\t{blue_weight}\n{GREEN}\t{green_weight}"
    result = script("alb-shift.sh", "--live", LISTENER, BLUE, GREEN, env=fake_aws(tmp_path, answer))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == live
