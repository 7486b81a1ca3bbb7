"""A browser's worth of one signed-in user, without the browser: the sign-in form over HTTP,
the Streamlit page over its websocket protocol, the map's tiles over HTTP.

Why not Chromium for every user: fifty headless Chromium processes do not fit beside the
server on two cores, and what loads the server is the same either way — the HTML, the
websocket session that runs the page script once per screen, and the tile requests. This
client speaks Streamlit's own protocol (``/_stcore/stream``, protobuf ``BackMsg`` /
``ForwardMsg``, the classes Streamlit's front end uses): it asks for a rerun of a page (by its
URL path, as the navigation does) and waits for ``script_finished``, collecting the text of
the elements the run sent. What it does not do is lay out and paint the page or run the map's
JavaScript; the tile requests the map would make are made explicitly (``tiles_for_view``).

Used by ``bench/bench_load.py`` and by ``tests/test_deploy_multi.py``.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from urllib.parse import urlparse

import requests
from websockets.sync.client import connect


class PageError(RuntimeError):
    """A page run that did not finish, or finished with an exception shown."""


@dataclass
class PageRun:
    seconds: float
    status: str  # finished | error | timeout
    texts: list[str] = field(default_factory=list)
    messages: int = 0
    bytes: int = 0


def _texts(msg, out: list[str]) -> None:
    """The visible text of one delta (markdown, headings, metrics, captions, alerts, exceptions)."""
    if msg.WhichOneof("type") != "delta":
        return
    d = msg.delta
    if d.WhichOneof("type") != "new_element":
        return
    el = d.new_element
    kind = el.WhichOneof("type")
    if kind is None:
        return
    body = getattr(el, kind)
    for attr in ("body", "label", "value", "message"):
        v = getattr(body, attr, None)
        if isinstance(v, str) and v:
            out.append(v)
    if kind == "exception":
        out.append("EXCEPTION: " + body.type + ": " + body.message)


class User:
    """One signed-in user's browser: a ``requests`` session (cookies) and a websocket."""

    def __init__(self, base: str, username: str, password: str, timeout: float = 120):
        self.base = base.rstrip("/")
        self.username = username
        self.password = password
        self.timeout = timeout
        self.http = requests.Session()
        self.ws = None
        self.pages: dict[str, str] = {}  # url path -> page script hash (from the navigation message)
        self.served_by: str | None = None  # the proxy's X-Wangge-App header, when there is one

    # --- HTTP ---------------------------------------------------------------------------------

    def sign_in(self) -> float:
        """The real form: GET it (the proxy's sticky cookie comes with the first response), POST
        name and password with this site's Origin; returns the seconds the POST took."""
        r = self.http.get(f"{self.base}/signin", timeout=self.timeout)
        r.raise_for_status()
        self.served_by = r.headers.get("X-Wangge-App", self.served_by)
        t0 = time.perf_counter()
        r = self.http.post(f"{self.base}/signin", data={"username": self.username, "password": self.password, "next": "/"},
                           headers={"Origin": self.base}, allow_redirects=False, timeout=self.timeout)
        took = time.perf_counter() - t0
        if r.status_code not in (302, 303) or "wangge_session" not in "".join(self.http.cookies.keys()):
            raise PageError(f"sign-in of {self.username} failed: HTTP {r.status_code}")
        return took

    def get(self, path: str) -> tuple[float, int, int]:
        """(seconds, status, bytes) of one GET with this user's cookies."""
        took, r = self.fetch(path)
        return took, r.status_code, len(r.content)

    def fetch(self, path: str):
        """(seconds, ``requests.Response``) of one GET with this user's cookies."""
        t0 = time.perf_counter()
        r = self.http.get(self.base + path, timeout=self.timeout)
        return time.perf_counter() - t0, r

    # --- the page over the websocket -----------------------------------------------------------

    def open(self) -> None:
        """The websocket a browser opens after the HTML: same cookies, this site's Origin."""
        u = urlparse(self.base)
        cookies = "; ".join(f"{k}={v}" for k, v in self.http.cookies.items())
        self.ws = connect(f"ws://{u.netloc}/_stcore/stream", subprotocols=["streamlit"],
                          additional_headers={"Cookie": cookies, "Origin": self.base},
                          open_timeout=self.timeout, max_size=None, compression=None, legacy=True)
        hdr = self.ws.response.headers.get("X-Wangge-App") if self.ws.response is not None else None
        self.served_by = hdr or self.served_by

    def run(self, page: str = "", query: str = "") -> PageRun:
        """Ask for a run of the page at URL path ``page`` ("" = the landing screen) and wait for
        ``script_finished``. ``status`` is ``error`` when the run shows an exception."""
        from streamlit.proto.BackMsg_pb2 import BackMsg
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        if self.ws is None:
            self.open()
        back = BackMsg()
        back.rerun_script.query_string = query
        back.rerun_script.page_name = page
        if page in self.pages:
            back.rerun_script.page_script_hash = self.pages[page]
        t0 = time.perf_counter()
        self.ws.send(back.SerializeToString())
        out = PageRun(0.0, "timeout")
        deadline = t0 + self.timeout
        while True:
            left = deadline - time.perf_counter()
            if left <= 0:
                break
            try:
                data = self.ws.recv(timeout=left)
            except TimeoutError:
                break
            out.messages += 1
            out.bytes += len(data)
            msg = ForwardMsg()
            msg.ParseFromString(data)
            kind = msg.WhichOneof("type")
            if kind == "navigation":
                self.pages = {p.url_pathname: p.page_script_hash for p in msg.navigation.app_pages}
            _texts(msg, out.texts)
            if kind == "script_finished":
                # FINISHED_SUCCESSFULLY = 0; a rerun requested by the script itself (st.rerun) goes on
                if msg.script_finished == 0 or msg.script_finished == 2:
                    out.status = "error" if any(t.startswith("EXCEPTION") for t in out.texts) else "finished"
                    break
        out.seconds = time.perf_counter() - t0
        return out

    def close(self) -> None:
        if self.ws is not None:
            try:
                self.ws.close()
            except Exception:  # noqa: BLE001 - closing a broken socket
                pass
            self.ws = None
        self.http.close()


def tile_xy(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2 ** z
    x = int((lon + 180.0) / 360.0 * n)
    y = int((1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n)
    return x, y


def tiles_for_view(lon: float, lat: float, z: int, cols: int = 3, rows: int = 2) -> list[tuple[int, int, int]]:
    """The 512-px tiles a 1280 × 800 map shows around a point at display zoom ``z``: ``cols`` ×
    ``rows`` tiles, as ``/tiles/{layer}/{z}/{x}/{y}.pbf?size=512`` names them (``x``/``y`` of the
    512-px grid at display zoom ``z``, i.e. the standard tile at ``z - 1``, webapp/tiles.py)."""
    cx, cy = tile_xy(lon, lat, max(z - 1, 0))
    return [(z, cx + dx, cy + dy) for dx in range(-(cols // 2), cols - cols // 2) for dy in range(-(rows // 2), rows - rows // 2)]
