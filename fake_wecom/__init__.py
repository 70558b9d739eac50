"""A local stand-in WeCom HTTP server for tests and the demo (see fake_wecom.server)."""

from fake_wecom.server import FakeWeCom

__all__ = ["FakeWeCom"]
