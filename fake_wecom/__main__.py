"""Run the fake WeCom server on its own: ``python -m fake_wecom --port 8801``."""

from __future__ import annotations

import argparse
import logging
import time

from fake_wecom.server import DEFAULT_AGENT_ID, DEFAULT_CORP_ID, DEFAULT_SECRET, FakeWeCom


def main(argv: list[str] | None = None) -> None:
    """Start the server, print where it listens, serve until Ctrl-C."""
    parser = argparse.ArgumentParser(prog="python -m fake_wecom", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8801)
    parser.add_argument("--corp-id", default=DEFAULT_CORP_ID)
    parser.add_argument("--secret", default=DEFAULT_SECRET)
    parser.add_argument("--agent-id", type=int, default=DEFAULT_AGENT_ID)
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    fake = FakeWeCom(corp_id=args.corp_id, secret=args.secret, agent_id=args.agent_id)
    fake.start(host=args.host, port=args.port)
    try:
        print(f"Fake WeCom API base URL: {fake.base_url}", flush=True)
        print(f"Received messages:       {fake.page_url}", flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass  # Ctrl-C is the way to stop it
    finally:
        fake.stop()


if __name__ == "__main__":
    main()
