"""A synthetic company: one planner for `wecrm demo` and the benchmarks.

`plans` is the shape every plan takes (an org chart, customers with their histories), `rules`
what the planner takes from the product's own rules (grading, the pool timer, the business
day), `sample` the demo's believable company (its words in `sample_words`), `book` the
benchmarks' company-sized book, `directory` an org chart as WeCom lists it, and `rows` turns any
plan into table rows for a bulk insert. Nothing here touches a database.
"""
