"""The workers' fixtures: WeCom's side of the callback, shared with the bot's tests."""

from tests.bot.conftest import callback_client, wecom_side

__all__ = ["callback_client", "wecom_side"]
