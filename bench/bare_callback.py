"""The callback's floor: a Flask endpoint that verifies and decrypts WeCom's POST with wechatpy,
and nothing else (no replay window, no XML fields, no database, no Redis, no app factory), so
`bench.callback` can set wecrm's callback beside what the crypto alone costs under gunicorn.
"""

from __future__ import annotations

from flask import Flask, Response, request
from wechatpy.enterprise.crypto import WeChatCrypto

from config import Settings


def create_bare_callback_app(settings: Settings) -> Flask:
    """A Flask app answering POST /wecom/callback with an empty 200 once the message decrypts."""
    crypto = WeChatCrypto(settings.wecom_token, settings.wecom_aes_key, settings.wecom_corp_id)
    app = Flask(__name__)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/wecom/callback")
    def receive() -> Response:
        args = request.args
        crypto.decrypt_message(
            request.get_data(), args["msg_signature"], args["timestamp"], args["nonce"]
        )
        return Response("", mimetype="text/plain")

    return app
