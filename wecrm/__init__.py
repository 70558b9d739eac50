"""Wiring: the app factory, the shared runtime, the `wecrm` command and the demo."""
