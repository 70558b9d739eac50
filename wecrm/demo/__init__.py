"""`wecrm demo`: a believable sample company, and the whole product running on a laptop.

The company is planned by `synthetic.sample` (the planner the benchmarks share); `seeding`
writes it, `brochure` is the PDF its email template attaches, `voice` a rep's follow-up with a
voice memo that the running demo transcribes, `directory` lists its people for
the fake WeCom, `supervisor` runs every process and `banner` says how to use them.
"""
