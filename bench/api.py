"""How many sends the API accepts a second, next to a bare Django JSON view.

    .venv/bin/python bench/api.py [--database-url URL] [--redis-url URL]
        [--workers 2] [--seconds 10] [--connections 32]

Serves TMC with uvicorn (``--workers`` processes, no access log) on a free
loopback port, on a scratch database, and drives it with wrk (Debian's
``wrk`` package) from a second process:

1. ``GET /health/``: a bare Django JSON view through the same middleware,
   server and workers; no key, no database. This is the ceiling.
2. ``POST /api/v1/messages``: one text to one number, with an API key
   (keyed-hash lookup, rate limit, validation, credit debit, sealed insert,
   activity event, queueing after commit).
3. ``POST /api/v1/campaigns``: one text to 1,000 numbers a request.

For each it prints requests/s, the p99 latency and how many answers were
not the expected status (they are not counted as accepted). The rate limit is
raised out of the way: it is measured by its own tests. Nothing is sent to a
gateway: the queued work waits in the queue, which no consumer reads.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess  # nosec B404
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _setup import django_start

ROOT = Path(__file__).resolve().parent.parent
BODY = "Your parcel arrives today between 10:00 and 12:00."
CAMPAIGN_SIZE = 1000
PASSWORD = "Bench-Horse-Battery-42"  # noqa: S105  # nosec B105

# wrk's Lua: one request shape, and a count of answers that are not `status`.
WRK_SCRIPT = """
wrk.method = "{method}"
wrk.body = {body}
wrk.headers["Content-Type"] = "application/json"
{auth}
-- Each wrk thread has its own Lua state: count there, sum up in done().
local threads = {{}}
setup = function(thread) table.insert(threads, thread) end
unexpected = 0
last_unexpected = 0
response = function(status, headers, body)
  if status ~= {status} then
    unexpected = unexpected + 1
    last_unexpected = status
  end
end
done = function(summary, latency, requests)
  local total, last = 0, 0
  for _, thread in ipairs(threads) do
    total = total + thread:get("unexpected")
    if thread:get("last_unexpected") ~= 0 then last = thread:get("last_unexpected") end
  end
  io.write(string.format("unexpected %d last %d\\n", total, last))
end
"""


@dataclass(frozen=True)
class Run:
    rate: float  # requests a second, whatever the answer
    p99: float  # milliseconds
    total: int
    unexpected: int  # answers other than the status expected
    last_unexpected: int  # the status of the last of those
    socket_errors: int


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _prepare() -> str:
    """An account with credit, an approved sender and a sending key."""
    from tmc.accounts.services import account_create, credits_add
    from tmc.api.services import api_key_create
    from tmc.messaging.models import SenderId

    organisation, controller = account_create(
        name="Bench",
        controller_username="bench-controller",
        controller_email="controller@bench.example",
        controller_password=PASSWORD,
        trial=False,
    )
    SenderId.objects.create(
        organisation=organisation, value="Bench", is_approved=True, is_default=True
    )
    credits_add(organisation=organisation, amount=50_000_000, reason="Bench")
    created = api_key_create(actor=None, user=controller, name="Bench", scopes=["send"])
    return str(created.raw)


def _serve(port: int, workers: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "TMC_API_RATE_PER_SECOND": "10000",
        "TMC_API_RATE_BURST": "1000000000",
        "TMC_SSL_REDIRECT": "0",
    }
    server = subprocess.Popen(  # noqa: S603  # nosec B603
        [
            sys.executable,
            "-m",
            "uvicorn",
            "tmc.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--lifespan",
            "off",
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        # The app's own log (INFO, as in production), kept to show a fault.
        stderr=open(Path(os.environ["TMC_HOME"]) / "server.log", "wb"),  # noqa: SIM115
        cwd=ROOT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(  # nosec B310
                f"http://127.0.0.1:{port}/health/", timeout=2
            ):
                return server
        except OSError:
            time.sleep(0.3)
    server.kill()
    raise SystemExit("the server did not start")


def _check(url: str, body: str, key: str, status: int) -> None:
    """One request first: a bench of refusals would measure nothing."""
    request = urllib.request.Request(  # noqa: S310
        url,
        data=body.encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:  # noqa: S310  # nosec B310
            got, text = answer.status, answer.read()[:300]
    except urllib.error.HTTPError as refusal:
        got, text = refusal.code, refusal.read()[:300]
    if got != status:
        log = (Path(os.environ["TMC_HOME"]) / "server.log").read_text()[-3000:]
        raise SystemExit(f"{url} answered {got}, not {status}: {text!r}\n{log}")


def _lua_string(text: str) -> str:
    return "[==[" + text + "]==]"


def _wrk(
    url: str, *, method: str, body: str, key: str, status: int, seconds: int, conns: int
) -> Run:
    """One wrk run's figures."""
    auth = f'wrk.headers["Authorization"] = "Bearer {key}"' if key else ""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(
            WRK_SCRIPT.format(
                method=method, body=_lua_string(body), auth=auth, status=status
            )
        )
    try:
        result = subprocess.run(  # noqa: S603  # nosec B603
            [
                shutil.which("wrk") or "wrk",
                "-t1",
                f"-c{conns}",
                f"-d{seconds}s",
                "--latency",
                "--timeout",
                "30s",
                "-s",
                script.name,
                url,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        os.unlink(script.name)
    out = result.stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99_value, p99_unit = re.search(r"99%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
    p99 = float(p99_value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99_unit]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    found = re.search(r"unexpected (\d+) last (\d+)", out)
    unexpected, last = int(found.group(1)), int(found.group(2))  # type: ignore[union-attr]
    errors = int(
        sum(int(n) for n in re.findall(r"(?:timeout|read|write|connect) (\d+)", out))
    )
    return Run(rate, p99, total, unexpected, last, errors)


def _report(label: str, run: Run, *, per_request: int = 1) -> float:
    accepted = run.rate * (run.total - run.unexpected) / run.total if run.total else 0
    extra = f" ({accepted * per_request:,.0f} texts/s)" if per_request > 1 else ""
    odd = f" (the last {run.last_unexpected})" if run.unexpected else ""
    print(
        f"{label}: {run.rate:,.0f} requests/s, p99 {run.p99:.1f} ms, "
        f"{run.total:,} requests, {run.unexpected:,} not as expected{odd}, "
        f"{run.socket_errors:,} socket errors or timeouts; "
        f"accepted {accepted:,.0f}/s{extra}"
    )
    return accepted


def _faults() -> None:
    """The kinds of exception the server logged, with how often."""
    log = (Path(os.environ["TMC_HOME"]) / "server.log").read_text(errors="replace")
    kinds = re.findall(r"^(\w+(?:\.\w+)*(?:Error|Exception)\b.*)$", log, re.M)
    for kind in sorted(set(kinds)):
        print(f"server fault, {kinds.count(kind)} times: {kind[:200]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default="")
    parser.add_argument("--redis-url", default="")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")

    if args.redis_url:
        os.environ["TMC_REDIS_URL"] = args.redis_url
    else:
        os.environ.pop("TMC_REDIS_URL", None)
    label = django_start(args.database_url)
    key = _prepare()
    from django.db import connections

    connections.close_all()
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    print(
        f"database: {label}; Redis: {'yes' if args.redis_url else 'no'}; "
        f"server: uvicorn, {args.workers} workers; load: wrk, 1 thread, "
        f"{args.connections} connections, {args.seconds} s a run; "
        f"load average before: {os.getloadavg()[0]:.2f}"
    )
    server = _serve(port, args.workers)
    try:
        run = {"key": key, "seconds": args.seconds, "conns": args.connections}
        # A short warm-up: each worker's first requests import and connect.
        _wrk(
            f"{base}/health/",
            method="GET",
            body="",
            status=200,
            **{**run, "seconds": 2},
        )
        bare = _report(
            "bare Django JSON view (GET /health/)",
            _wrk(f"{base}/health/", method="GET", body="", status=200, **run),
        )
        single = json.dumps({"to": "07400 123456", "body": BODY})
        _check(f"{base}/api/v1/messages", single, key, 201)
        sends = _report(
            "single sends (POST /api/v1/messages)",
            _wrk(
                f"{base}/api/v1/messages", method="POST", body=single, status=201, **run
            ),
        )
        many = json.dumps(
            {"to": [f"07400 {n:06d}" for n in range(CAMPAIGN_SIZE)], "body": BODY}
        )
        _report(
            f"{CAMPAIGN_SIZE:,}-recipient sends (POST /api/v1/campaigns)",
            _wrk(
                f"{base}/api/v1/campaigns",
                method="POST",
                body=many,
                status=201,
                **{**run, "conns": min(4, args.connections)},
            ),
            per_request=CAMPAIGN_SIZE,
        )
        print(f"ratio single sends / bare view: {sends / bare:.2f}")
        print(
            f"single sends target >= 1,000/s: {'met' if sends >= 1000 else 'not met'}"
        )
        print(f"load average after: {os.getloadavg()[0]:.2f}")
        _faults()
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
