"""Background work: queues named by purpose, job functions that take ids, one periodic schedule."""
