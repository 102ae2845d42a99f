"""The one sync-to-async ``Retry`` conversion, for the asyncio pools and the topologies.

Settings hold ``redis.retry.Retry`` objects (parsed once, for the sync pools); an async
client needs ``redis.asyncio.retry.Retry``. The conversion keeps all three parts: the
backoff, the number of retries and the errors retried. It used to drop the backoff for
the sentinels of an async Sentinel alias, so their retries came back to back.
"""

from __future__ import annotations

import copy
from typing import Any

from redis.asyncio.retry import Retry as AsyncRetry
from redis.retry import Retry as SyncRetry


def async_retry(retry: Any) -> Any:
    """``retry`` for ``redis.asyncio``: a sync ``Retry`` converted, anything else as given."""
    if not isinstance(retry, SyncRetry):
        return retry
    # redis-py has no public sync->async Retry conversion; both keep their whole state in
    # these AbstractRetry attributes. The backoff is copied: some backoffs keep state
    # between attempts, which a sync client and the async ones must not share.
    return AsyncRetry(
        copy.deepcopy(retry._backoff),
        retry.get_retries(),
        retry._supported_errors,  # type: ignore[arg-type]
    )
