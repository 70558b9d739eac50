"""The workers' fixtures: WeCom's side of the callback (the bot's); `cli_env`, the environment a
deployed `wecrm` command reads, is in tests/conftest.py."""

from tests.bot.conftest import callback_client, wecom_side

__all__ = ["callback_client", "wecom_side"]
