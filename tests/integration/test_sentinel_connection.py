"""The sentinel connection srjobs uses: a connection kept after its primary died asks for the
primary again when it reconnects (redis-py's own reconnects to the old address)."""

from urllib.parse import urlsplit

import pytest
import redis

from shared.brokers import PrimaryConnection
from tests.conftest import servers
from tests.support.throwaway import free_port


class Sentinels:
    """Stands in for the pool's view of the sentinels: names the current primary."""

    is_master = True
    check_connection = False
    service_name = "srjobs"

    def __init__(self, address: tuple[str, int]) -> None:
        self.address = address
        self.asked = 0

    def get_master_address(self) -> tuple[str, int]:
        self.asked += 1
        return self.address


def test_a_dropped_connection_reconnects_to_the_primary_the_sentinels_name_now():
    live = urlsplit(servers().redis_url)
    sentinels = Sentinels(("127.0.0.1", free_port()))  # nothing listens there: a dead primary
    conn = PrimaryConnection(connection_pool=sentinels, socket_timeout=2)
    try:
        with pytest.raises(redis.ConnectionError):
            conn.send_command("PING")
        sentinels.address = (live.hostname or "127.0.0.1", live.port or 6379)  # promoted
        conn.send_command("PING")
        assert conn.read_response() in (b"PONG", "PONG")
        assert (conn.host, conn.port) == sentinels.address
        assert sentinels.asked >= 2
    finally:
        conn.disconnect()
