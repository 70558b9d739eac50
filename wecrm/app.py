"""The Flask app factory: it only wires the edges to one runtime."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, g, request
from sqlalchemy import text
from werkzeug.middleware.proxy_fix import ProxyFix

from bot.callback import callback
from config import Settings
from crm import chat_capture
from miniapp_api import api, errors
from wecrm.home import home
from wecrm.runtime import Runtime
from wecrm.wiring import build_runtime

log = logging.getLogger(__name__)
MAX_REQUEST_BYTES = 64 * 1024 * 1024


def create_app(runtime: Runtime | None = None) -> Flask:
    """Build the app; with no runtime, settings come from the environment."""
    runtime = runtime or build_runtime(Settings.from_env())
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = max(
        MAX_REQUEST_BYTES, runtime.settings.max_attachment_bytes * 2
    )
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["wecrm"] = runtime
    if runtime.settings.trusted_proxies:
        # Each of our proxies appends the address it saw to X-Forwarded-For; believe that many
        # entries from the right, and none a client wrote itself (sign-in limits count by it).
        # Only the address: the other X-Forwarded-* headers are not ours to vouch for.
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=runtime.settings.trusted_proxies, x_proto=0
        )
    log.info("wecrm starting with %r", runtime.settings)

    @app.before_request
    def open_session() -> None:
        g.session = runtime.db.session(lock_for_write=request.method not in ("GET", "HEAD"))
        g.now = runtime.clock()

    @app.after_request
    def forbid_sniffing(response: Response) -> Response:
        # Attachments and exports are served with the type their checked suffix gave them; a
        # browser must not second-guess it (an upload sniffed as HTML would run as a page).
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    @app.teardown_request
    def close_session(_error: BaseException | None) -> None:
        session = g.pop("session", None)
        if session is not None:
            session.close()

    @app.get("/healthz")
    def healthz() -> tuple[dict[str, Any], int]:
        checks = {}
        try:
            g.session.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception:  # health checks report, they do not raise
            checks["database"] = "down"
        try:
            runtime.redis.ping()
            checks["redis"] = "ok"
        except Exception:
            checks["redis"] = "down"
        healthy = all(v == "ok" for v in checks.values())
        # The archive puller's state shows (and makes the status "degraded") but does not fail
        # the check: this process serves requests fine, and a restart would not help the puller.
        archive: dict[str, Any] = {"status": "off"}
        if runtime.settings.archive_configured and checks["database"] == "ok":
            archive = chat_capture.puller_health(g.session, runtime.clock())
        status = "ok" if healthy and archive["status"] in ("ok", "off") else "degraded"
        return {"status": status, **checks, "archive": archive}, 200 if healthy else 503

    app.register_blueprint(home)
    app.register_blueprint(api)
    app.register_blueprint(callback)  # WeCom signs its requests: no API auth, no OpenAPI entry
    errors.register(app)
    return app
