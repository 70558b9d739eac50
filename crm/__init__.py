"""The one home of wecrm's business rules: the bot, the mini-app API and the workers all call it.

Nothing here imports Flask or RQ. Services take a SQLAlchemy session first, keyword-only
arguments after, and `now` where time matters; they flush but never commit (the edge does).
"""
