"""The bulk send against real Redis and a real Dramatiq consumer: what `SenderBroker` queues
in bulk (encoded ahead or not) is what Dramatiq's own `enqueue` would have queued, so a
worker receives each message once, in order, on its queue. This pins the Redis layout of
the installed Dramatiq that shared/bulk_enqueue.py writes."""

from collections.abc import Iterator

import pytest
from dramatiq import Message
from dramatiq.brokers.redis import RedisBroker

from shared.brokers import SenderBroker, redis_client, sender_broker
from shared.dispatch import RUN_ID_OPTION, build_message


@pytest.fixture
def sender(settings) -> Iterator[SenderBroker]:
    broker = sender_broker(settings.redis_url, settings.redis_namespace, socket_timeout=5)
    yield broker
    broker.close()


@pytest.fixture
def consumer_broker(settings) -> Iterator[RedisBroker]:
    client = redis_client(settings.redis_url)
    broker = RedisBroker(client=client, namespace=settings.redis_namespace, middleware=[])
    yield broker
    broker.close()
    client.close()


def receive(broker: RedisBroker, queue: str, expected: int) -> list[Message]:
    """What a Dramatiq consumer of `queue` gets, acked; it stops after one idle timeout."""
    consumer = broker.consume(queue, prefetch=100, timeout=200)
    got: list[Message] = []
    try:
        for proxy in consumer:
            if proxy is None:
                if len(got) >= expected:
                    break
                continue
            got.append(proxy._message)
            consumer.ack(proxy)
            if len(got) > expected + 10:  # more than sent: stop and let the test say so
                break
    finally:
        consumer.close()
    return got


def messages(queue: str, first: int, n: int) -> list[Message]:
    return [build_message("job_a", queue, first + i, kwargs={"n": first + i}) for i in range(n)]


def test_a_bulk_send_reaches_a_dramatiq_consumer_once_each_in_order(sender, consumer_broker):
    sent = messages("default", 1, 300)
    sender.enqueue_many(sent)

    got = receive(consumer_broker, "default", len(sent))
    assert [m.options[RUN_ID_OPTION] for m in got] == [m.options[RUN_ID_OPTION] for m in sent]
    assert [(m.actor_name, m.kwargs, m.message_id) for m in got] == [
        (m.actor_name, m.kwargs, m.message_id) for m in sent
    ]
    assert len({m.options["redis_message_id"] for m in got}) == len(sent)


def test_a_batch_packed_ahead_is_sent_later_each_queue_on_its_own(sender, consumer_broker):
    mixed = messages("default", 1, 5) + messages("reports", 100, 3) + messages("default", 6, 2)
    packed = sender.pack(mixed)
    # Nothing is queued by packing: the send happens later, in one round trip.
    assert receive(consumer_broker, "default", 0) == []
    sender.send_packed(packed)

    default = receive(consumer_broker, "default", 7)
    reports = receive(consumer_broker, "reports", 3)
    assert [m.options[RUN_ID_OPTION] for m in default] == [1, 2, 3, 4, 5, 6, 7]
    assert [m.options[RUN_ID_OPTION] for m in reports] == [100, 101, 102]


def test_each_packing_gives_messages_their_own_redis_ids(sender, consumer_broker):
    batch = messages("default", 1, 2)
    sender.send_packed(sender.pack(batch))
    sender.send_packed(sender.pack(batch))  # a re-send of the same messages: two copies

    got = receive(consumer_broker, "default", 4)
    assert [m.options[RUN_ID_OPTION] for m in got] == [1, 2, 1, 2]
    assert len({m.options["redis_message_id"] for m in got}) == 4
