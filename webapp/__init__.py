"""The web floor: what the dashboard's own HTTP server answers besides the Streamlit pages.

Vector tiles (``webapp/tiles.py``), the sign-in form (``webapp/signin.py``), sessions behind
the HttpOnly cookie (``webapp/sessions.py``), and the Starlette routes, middleware and
start-up hook that ``app.py`` hands to ``st.App`` (``webapp/routes.py``). It sits above the
analyses (the tiles colour grids by ``analysis.overview``'s verdicts) and below the pages
(``ui/``), which read the signed-in user through ``webapp.sessions``.
"""
