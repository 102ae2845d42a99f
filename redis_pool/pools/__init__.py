"""redis-py pools that count what they do, and name their connections per process.

Subclasses, not wrappers: redis-py's own locking, fork check (``_checkpid``) and health
checks stay in charge. The counting happens inside redis-py's own critical sections, so
it costs no lock of ours: the plain pool records checkouts and returns in its in-use set
(``CountingSet.add`` / ``remove`` run under the pool's lock), the blocking pool in its
queue (``FairLifoQueue._get`` / ``_put`` run under the queue's mutex). Connects,
closes and errors are counted by the connection class, off the checkout path.
"""
