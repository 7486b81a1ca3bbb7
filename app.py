"""Wangge dashboard entry point: ``streamlit run app.py``.

``streamlit run`` finds the ``st.App`` below and serves it with uvicorn, so the map's
vector tiles (``/tiles/{layer}/{z}/{x}/{y}.pbf``, from PostGIS, see ``gis/tiles.py``)
come from the dashboard's own process and port: nothing else to start, nothing to
proxy, and no request leaves the machine. The page script is ``ui/main.py``.
"""
import streamlit as st

from gis.tiles import routes

app = st.App("ui/main.py", routes=routes())
