"""The chat-capture benchmark (issue 11): generated WeCom archive messages through the whole
path, beside bare `jieba.lcut` over the same texts in the same run.

Per backend, on a fresh seeded book (`bench.seed`, a smaller plan than the customer book's:
by default 20,000 customers, a third of them WeCom contacts of their rep), `synthetic.chats`
generates `--messages` (100,000) messages of a week of chats between the reps and their
contacts as the demo picks them (`wecrm.demo.chats.wecom_contacts`: lost customers stay quiet):
~15% with capture keywords, negations, risk words, substring traps, files, quote conversations,
recalls … Then, timed:

* **end to end**: `crm.chat_capture.store_messages(session, batch, origin="file", now=...)` in
  batches of 1,000 (the Finance SDK's largest page), committed one by one (parse + store), then
  `crm.chat_capture.capture(session, now=..., window=30 min)` in a loop, committed per batch,
  until a batch says there is no more (segment + match, windows, follow-ups, triggers); as for
  an export-only company, pairs with no consent answer count as agreed;
* **bare jieba**: `jieba.lcut` of every text the same messages carry (text messages and the
  captions of mixed ones), jieba's dictionary loaded beforehand; measured before and after the
  end-to-end run, the faster round kept.

Both rates are messages per second over all the generated messages, so the ratio compares the
same work list. Target: end to end ≥ 50% of bare jieba. It prints a table per backend and
rewrites its section of docs/benchmarks.md; nothing here asserts on time.

    python -m bench.chat_capture --db sqlite|postgres|both
    python -m bench.chat_capture --bare-only          # the jieba half alone, no database
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import jieba
from sqlalchemy import Engine, func, select

from bench import seed
from bench.cpu import CpuWindow, add_calm_options, apply_niceness
from bench.customer_book import DOC_PATH, REPO, machine_facts, quiet, write_doc_block
from crm.chat_capture import capture, store_messages
from crm.keywords import dictionary_for
from crm.vocab import FollowUpSource, Stage
from models import Database, FollowUp, StageChange
from models.chat import ArchiveOrigin
from synthetic import chats
from synthetic.book import book_org, plan_book
from wecrm.demo.chats import wecom_contacts

SQLITE_URL = f"sqlite:///{seed.RESULTS_DIR / 'chat_capture.sqlite3'}"
POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/wecrm_bench_chat"
STORE_BATCH = 1000  # messages per store_messages call: GetChatData's largest page
WINDOW = timedelta(minutes=30)
TARGET_SHARE_OF_BARE = 0.5
CHAT_DAYS = 7
DEFAULT_PLAN = seed.SeedPlan(customers=20_000, follow_ups=100_000)


@dataclass
class Timed:
    seconds: float
    messages_per_second: int
    others_cores: float  # CPU the rest of the machine used meanwhile


@dataclass
class Run:
    backend: str
    facts: dict[str, str]
    settings: dict[str, Any]
    generated: dict[str, int] = field(default_factory=dict)
    bare: list[Timed] = field(default_factory=list)
    store: Timed | None = None
    capture: Timed | None = None
    end_to_end: Timed | None = None
    capture_batches: int = 0
    outcome: dict[str, int] = field(default_factory=dict)

    @property
    def best_bare(self) -> Timed:
        return min(self.bare, key=lambda t: t.seconds)


# --- the messages ------------------------------------------------------------------------------


def texts_of(messages: list[dict[str, Any]]) -> list[str]:
    """Every text the messages carry: text messages and the text items of mixed ones."""
    texts = []
    for message in messages:
        kind = message.get("msgtype")
        if kind == "text":
            texts.append(message["text"]["content"])
        elif kind == "mixed":
            for item in message["mixed"]["item"]:
                if item["type"] == "text":
                    texts.append(json.loads(item["content"])["content"])
    return texts


def describe(archive: chats.Archive) -> dict[str, int]:
    kinds: dict[str, int] = defaultdict(int)
    for message in archive.messages:
        kinds[message.get("msgtype", message["action"])] += 1
    return {
        "messages": len(archive.messages),
        "conversations": len(archive.conversations),
        "quote_conversations": len(archive.quote_conversations),
        "keyword_texts": len(archive.msgids_of(chats.LineKind.KEYWORD)),
        "trap_texts": len(archive.msgids_of(chats.LineKind.TRAP)),
        **{f"type_{k}": v for k, v in sorted(kinds.items())},
    }


# --- the two measurements ----------------------------------------------------------------------


def timed(work: Callable[[], Any], count: int) -> tuple[Timed, Any]:
    with CpuWindow() as window:
        started = time.perf_counter()
        result = work()
        seconds = time.perf_counter() - started
    assert window.use is not None
    return Timed(round(seconds, 3), round(count / seconds), window.use.others_cores), result


def bare_jieba(texts: list[str], message_count: int) -> Timed:
    """`jieba.lcut` over every text, its dictionary already loaded."""
    jieba.initialize()

    def segment() -> None:
        for text in texts:
            jieba.lcut(text)

    figures, _ = timed(segment, message_count)
    return figures


def end_to_end(db: Database, messages: list[dict[str, Any]], now: datetime, run: Run) -> None:
    """Store every message in pages, then capture until nothing is pending; commits per batch."""
    with db.session() as session:
        # The dictionary's tokenizer is loaded once per process, as in a worker: not timed.
        dictionary_for(session, None).match_many(["预热：报价单已发送"])

    def store() -> None:
        with db.session() as session:
            for start in range(0, len(messages), STORE_BATCH):
                store_messages(
                    session,
                    messages[start : start + STORE_BATCH],
                    origin=ArchiveOrigin.FILE,
                    now=now,
                )
                session.commit()

    def capture_all() -> int:
        batches = 0
        with db.session() as session:
            while True:
                # An export-only company (no archive secret, as here): capture counts every
                # pair as agreed, so no consent rows are needed.
                result = capture(session, now=now, window=WINDOW, assume_consent=True)
                session.commit()
                batches += 1
                if not result.more:
                    return batches

    started = time.perf_counter()
    run.store, _ = timed(store, len(messages))
    run.capture, run.capture_batches = timed(capture_all, len(messages))
    seconds = time.perf_counter() - started
    run.end_to_end = Timed(
        round(seconds, 3),
        round(len(messages) / seconds),
        max(run.store.others_cores, run.capture.others_cores),
    )


def tallies(engine: Engine) -> dict[str, int]:
    """Chat follow-ups and 意向 → 报价 moves in the database (the seed has some of both)."""
    with engine.connect() as conn:
        follow_ups = conn.scalar(
            select(func.count())
            .select_from(FollowUp)
            .where(FollowUp.source == FollowUpSource.CHAT_ARCHIVE.value)
        )
        quotes = conn.scalar(
            select(func.count())
            .select_from(StageChange)
            .where(StageChange.from_stage == Stage.INTEREST.value)
            .where(StageChange.to_stage == Stage.QUOTE.value)
        )
    return {"chat_follow_ups": int(follow_ups or 0), "moved_to_quote": int(quotes or 0)}


# --- one backend -------------------------------------------------------------------------------


def generate(
    contacts: dict[str, list[str]], interested: set[str], anchor: datetime, args: Any
) -> chats.Archive:
    """The week before the seed's "now" of chats, exactly `--messages` of them."""
    return chats.generate(
        contacts,
        start=anchor - timedelta(days=CHAT_DAYS),
        days=CHAT_DAYS,
        messages=args.messages,
        seed=args.seed,
        quoting=interested,
    )


def run_backend(backend: str, args: argparse.Namespace) -> Run:
    url = SQLITE_URL if backend == "sqlite" else args.pg_url
    plan = seed.SeedPlan(customers=args.customers, follow_ups=args.follow_ups)
    # Capture writes follow-ups and moves stages: every run starts from a fresh seed.
    seeded = seed.ensure_seeded(url, plan, reseed=True)
    db = Database(url)
    run = Run(
        backend=backend,
        facts=machine_facts(db.engine),
        settings={
            "messages": args.messages,
            "customers": args.customers,
            "seed": args.seed,
            "nice": os.getpriority(os.PRIO_PROCESS, 0),
        },
    )
    try:
        with db.session() as session:
            contacts, interested = wecom_contacts(session)
        archive = generate(contacts, interested, seeded.anchor, args)
        run.generated = describe(archive)
        texts = texts_of(archive.messages)
        print(
            f"\n== {backend}: {len(archive.messages):,} messages ({len(texts):,} texts) of "
            f"{sum(map(len, contacts.values())):,} contacts of {len(contacts)} reps"
        )
        quiet(args)
        run.bare.append(bare_jieba(texts, len(archive.messages)))
        print(f"bare jieba: {fmt(run.bare[-1])}")
        # An hour after the seed's "now": every window of the week is closed.
        now = seeded.anchor + timedelta(hours=1)
        quiet(args)
        before = tallies(db.engine)
        end_to_end(db, archive.messages, now, run)
        run.outcome = {k: v - before[k] for k, v in tallies(db.engine).items()}
        assert run.store and run.capture and run.end_to_end
        print(f"store:      {fmt(run.store)}")
        print(f"capture:    {fmt(run.capture)} in {run.capture_batches} batches")
        print(f"end to end: {fmt(run.end_to_end)}")
        quiet(args)
        run.bare.append(bare_jieba(texts, len(archive.messages)))
        print(f"bare jieba: {fmt(run.bare[-1])}")
    finally:
        db.dispose()
    return run


# --- the report --------------------------------------------------------------------------------


def fmt(figures: Timed) -> str:
    return (
        f"{figures.messages_per_second:7,} messages/s ({figures.seconds} s), "
        f"others {figures.others_cores} cores"
    )


def markdown(run: Run) -> str:
    title = {"sqlite": "SQLite", "postgres": "PostgreSQL"}[run.backend]
    f, s, g = run.facts, run.settings, run.generated
    assert run.store and run.capture and run.end_to_end
    bare = run.best_bare
    share = run.end_to_end.messages_per_second / bare.messages_per_second
    others = max(t.others_cores for t in (*run.bare, run.store, run.capture))
    verdict = "met" if share >= TARGET_SHARE_OF_BARE else "**missed**"
    return "\n".join(
        [
            f"### {title}",
            "",
            f"Measured {f['date']} on {f['cpu']}, {f['memory']} RAM; Python {f['python']}, "
            f"{f['database']}, jieba {jieba.__version__}; code at {f['code']}. "
            f"{g['messages']:,} messages ({g['conversations']:,} conversations, "
            f"{g['quote_conversations']} quotes, {g['keyword_texts']:,} keyword texts, "
            f"{g['trap_texts']:,} traps) over {s['customers']:,} customers; run at nice "
            f"{s['nice']}.",
            "",
            "| figure | seconds | messages per second | ÷ bare jieba | target |",
            "|---|---:|---:|---:|:---:|",
            f"| bare `jieba.lcut` of the same texts (best of {len(run.bare)}) | "
            f"{bare.seconds} | {bare.messages_per_second:,} | 100% | — |",
            f"| store (parse, insert or ignore, commit per {STORE_BATCH:,}) | "
            f"{run.store.seconds} | {run.store.messages_per_second:,} | — | — |",
            f"| capture ({run.capture_batches} batches: match, windows, follow-ups, triggers) | "
            f"{run.capture.seconds} | {run.capture.messages_per_second:,} | — | — |",
            f"| **end to end** | {run.end_to_end.seconds} | "
            f"{run.end_to_end.messages_per_second:,} | {share:.0%} | ≥ "
            f"{TARGET_SHARE_OF_BARE:.0%}: {verdict} |",
            "",
            f"The run wrote {run.outcome.get('chat_follow_ups', 0):,} chat follow-ups and moved "
            f"{run.outcome.get('moved_to_quote', 0):,} customers 意向 → 报价. Other processes "
            f"used up to {others} of the machine's {os.cpu_count()} cores meanwhile.",
            "",
        ]
    )


ABOUT = """## Chat capture

`python -m bench.chat_capture --db both` (see `bench/README.md`) generates a week of WeCom
archive messages (`synthetic.chats`: sales talk of a tile and bathroom business, ~15% with
capture keywords, negations, risk words, substring traps, images, voice, files, mixed messages,
recalls, quote conversations with a PDF) between the reps of a freshly seeded book and their
WeCom contacts, and runs them through the whole path: `crm.chat_capture.store_messages` in pages
of 1,000 (parse, insert or ignore by msgid), then `crm.chat_capture.capture` until nothing is
pending (segment and match with the keyword dictionary, group into 30-minute windows, write one
follow-up per window with a hit, run the follow-up triggers), each batch committed. Beside it,
in the same run, bare `jieba.lcut` over every text of the same messages. Both rates count all
generated messages. Target (issue 11): end to end ≥ 50% of bare jieba's rate.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument(
        "--pg-url", default=POSTGRES_URL, help="its PostgreSQL database (wiped; *bench* only)"
    )
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--customers", type=int, default=DEFAULT_PLAN.customers)
    parser.add_argument("--follow-ups", type=int, default=DEFAULT_PLAN.follow_ups)
    parser.add_argument("--seed", type=int, default=11, help="the chats' random seed")
    parser.add_argument(
        "--bare-only",
        action="store_true",
        help="only bare jieba over the messages generated for a planned book (no database)",
    )
    add_calm_options(parser)
    parser.add_argument("--no-doc", action="store_true", help="print, do not touch the docs")
    args = parser.parse_args()
    apply_niceness(args)
    if args.bare_only:
        bare_only(args)
        return
    for backend in ("sqlite", "postgres") if args.db == "both" else (args.db,):
        run = run_backend(backend, args)
        (seed.RESULTS_DIR / f"chat_capture-{backend}.json").write_text(
            json.dumps(asdict(run), ensure_ascii=False, indent=2)
        )
        print()
        print(markdown(run))
        if not args.no_doc:
            write_doc_block("chat_capture:about", ABOUT)
            write_doc_block(f"chat_capture:{backend}", markdown(run))
            print(f"wrote {DOC_PATH.relative_to(REPO)}")


def bare_only(args: argparse.Namespace) -> None:
    """Generate the messages for the planned book's contacts and time bare jieba over them."""
    shape = seed.SeedPlan(customers=args.customers, follow_ups=args.follow_ups).shape
    org = book_org(shape)
    anchor = datetime.now(UTC).replace(microsecond=0)
    contacts: dict[str, list[str]] = defaultdict(list)
    interested: set[str] = set()
    for chunk in plan_book(shape, org, now=anchor):
        for customer in chunk:
            external = customer.values.get("external_userid")
            if external and customer.owner and customer.stage is not Stage.LOST:
                contacts[customer.owner].append(external)
                if customer.stage is Stage.INTEREST:
                    interested.add(external)
    started = time.perf_counter()
    archive = generate(contacts, interested, anchor, args)
    generated = time.perf_counter() - started
    texts = texts_of(archive.messages)
    print(
        f"generated {len(archive.messages):,} messages ({len(texts):,} texts) in "
        f"{generated:.1f} s: {describe(archive)}"
    )
    for _ in range(2):
        quiet(args)
        print(f"bare jieba: {fmt(bare_jieba(texts, len(archive.messages)))}")


if __name__ == "__main__":
    main()
