"""REDIS_URL, one Redis or a Sentinel group: every Redis client and Dramatiq broker is built here.

`redis+sentinel://[:password@]h1:26379,h2:26379/<service>[/<db>]` names the sentinels of a
group; clients ask them for the current primary on every new connection, so a failover is
followed without a restart: a connection to the dead or demoted primary fails
(ConnectionError, or ReadOnlyError turned into one by redis-py), the next command reconnects
to the primary the sentinels name. The password is the Redis servers' (`requirepass`); the
sentinels themselves are reached without one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import redis
from dramatiq import Message
from dramatiq.brokers.redis import RedisBroker
from redis.sentinel import Sentinel, SentinelConnectionPool, SentinelManagedConnection

from shared.bulk_enqueue import BULK_ENQUEUE, Packed, pack
from shared.errors import ConfigError

logger = logging.getLogger(__name__)

SENTINEL_SCHEME = "redis+sentinel"
PLAIN_SCHEMES = ("redis", "rediss", "unix")
DEFAULT_SENTINEL_PORT = 26379
# A sent message counts as handed over once a replica has it too (Redis replicates
# asynchronously: a message only on the primary dies with it). How long a send waits for that:
REPLICA_ACK_MS = 500
# After a send that no replica confirmed in time, later sends do not wait for this long.
REPLICA_LAG_BACKOFF_SECONDS = 10.0
SENTINEL_TIMEOUTS = {"socket_timeout": 2.0, "socket_connect_timeout": 2.0}


@dataclass(frozen=True)
class SentinelGroup:
    """A parsed `redis+sentinel://` URL."""

    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int = 0
    password: str | None = None
    username: str | None = None


def _sentinel_address(part: str) -> tuple[str, int]:
    host, _, port = part.rpartition(":") if ":" in part else (part, "", "")
    host = host.strip("[]")
    if not host:
        raise ConfigError(f"REDIS_URL names a sentinel without a host: {part!r}")
    if not port:
        return host, DEFAULT_SENTINEL_PORT
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"REDIS_URL names a sentinel with a bad port: {part!r}")
    return host, int(port)


def parse_redis_url(redis_url: str) -> SentinelGroup | None:
    """None for a plain Redis URL, the group for a sentinel one; ConfigError when unusable."""
    scheme = redis_url.partition("://")[0]
    if scheme in PLAIN_SCHEMES:
        return None
    if scheme != SENTINEL_SCHEME:
        raise ConfigError(
            "REDIS_URL must be a redis://, rediss://, unix:// or redis+sentinel:// URL"
        )
    parts = urlsplit(redis_url)
    userinfo, at, hosts = parts.netloc.rpartition("@")
    if not at:
        userinfo, hosts = "", parts.netloc
    username, colon, password = userinfo.partition(":")
    path = [unquote(p) for p in parts.path.split("/") if p]
    if not hosts or not path or len(path) > 2:
        raise ConfigError(
            "REDIS_URL must read redis+sentinel://[:password@]host:port[,host:port...]"
            "/<service name>[/<db>]"
        )
    if len(path) == 2 and not path[1].isdigit():
        raise ConfigError(f"REDIS_URL's database must be a number, got {path[1]!r}")
    return SentinelGroup(
        sentinels=tuple(_sentinel_address(h) for h in hosts.split(",")),
        service=path[0],
        db=int(path[1]) if len(path) == 2 else 0,
        password=unquote(password) if colon and password else None,
        username=unquote(username) or None,
    )


def redis_location(redis_url: str) -> str:
    """Where REDIS_URL points, for messages: `host:port`, a socket path, or a Sentinel group
    as `<service> via host:port,...`; never a password."""
    group = parse_redis_url(redis_url)
    if group is not None:
        hosts = ",".join(f"{host}:{port}" for host, port in group.sentinels)
        return f"{group.service} via {hosts}"
    parts = urlsplit(redis_url)
    return f"{parts.hostname}:{parts.port or 6379}" if parts.hostname else parts.path


class PrimaryConnection(SentinelManagedConnection):
    """A connection to the group's primary that asks the sentinels again on every reconnect.

    redis-py's own reconnects a dropped connection that a client keeps (a single-connection
    client, a retried command) to the address it had, the dead primary's, forever
    (redis/redis-py#3874). tests/integration/test_sentinel_connection.py pins this."""

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        if not self._sock:
            self.connect()  # SentinelManagedConnection.connect: the current primary's address
        super().send_packed_command(command, check_health)


class SentinelRedis(redis.Redis):
    """A client of a group's current primary; closing it also closes its sentinel clients."""

    sentinels: Sentinel | None = None

    def close(self) -> None:
        super().close()
        self.connection_pool.disconnect()
        if self.sentinels is not None:
            self.sentinels.close()


def redis_client(redis_url: str, *, single_connection: bool = False, **options: Any) -> redis.Redis:
    """A client of REDIS_URL's Redis (of the group's current primary for a sentinel URL).

    `single_connection`: every command on one connection (WAIT then sees the sends before it).
    """
    group = parse_redis_url(redis_url)
    if group is None:
        client: redis.Redis = redis.Redis.from_url(
            redis_url, single_connection_client=single_connection, **options
        )
        return client
    # A sentinel that does not answer must not hang the lookup: the next one is asked.
    sentinel_options = {
        **SENTINEL_TIMEOUTS,
        **{k: v for k, v in options.items() if k in SENTINEL_TIMEOUTS},
    }
    sentinel = Sentinel(list(group.sentinels), sentinel_kwargs=sentinel_options)
    pool = SentinelConnectionPool(
        group.service,
        sentinel,
        connection_class=PrimaryConnection,
        db=group.db,
        password=group.password,
        username=group.username,
        **options,
    )
    client = SentinelRedis(connection_pool=pool, single_connection_client=single_connection)
    client.auto_close_connection_pool = True
    client.sentinels = sentinel
    return client


def is_replicated(client: redis.Redis) -> bool:
    """True for a client of a Sentinel group (a primary with replicas)."""
    return isinstance(client, SentinelRedis)


def redis_broker(redis_url: str, namespace: str, **broker_options: Any) -> RedisBroker:
    """The worker's Dramatiq broker; its consumers reconnect to the current primary."""
    client = redis_client(redis_url, socket_connect_timeout=5, socket_keepalive=True)
    return RedisBroker(client=client, namespace=namespace, **broker_options)


class SenderBroker(RedisBroker):
    """A broker that only sends; closing it releases its Redis connections.

    On a Sentinel group a send returns once a replica has the message too (WAIT), so a
    failover right after it does not lose it; a replica that does not confirm in time is
    logged and not waited for again for a while (the primary alone still has the message).
    """

    lagging_until = 0.0

    def enqueue(self, message: Message, *, delay: int | None = None) -> Message:
        sent = super().enqueue(message, delay=delay)
        self._await_replica(sent.message_id)
        return sent

    def enqueue_many(self, messages: Sequence[Message]) -> None:
        """Send messages (no delay) in one round trip (see `send_packed`)."""
        if messages:
            self.send_packed(self.pack(messages))

    def pack(self, messages: Sequence[Message]) -> Packed:
        """`messages` encoded for a later `send_packed` (each gets its Redis id now)."""
        return pack(self, messages)

    def send_packed(self, packed: Packed) -> None:
        """Queue a packed batch in one round trip: one atomic script call per queue, in a
        pipeline that is not a transaction, ending with the replica wait on a Sentinel group
        (the pipeline has its own connection: WAIT must follow on it). When it raises, each
        queue's share may or may not be queued, as with a single send whose answer was lost."""
        if not packed.messages:
            return
        wait = is_replicated(self.client) and time.monotonic() >= self.lagging_until
        with self.client.pipeline(transaction=False) as pipe:
            for share in packed.shares:
                # EVAL with the script's text (cached by Redis): no SCRIPT EXISTS round trip
                # before the pipeline, as a registered script's EVALSHA needs.
                pipe.eval(BULK_ENQUEUE, len(share.keys), *share.keys, *share.args)
            if wait:
                pipe.execute_command("WAIT", 1, REPLICA_ACK_MS)
            answers = pipe.execute()
        for message in packed.messages:
            self.emit_after("enqueue", message, None)
        if wait and answers[-1] < 1:
            self._replica_lagging(packed.messages[-1].message_id)

    def _await_replica(self, message_id: str) -> None:
        if is_replicated(self.client) and time.monotonic() >= self.lagging_until:
            if self.client.wait(1, REPLICA_ACK_MS) < 1:
                self._replica_lagging(message_id)

    def _replica_lagging(self, message_id: str) -> None:
        self.lagging_until = time.monotonic() + REPLICA_LAG_BACKOFF_SECONDS
        logger.warning(
            "no replica confirmed message %s within %d ms",
            message_id,
            REPLICA_ACK_MS,
            extra={"event": "replica_ack_missing"},
        )

    def close(self) -> None:
        super().close()
        self.client.close()
        self.client.connection_pool.disconnect()


def sender_broker(redis_url: str, namespace: str, **redis_options: Any) -> SenderBroker:
    """A broker used only to send: no actors, no middleware, no connection yet."""
    single = parse_redis_url(redis_url) is not None
    client = redis_client(redis_url, single_connection=single, **redis_options)
    return SenderBroker(client=client, namespace=namespace, middleware=[])
