"""The browsable API reference at /api/v1/docs: Swagger UI reading /api/v1/openapi.json.

Swagger UI's files come from the swagger-ui-bundle-v2 package (its import name is
`swagger_ui_bundle`) and are served by the app itself: the page works with no internet, and
Swagger UI's online spec validator is switched off for the same reason.
"""

from __future__ import annotations

from pathlib import Path

from flask import Response, abort, render_template_string, send_from_directory
from swagger_ui_bundle import swagger_ui_path

from miniapp_api import api

SWAGGER_UI_DIR = Path(str(swagger_ui_path))
# Only what the page loads: the package's own index.html would fetch a petstore from the web.
ASSETS = frozenset({"swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png"})
PAGE = """<!doctype html>
<html lang="zh-CN">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>wecrm 接口文档</title>
  <link rel="stylesheet" href="{{ url_for('api.docs_asset', filename='swagger-ui.css') }}">
  <link rel="icon" type="image/png"
        href="{{ url_for('api.docs_asset', filename='favicon-32x32.png') }}">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="{{ url_for('api.docs_asset', filename='swagger-ui-bundle.js') }}"></script>
  <script>
    window.ui = SwaggerUIBundle({
      url: {{ url_for('api.openapi_document') | tojson }},
      dom_id: "#swagger-ui",
      deepLinking: true,
      persistAuthorization: true,
      displayRequestDuration: true,
      validatorUrl: null
    });
  </script>
</body>
</html>
"""


@api.get("/docs")
def docs_page() -> str:
    """The reference page itself."""
    return render_template_string(PAGE)


@api.get("/docs/<path:filename>")
def docs_asset(filename: str) -> Response:
    """One of Swagger UI's static files, from the installed package."""
    if filename not in ASSETS:
        abort(404)
    return send_from_directory(SWAGGER_UI_DIR, filename, max_age=24 * 3600)
