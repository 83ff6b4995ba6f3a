#!/usr/bin/env python3
"""Open N keep-alive connections, send one request on each, then hold them idle.

    idle_clients.py [--host 127.0.0.1] [--tls] PORT PATH N HOLD_SECONDS

Each connection sends `GET PATH HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n`, reads the whole
response (Content-Length or chunked), and then stays open without sending anything
until HOLD_SECONDS have passed since the last one was opened. Then all are closed and
the program exits. With --tls each connection speaks TLS (the server's certificate
is not checked: loopback measurements only). Standard library only; bounded in time (connecting is limited by
--open-timeout).

Progress goes to stderr. On stdout it prints one `READY opened=... ` line once every
connection is open and idle (the moment to measure the server), and one `DONE ...`
line at the end with how many were still open (not closed by the server) after the
hold.
"""

import argparse
import asyncio
import resource
import ssl
import sys
import time


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        except (ValueError, OSError):
            pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


async def read_response(reader):
    """Read one HTTP/1.1 response; return (status, keep_alive)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    keep_alive = "close" not in headers.get("connection", "").lower()
    if "chunked" in headers.get("transfer-encoding", "").lower():
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";", 1)[0].strip(), 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif "content-length" in headers:
        await reader.readexactly(int(headers["content-length"]))
    elif status not in (204, 304) and not (100 <= status < 200):
        keep_alive = False  # body delimited by close: nothing to hold
    return status, keep_alive


async def one(host, port, request, sem, timeout, stats, conns, tls):
    async with sem:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port, ssl=tls), timeout)
            writer.write(request)
            await asyncio.wait_for(writer.drain(), timeout)
            status, keep_alive = await asyncio.wait_for(read_response(reader), timeout)
        except (OSError, ssl.SSLError, asyncio.TimeoutError, asyncio.IncompleteReadError,
                asyncio.LimitOverrunError, ValueError, IndexError) as exc:
            key = type(exc).__name__
            stats["errors"][key] = stats["errors"].get(key, 0) + 1
            return
        stats["status"][status] = stats["status"].get(status, 0) + 1
        if not keep_alive:
            stats["not_keep_alive"] += 1
        conns.append((reader, writer))


async def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("port", type=int)
    ap.add_argument("path")
    ap.add_argument("n", type=int, help="connections to open")
    ap.add_argument("hold", type=float, help="seconds to hold them idle once all are open")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--tls", action="store_true", help="connect with TLS (certificate not checked)")
    ap.add_argument("--concurrency", type=int, default=256, help="connects in flight at once")
    ap.add_argument("--open-timeout", type=float, default=10.0, help="per connection, seconds")
    args = ap.parse_args()

    limit = raise_nofile()
    if limit < args.n + 64:
        print(f"warning: open-files limit {limit} is below {args.n} connections", file=sys.stderr)

    tls = None
    if args.tls:
        tls = ssl.create_default_context()
        tls.check_hostname = False
        tls.verify_mode = ssl.CERT_NONE
    request = f"GET {args.path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    sem = asyncio.Semaphore(args.concurrency)
    stats = {"status": {}, "errors": {}, "not_keep_alive": 0}
    conns = []
    t0 = time.monotonic()
    await asyncio.gather(*(one(args.host, args.port, request, sem, args.open_timeout, stats, conns, tls)
                           for _ in range(args.n)))
    took = time.monotonic() - t0
    statuses = " ".join(f"{k}:{v}" for k, v in sorted(stats["status"].items())) or "-"
    errors = " ".join(f"{k}:{v}" for k, v in sorted(stats["errors"].items())) or "-"
    print(f"READY opened={len(conns)} wanted={args.n} seconds={took:.2f} statuses={statuses} "
          f"errors={errors} not_keep_alive={stats['not_keep_alive']}", flush=True)

    await asyncio.sleep(args.hold)

    # A connection the server closed while idle has seen EOF by now.
    open_after = sum(1 for reader, _ in conns if not reader.at_eof())
    for _, writer in conns:
        writer.close()
    await asyncio.gather(*(w.wait_closed() for _, w in conns), return_exceptions=True)
    print(f"DONE held={args.hold:g}s still_open={open_after} closed_by_server={len(conns) - open_after}",
          flush=True)
    return 0 if len(conns) == args.n else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
