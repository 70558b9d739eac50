"""The workers' fixtures: WeCom's side of the callback (the bot's), the environment a deployed
`wecrm` command reads (the CLI's)."""

from tests.bot.conftest import callback_client, wecom_side
from tests.test_cli import cli_env

__all__ = ["callback_client", "cli_env", "wecom_side"]
