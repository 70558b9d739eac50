"""Our adapters to WeCom: the server API (tokens, bounded retry, errors) here, and the message
archive's native Finance SDK in `wecom.finance_sdk` (imported on its own)."""

from wecom.client import WeComClient, WeComError, WeComUnavailable

__all__ = ["WeComClient", "WeComError", "WeComUnavailable"]
