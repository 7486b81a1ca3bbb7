"""Everything ``st.App`` serves besides the page script: routes, middleware, start-up.

``streamlit run app.py`` finds the ``st.App`` in ``app.py`` and serves it with uvicorn, so
the map's vector tiles (``/tiles/{layer}/{z}/{x}/{y}.pbf``), the sign-in form
(``/signin``) and the street leader's first view (``/glance``) come from the dashboard's own process and port.
"""
from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from starlette.middleware import Middleware

from webapp import glance, open311, signin, tiles


def routes() -> list:
    return [*signin.routes(), *glance.routes(), *tiles.routes(), *open311.routes()]


def middleware() -> list[Middleware]:
    return [Middleware(signin.SignInRedirect)]


@asynccontextmanager
async def lifespan(_app) -> AsyncIterator[None]:
    """Warm the tile queries and the leader's first view at start-up (in a thread: it talks to the database)."""
    try:
        await anyio.to_thread.run_sync(tiles.warm)
        await anyio.to_thread.run_sync(glance.warm)
    except Exception as exc:  # no database yet: the pages say so; tiles warm on first use
        print(f"tile warm-up skipped: {exc}")
    yield
