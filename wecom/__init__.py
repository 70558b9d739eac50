"""Our adapter to WeCom's server API (tokens, bounded retry, errors)."""

from wecom.client import WeComClient, WeComError, WeComUnavailable

__all__ = ["WeComClient", "WeComError", "WeComUnavailable"]
