"""Copy the map libraries the dashboard needs out of node_modules into static/vendor.

Why a copy: Streamlit serves only files under ``static/`` (``server.enableStaticServing``),
and the browser must never fetch Leaflet from a CDN (closed government networks).
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

# (package, path inside the package, destination under static/vendor)
FILES: list[tuple[str, str, str]] = [
    ("leaflet", "dist/leaflet.js", "leaflet/leaflet.js"),
    ("leaflet", "dist/leaflet.css", "leaflet/leaflet.css"),
    ("leaflet", "dist/images", "leaflet/images"),
    ("leaflet", "LICENSE", "leaflet/LICENSE"),
    ("leaflet.vectorgrid", "dist/Leaflet.VectorGrid.bundled.min.js", "leaflet.vectorgrid/Leaflet.VectorGrid.bundled.min.js"),
    ("leaflet.vectorgrid", "LICENSE", "leaflet.vectorgrid/LICENSE"),
]


def main(node_modules: Path, dest: Path) -> None:
    for package, inner, target in FILES:
        src = node_modules / package / inner
        out = dest / target
        out.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, out, dirs_exist_ok=True)
        elif src.exists():
            shutil.copy2(src, out)
        elif inner != "LICENSE":
            raise SystemExit(f"vendor_web: {src} is missing; is web/package.json complete?")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
