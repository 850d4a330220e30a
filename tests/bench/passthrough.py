"""The benchmark's row 3: the least an aiohttp proxy can do, to compare the real one against.

`python tests/bench/passthrough.py --upstream http://127.0.0.1:18081 --port 18082` serves every
method and path: it reads the body, forwards the request through one pooled ClientSession with
the end-to-end headers, reads the answer and returns it. No policies, no metrics, no log, no
access log. It uses uvloop when installed, as the proxy does.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)
SESSION = web.AppKey("session", aiohttp.ClientSession)


def _end_to_end(raw: tuple[tuple[bytes, bytes], ...]) -> CIMultiDict[str]:
    headers: CIMultiDict[str] = CIMultiDict()
    for name, value in raw:
        key = name.decode("latin-1")
        if key.lower() not in _HOP_BY_HOP:
            headers.add(key, value.decode("latin-1"))
    return headers


def create_app(upstream: str, *, trust_env: bool = False) -> web.Application:
    """An application that forwards everything to `upstream`.

    `trust_env=True` makes the session read proxy variables and ~/.netrc (aiohttp then looks up
    ~/.netrc in a worker thread for every request); the proxy's own session does not.
    """
    base = upstream.rstrip("/")

    async def forward(request: web.Request) -> web.Response:
        body = await request.read()
        async with request.app[SESSION].request(
            request.method,
            URL(base + request.raw_path, encoded=True),
            headers=_end_to_end(request.raw_headers),
            data=body,
            allow_redirects=False,
        ) as answer:
            payload = await answer.read()
            response = web.Response(status=answer.status, reason=answer.reason, body=payload)
            response.headers.clear()
            response.headers.extend(_end_to_end(answer.raw_headers))
            return response

    async def session(app: web.Application) -> AsyncIterator[None]:
        app[SESSION] = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=256),
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
            trust_env=trust_env,
        )
        yield
        await app[SESSION].close()

    app = web.Application(client_max_size=1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", forward)
    app.cleanup_ctx.append(session)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", required=True, help="e.g. http://127.0.0.1:18081")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--trust-env", action="store_true", help="read proxy variables, ~/.netrc")
    args = parser.parse_args()
    loop_factory = None
    try:
        import uvloop
    except ImportError:
        pass
    else:
        loop_factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(
            _serve(create_app(args.upstream, trust_env=args.trust_env), args.host, args.port)
        )


async def _serve(app: web.Application, host: str, port: int) -> None:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    main()
