"""Rules managers edit themselves: grading, event triggers, timers and the pool policy.

Rule sets are data (JSON documents, versioned in `rule_set_versions`; the versions in force and
the default pack live in `crm.rulesets`). `facts` and `actions` are the registries a document may
name; `documents` checks a document against them; `conditions` evaluates a condition in Python or
compiles it to SQL; `publisher` drafts, previews, publishes and rolls back; `grading`, `triggers`
and `timers` apply the active sets.
"""
