"""Rule sets as data: the default pack, the pool policy and the store of the versions in force.

This package sits below everything that reads a rule set (the pool reads its policy here, the
engines in `crm.rules` their rules); `crm.rules.publisher` is where managers write new versions.
"""
