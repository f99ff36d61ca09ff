"""A send to a Sentinel group returns once a replica has the message, so a failover right
after it cannot lose it; a replica that does not confirm is not waited for again at once."""

import logging
import signal
import time

import pytest
from dramatiq import Message

from shared.brokers import REPLICA_ACK_MS, sender_broker
from tests.support.ha import redis_on
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.ha, pytest.mark.timeout(120)]

NAMESPACE = "srjobs-ha-sends"


def message(n: int) -> Message:
    return Message(queue_name="default", actor_name="a", args=(n,), kwargs={}, options={})


def queued(port: int) -> int:
    with redis_on(port) as client:
        return int(client.hlen(f"{NAMESPACE}:default.msgs"))


def missing_acks(caplog) -> list:
    return [r for r in caplog.records if getattr(r, "event", "") == "replica_ack_missing"]


def test_a_send_returns_once_the_replica_has_it(redis_group, caplog):
    primary = redis_group.primary()
    replica = next(p for p in redis_group.nodes if p != primary)
    broker = sender_broker(redis_group.url, NAMESPACE, socket_timeout=5)
    try:
        for n in range(20):
            broker.enqueue(message(n))
            assert queued(replica) == n + 1  # read at once, no polling: WAIT already saw it

        process = redis_group.nodes[replica]
        assert process is not None
        process.send_signal(signal.SIGSTOP)  # a replica that does not acknowledge
        try:
            with caplog.at_level(logging.WARNING, logger="shared.brokers"):
                started = time.monotonic()
                broker.enqueue(message(20))
                waited = time.monotonic() - started
                assert waited >= REPLICA_ACK_MS / 1000 * 0.9
                assert len(missing_acks(caplog)) == 1
                broker.enqueue(message(21))  # not waited for again at once: no second miss
                assert len(missing_acks(caplog)) == 1
        finally:
            process.send_signal(signal.SIGCONT)
        assert queued(primary) == 22
        wait_for(lambda: queued(replica) == 22, 10, "the replica to catch up")
    finally:
        broker.close()  # the group and its data go at the end of the test


def test_a_batch_sent_in_one_pipeline_returns_once_the_replica_has_all_of_it(redis_group, caplog):
    primary = redis_group.primary()
    replica = next(p for p in redis_group.nodes if p != primary)
    broker = sender_broker(redis_group.url, NAMESPACE, socket_timeout=5)
    try:
        for batch in range(5):
            broker.enqueue_many([message(batch * 200 + n) for n in range(200)])
            # Read at once, no polling: the WAIT ending the pipeline already saw every send.
            assert queued(replica) == (batch + 1) * 200

        process = redis_group.nodes[replica]
        assert process is not None
        process.send_signal(signal.SIGSTOP)  # the WAIT must be the pipeline's: it waits
        try:
            with caplog.at_level(logging.WARNING, logger="shared.brokers"):
                started = time.monotonic()
                broker.enqueue_many([message(1000 + n) for n in range(200)])
                assert time.monotonic() - started >= REPLICA_ACK_MS / 1000 * 0.9
                assert len(missing_acks(caplog)) == 1
        finally:
            process.send_signal(signal.SIGCONT)
        wait_for(lambda: queued(replica) == 1200, 10, "the replica to catch up")
    finally:
        broker.close()
