"""Messages encoded ahead of their send and queued in bulk, in Dramatiq's Redis layout.

Dramatiq's own enqueue is one call of its `dispatch` script per message (a heartbeat, a
maintenance roll, the message). Sending a thousand messages that way costs Redis a thousand
script runs and the client a thousand answers to read. `pack` does the client's share
(copying each message with its Redis id, encoding it) before the send, and `BULK_ENQUEUE` queues
a whole queue's share of a batch in one script call, atomically: it does what Dramatiq's
`enqueue` command does with each message (`HSET <ns>:<queue>.msgs id data`, `RPUSH <ns>:<queue>
id`, dramatiq/brokers/redis/dispatch.lua), without the sender's heartbeat and maintenance,
which belong to consumers. tests/integration/test_bulk_enqueue.py pins the layout: a Dramatiq
consumer receives what it sends.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from uuid import uuid4

from dramatiq import Message
from dramatiq.brokers.redis import RedisBroker

# KEYS: the queue's message hash, the queue's list; ARGV: id, data, id, data, ...
BULK_ENQUEUE = """
local messages, queue = KEYS[1], KEYS[2]
for i = 1, #ARGV, 2 do
    redis.call("hset", messages, ARGV[i], ARGV[i + 1])
    redis.call("rpush", queue, ARGV[i])
end
return #ARGV / 2
"""


@dataclass(frozen=True)
class QueueShare:
    """One queue's messages of a batch: the arguments of one `BULK_ENQUEUE` call."""

    keys: tuple[str, str]
    args: tuple[str | bytes, ...]


@dataclass(frozen=True)
class Packed:
    """A batch of messages encoded for one bulk send (each with its own Redis message id)."""

    messages: tuple[Message, ...]
    shares: tuple[QueueShare, ...]


def pack(broker: RedisBroker, messages: Sequence[Message]) -> Packed:
    """Encode `messages` for `broker`'s namespace, queue by queue, in their order."""
    copies: list[Message] = []
    by_queue: dict[str, list[str | bytes]] = {}
    for message in messages:
        copy = message.copy(options={"redis_message_id": str(uuid4())})
        broker.emit_before("enqueue", copy, None)
        copies.append(copy)
        by_queue.setdefault(copy.queue_name, []).extend(
            (copy.options["redis_message_id"], copy.encode())
        )
    shares = tuple(
        QueueShare((f"{broker.namespace}:{queue}.msgs", f"{broker.namespace}:{queue}"), tuple(args))
        for queue, args in by_queue.items()
    )
    return Packed(tuple(copies), shares)
