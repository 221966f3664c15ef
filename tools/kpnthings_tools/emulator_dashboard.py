"""The emulator's dashboard: the bench-test page and its files, served from ``static/``.

``GET /`` is index.html; app.js, app.css and the vendored uPlot chart library are under
``/static/``. The page reads the JSON API (emulator_api); the files hold no data, so they are
served to anyone, with a policy that lets them load and fetch from this origin only.
"""

from pathlib import Path

# The dashboard's files, found once: only what is in static/ can be served, so no request path
# can reach another file. Looked up beside this module, which is how the package ships them.
_STATIC_DIR = Path(__file__).resolve().parent / "static"
_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}
_STATIC_FILES = {
    "/static/" + p.relative_to(_STATIC_DIR).as_posix(): p
    for p in (sorted(_STATIC_DIR.rglob("*")) if _STATIC_DIR.is_dir() else ())
    if p.is_file() and p.suffix in _CONTENT_TYPES
}
# Scripts and styles from this origin only, data via fetch to this origin only: even a value a
# device sends that slipped into the page as markup could not run or load anything.
_PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def page_for(path):
    """The file a request path names (``/`` is index.html), or None: only what is in static/
    can be served, so no request path can reach another file."""
    return _STATIC_FILES.get("/static/index.html" if path == "/" else path)


def page(path):
    """(body, content type, headers) for one of the dashboard's files (page_for)."""
    with open(path, "rb") as f:
        body = f.read()
    headers = (
        ("Content-Security-Policy", _PAGE_POLICY),
        ("X-Content-Type-Options", "nosniff"),
        ("Cache-Control", "no-cache"),
    )
    return body, _CONTENT_TYPES[path.suffix], headers
