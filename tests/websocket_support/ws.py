"""WebSocket echo server and clients for tests/websocket.rs, on Python's
`websockets` library (installed by scripts/install-test-deps.sh).

  ws.py serve [CERT KEY]        echo server on 127.0.0.1; prints its port,
                                then `closed CODE` as each WebSocket ends
                                (the Close status it received; 1006: none);
                                exits when stdin closes
  ws.py echo URL [options]      text and binary frames up to 1 MiB, echoed
  ws.py many URL N [options]    N WebSockets open at once, each echoed twice
  ws.py hold URL [options]      one WebSocket driven by stdin lines:
                                `ping` -> `echoed`, `wait-close` -> `closed CODE`
                                (the Close status received; 1006: none)

options: --ca FILE (trust this CA), --header 'Name: value'.
A refused handshake prints `refused STATUS` and exits 3.
"""

import asyncio
import resource
import ssl
import sys

from websockets.asyncio.client import connect
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed, InvalidStatus

MAX = 2 * 1024 * 1024
SIZES = [0, 1, 125, 126, 65535, 65536, 1024 * 1024]


def options(args):
    ca, headers, rest = None, [], []
    i = 0
    while i < len(args):
        if args[i] == "--ca":
            ca = args[i + 1]
            i += 2
        elif args[i] == "--header":
            name, value = args[i + 1].split(":", 1)
            headers.append((name.strip(), value.strip()))
            i += 2
        else:
            rest.append(args[i])
            i += 1
    return ca, headers, rest


def open_ws(url, ca, headers):
    context = None
    if url.startswith("wss:"):
        context = ssl.create_default_context(cafile=ca)
    return connect(
        url,
        ssl=context,
        additional_headers=headers,
        max_size=MAX,
        open_timeout=20,
        close_timeout=10,
        ping_interval=None,
        # Frames as sent: the relayed byte counts are checked.
        compression=None,
    )


async def echo_server(cert, key):
    context = None
    if cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)

    async def echo(ws):
        try:
            async for message in ws:
                await ws.send(message)
        except ConnectionClosed:
            pass
        await ws.wait_closed()
        print(f"closed {ws.close_code}", flush=True)

    async with serve(echo, "127.0.0.1", 0, ssl=context, max_size=MAX, ping_interval=None) as server:
        print(server.sockets[0].getsockname()[1], flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)


async def echo_sizes(url, ca, headers):
    async with open_ws(url, ca, headers) as ws:
        for size in SIZES:
            text = ("ä" * size)[: max(size // 2, 0)] + "x" * (size - size // 2 * 2)
            await ws.send(text)
            assert await ws.recv() == text, f"text of {size}"
            data = bytes((i * 7) % 256 for i in range(size))
            await ws.send(data)
            assert await ws.recv() == data, f"binary of {size}"
    print("ok", flush=True)


async def many(url, n, ca, headers):
    sockets = await asyncio.gather(*(open_ws(url, ca, headers) for _ in range(n)))
    for round_ in range(2):
        async def one(i, ws):
            message = f"{round_}:{i}"
            await ws.send(message)
            assert await ws.recv() == message

        await asyncio.gather(*(one(i, ws) for i, ws in enumerate(sockets)))
        print(f"round {round_}", flush=True)
    await asyncio.gather(*(ws.close() for ws in sockets))
    print(f"ok {n}", flush=True)


async def hold(url, ca, headers):
    loop = asyncio.get_running_loop()
    async with open_ws(url, ca, headers) as ws:
        print("open", flush=True)
        count = 0
        while True:
            line = (await loop.run_in_executor(None, sys.stdin.readline)).strip()
            if line == "ping":
                count += 1
                await ws.send(f"ping {count}")
                assert await ws.recv() == f"ping {count}"
                print("echoed", flush=True)
            elif line == "wait-close" or not line:
                try:
                    while True:
                        await ws.recv()
                except ConnectionClosed:
                    await ws.wait_closed()
                    print(f"closed {ws.close_code}", flush=True)
                return


def raise_fd_limit():
    """Many WebSockets at once need more descriptors than a default soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main():
    raise_fd_limit()
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "serve":
        asyncio.run(echo_server(*(args + [None, None])[:2]))
        return
    ca, headers, rest = options(args)
    try:
        if mode == "echo":
            asyncio.run(echo_sizes(rest[0], ca, headers))
        elif mode == "many":
            asyncio.run(many(rest[0], int(rest[1]), ca, headers))
        elif mode == "hold":
            asyncio.run(hold(rest[0], ca, headers))
    except InvalidStatus as e:
        print(f"refused {e.response.status_code}", flush=True)
        sys.exit(3)


if __name__ == "__main__":
    main()
