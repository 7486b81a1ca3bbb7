"""Wangge dashboard entry point: ``streamlit run app.py``.

``streamlit run`` finds the ``st.App`` below and serves it with uvicorn, so the map's
vector tiles (``/tiles/{layer}/{z}/{x}/{y}.pbf``, from PostGIS, see ``webapp/tiles.py``)
come from the dashboard's own process and port: nothing else to start, nothing to
proxy, and no request leaves the machine. The page script is ``ui/main.py``; the routes,
middleware and start-up hook are ``webapp/routes.py``.

Sign-in is a plain form at ``/signin`` (``webapp/signin.py``) because only an HTTP response
can set the HttpOnly session cookie that both the pages and the tiles check.
"""
import streamlit as st

from webapp.routes import lifespan, middleware, routes

app = st.App("ui/main.py", routes=routes(), middleware=middleware(), lifespan=lifespan)
