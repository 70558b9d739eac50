"""Settings for every wecrm process, read once from the environment at start-up."""

from config.settings import Settings, SettingsError

__all__ = ["Settings", "SettingsError"]
