"""`adw-patternd serve`: the live page, a read-only web server over the configured database.

The standard library's ThreadingHTTPServer, one read-only connection (SQLite mode=ro, or a
PostgreSQL session whose transactions are read-only) behind a lock, the pages of
outputs/pages.py. It runs as its own process beside `run`, or inside the daemon
(config.yaml: `serve: {in_daemon: true}`). Idle, it sleeps in select(): an open page asks
/api/revision once a second (one statement answered from memory) and fetches itself again
only when the database changed.

Safe by default: it binds to loopback; bound elsewhere it refuses to start without a token,
and with a token it answers 401 to a request without it (Authorization: Bearer, or a cookie
that ?token= sets). Every text is escaped by the templates; a Content-Security-Policy
allows only this server's own script.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import os
import socket
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.resources import files
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

from ..config import Config
from ..core.errors import PatterndError, StoreError
from ..outputs import pages
from ..store import open_db
from ..store import pages as store_pages
from ..store import queries

log = logging.getLogger("adw_patternd.serve")
TOKEN_ENV = "ADW_PATTERND_SERVE_TOKEN"
COOKIE = "adw_patternd_token"
CSP = ("default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; img-src 'self' data:; "
       "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
LIVE_JS = files("adw_patternd.outputs").joinpath("static/live.js").read_bytes()


def is_loopback(bind: str) -> bool:
    if bind == "localhost":
        return True
    try:
        return ipaddress.ip_address(bind).is_loopback
    except ValueError:
        return False


def token_of(config: Config) -> str | None:
    """The token a request must carry: config.yaml's serve.token, else the environment's."""
    return config.serve.token or (os.environ.get(TOKEN_ENV) or "").strip() or None


class Site:
    """What every request shares: the config, the read connection (one request at a time
    on it), the token, and the filters' choices as of the last revision."""

    def __init__(self, config: Config):
        self.config = config
        self.token = token_of(config)
        self.db = open_db(config.database, read_only=True)
        self.lock = threading.Lock()
        self._choices: tuple[str, dict] | None = None
        try:
            if not store_pages.schema_current(self.db):
                raise StoreError(f"the database {self.db.label} is not made yet, or is older than this version: run "
                                 "`adw-patternd sync` (or start the daemon) once, then serve")
        except BaseException:
            self.db.close()
            raise

    def revision(self) -> str:
        return store_pages.revision(self.db)

    def choices(self, revision: str) -> dict:
        if self._choices is None or self._choices[0] != revision:
            self._choices = (revision, self.db.snapshot(lambda: store_pages.filter_values(self.db)))
        return self._choices[1]

    def close(self) -> None:
        self.db.close()


def page_data(site: Site, route: str, rest: str, q: pages.Query, revision: str) -> tuple[str, object, dict]:
    """(template, JSON data, extra template values) of one page; raises NotFound/BadRequest."""
    config, db = site.config, site.db
    choices = site.choices(revision)
    if route == "" and not rest:
        host = q.one("host", choices["hosts"])
        return "overview", pages.overview(db, config, host), {
            "here": "overview", "filters": {"host": host}, "selects": [("host", choices["hosts"])], "action": "/"}
    if route == "patterns" and not rest:
        data = pages.patterns(db, config, q, choices)
        return "patterns", data["patterns"], {"d": data, "here": "patterns", "filters": data["filters"],
                                              "action": "/patterns", "selects": _selects(choices, "state")}
    if route == "pattern" and rest:
        return "pattern", pages.pattern(db, config, rest), {"here": "patterns"}
    if route == "unmatched" and not rest:
        data = pages.unmatched(db, config, q, choices)
        listed = {k: v for k, v in data.items() if k != "filters"}  # as `patterns --unmatched --json`
        return "unmatched", listed, {"d": data, "here": "unmatched", "filters": data["filters"],
                                     "action": "/unmatched", "selects": _selects(choices, "status")[:3]}
    if route == "workflows" and not rest:
        data = pages.workflows(db, config, q, choices)
        return "workflows", data, {"here": "workflows", "filters": data["filters"], "action": "/workflows",
                                   "selects": _selects(choices, "status"), "sorts": store_pages.WORKFLOW_SORTS,
                                   "page_size": pages.WORKFLOWS_PAGE}
    if route == "workflow" and rest:
        return "workflow", pages.workflow(db, config, rest), {"here": "workflows"}
    if route == "status" and not rest:
        return "", db.snapshot(lambda: queries.status(db, q.one("host", choices["hosts"]), config.agent_of)), {}
    raise pages.NotFound("no such page; the overview is at /")


def _selects(choices: dict, state_key: str) -> list:
    from ..core.review import STATES

    states = [*STATES, "recheck"] if state_key == "state" else choices["statuses"]
    return [("agent", list(pages.AGENTS)), ("root", choices["roots"]), ("host", choices["hosts"]), (state_key, states)]


class Handler(BaseHTTPRequestHandler):
    server_version = "adw-patternd"
    site: Site  # set on the subclass each server makes

    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        log.debug("%s %s", self.address_string(), format % args)

    def do_GET(self):  # noqa: N802 (http.server's name)
        started = time.perf_counter()
        url = urlsplit(self.path)
        try:
            values = parse_qs(url.query, keep_blank_values=True)
        except ValueError:
            values = {}
        if any(len(v) > 1 for v in values.values()):
            return self._error(HTTPStatus.BAD_REQUEST, "each filter takes one value", url.path)
        query = {k: v[0] for k, v in values.items()}
        if not self._authorized(url.path, query):
            return
        query.pop("token", None)
        if url.path == "/static/live.js":
            return self._send(HTTPStatus.OK, "text/javascript; charset=utf-8", LIVE_JS)
        self._route(url.path, pages.Query(query), started)

    def _route(self, path: str, q: pages.Query, started: float) -> None:
        api = path.startswith("/api/")
        parts = (path[5:] if api else path[1:]).split("/", 1)
        route, rest = parts[0], unquote(parts[1]) if len(parts) > 1 else ""
        if api and route == "overview" and not rest:
            route = ""
        try:
            with self.site.lock:
                revision = self.site.revision()
                if api and route == "revision" and not rest:
                    return self._json({"revision": revision}, started)
                if not api and route in ("status", "overview"):
                    raise pages.NotFound("no such page; the overview is at /")
                template, data, extra = page_data(self.site, route, rest, q, revision)
                if api:
                    return self._json(data, started)
                html = pages.render(template, **{"d": data, **extra, "revision": revision,
                                                 "database": self.site.db.label})
            self._send(HTTPStatus.OK, "text/html; charset=utf-8", html.encode(), started)
        except pages.BadRequest as e:
            self._error(HTTPStatus.BAD_REQUEST, str(e), path)
        except pages.NotFound as e:
            self._error(HTTPStatus.NOT_FOUND, str(e), path)
        except (StoreError, PatterndError) as e:
            self._error(HTTPStatus.SERVICE_UNAVAILABLE, str(e), path)
        except Exception:  # a bug: logged with its traceback, never shown
            log.exception("serve: %s failed", path)
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, "the server failed on this page; its log says why", path)

    def _authorized(self, path: str, query: dict) -> bool:
        token = self.site.token
        if token is None:
            return True
        given = query.get("token")
        if given is not None and hmac.compare_digest(given.encode(), token.encode()):
            # Once: the token goes into a cookie, and out of the address bar and history.
            rest = {k: v for k, v in query.items() if k != "token"}
            self.send_response(HTTPStatus.SEE_OTHER)
            self.send_header("Location", path + ("?" + urlencode(rest) if rest else ""))
            self.send_header("Set-Cookie", f"{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return False
        header = self.headers.get("Authorization", "")
        cookies = dict(c.strip().split("=", 1) for c in self.headers.get("Cookie", "").split(";") if "=" in c)
        for candidate in (header[7:] if header.startswith("Bearer ") else None, cookies.get(COOKIE)):
            if candidate is not None and hmac.compare_digest(candidate.strip().encode(), token.encode()):
                return True
        self._error(HTTPStatus.UNAUTHORIZED, "this page needs its token: open it once with ?token=..., or send "
                                             "Authorization: Bearer ...", path)
        return False

    def _error(self, status: HTTPStatus, message: str, path: str) -> None:
        if path.startswith("/api/"):
            body = json.dumps({"error": status.phrase, "status": int(status), "message": message}).encode()
            return self._send(status, "application/json", body)
        html = pages.render("error", status=int(status), reason=status.phrase, message=message, here="",
                            revision="", database="")
        self._send(status, "text/html; charset=utf-8", html.encode())

    def _json(self, data, started: float) -> None:
        self._send(HTTPStatus.OK, "application/json", json.dumps(data, indent=2, default=str).encode(), started)

    def _send(self, status: HTTPStatus, kind: str, body: bytes, started: float | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Cache-Control", "no-store")
        if status == HTTPStatus.UNAUTHORIZED:
            self.send_header("WWW-Authenticate", 'Bearer realm="adw-patternd"')
        if started is not None:
            self.send_header("Server-Timing", f"app;dur={(time.perf_counter() - started) * 1000:.1f}")
        self.end_headers()
        self.wfile.write(body)

    def _refuse(self):
        self._error(HTTPStatus.METHOD_NOT_ALLOWED, "the live page is read-only: GET only", urlsplit(self.path).path)

    do_POST = do_PUT = do_DELETE = do_PATCH = _refuse  # noqa: N815


class Running:
    """A server answering from its own thread; stop() ends it and closes its connection."""

    def __init__(self, config: Config, port: int | None = None, bind: str | None = None):
        bind = bind or config.serve.bind
        if not is_loopback(bind) and token_of(config) is None:
            raise PatterndError(f"serve: bound to {bind}, beyond this machine, it needs a token: set serve: {{token: "
                                f"...}} in config.yaml or {TOKEN_ENV} (a long random string: openssl rand -hex 24), "
                                "or bind to 127.0.0.1")
        self.site = Site(config)
        handler = type("SiteHandler", (Handler,), {"site": self.site})
        try:
            self.server = ThreadingHTTPServer((bind, config.serve.port if port is None else port), handler)
        except OSError as e:
            self.site.close()
            raise PatterndError(f"serve: cannot listen on {bind}:{config.serve.port if port is None else port} "
                                f"({e.strerror or e}); choose another with --port or serve.port") from None
        self.server.daemon_threads = True
        host, self.port = self.server.server_address[:2]
        self.url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{self.port}/"
        # No poll interval: the loop sleeps in select() until a request (or stop()) comes.
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": None},
                                       name="adw-patternd-serve", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        closer = threading.Thread(target=self.server.shutdown, name="adw-patternd-serve-stop")
        closer.start()
        while closer.is_alive():  # wake select() so that the loop sees the shutdown
            try:
                with socket.create_connection(self.server.server_address[:2], timeout=1):
                    pass
            except OSError:
                pass
            closer.join(0.1)
        self.thread.join()
        self.server.server_close()
        self.site.close()
