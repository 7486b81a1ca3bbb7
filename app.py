"""Wangge dashboard entry point: ``streamlit run app.py``.

``streamlit run`` finds the ``st.App`` below and serves it with uvicorn, so the map's
vector tiles (``/tiles/{layer}/{z}/{x}/{y}.pbf``, from PostGIS, see ``gis/tiles.py``)
come from the dashboard's own process and port: nothing else to start, nothing to
proxy, and no request leaves the machine. The page script is ``ui/main.py``.

Sign-in is a plain form at ``/signin`` (``ui/signin.py``) because only an HTTP response
can set the HttpOnly session cookie that both the pages and the tiles check.
"""
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import streamlit as st

from starlette.middleware import Middleware

from api import open311
from gis.tiles import routes, warm
from ui import signin


@asynccontextmanager
async def lifespan(_app: st.App) -> AsyncIterator[None]:
    """Warm the tile queries at start-up (in a thread: it talks to the database)."""
    try:
        await anyio.to_thread.run_sync(warm)
    except Exception as exc:  # no database yet: the pages say so; tiles warm on first use
        print(f"tile warm-up skipped: {exc}")
    yield


app = st.App("ui/main.py", routes=[*signin.routes(), *routes(), *open311.routes()], middleware=[Middleware(signin.SignInRedirect)],
             lifespan=lifespan)
