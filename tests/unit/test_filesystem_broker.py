"""The embedded broker never hands a worker a message that is still being written."""

from __future__ import annotations

from queue import Empty

import pytest
from kombu import Connection

from pms_backend import filesystem_broker

QUEUE = "celery"


@pytest.fixture
def channel(tmp_path):
    options = {
        "data_folder_in": str(tmp_path),
        "data_folder_out": str(tmp_path),
        "control_folder": str(tmp_path),
        "store_processed": False,
    }
    with Connection(
        "filesystem://", transport=filesystem_broker.Transport, transport_options=options
    ) as connection:
        yield connection.default_channel


class HalfwayFile:
    """A file that, halfway through each write, lets a reader look at the queue."""

    def __init__(self, file, on_halfway):
        self.file, self.on_halfway = file, on_halfway

    def write(self, data: bytes) -> int:
        half = len(data) // 2
        self.file.write(data[:half])
        self.file.flush()
        self.on_halfway()
        return half + self.file.write(data[half:])

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self.file.__exit__(*exc)

    def __getattr__(self, name):
        return getattr(self.file, name)


def test_a_message_is_invisible_to_readers_until_completely_written(channel, monkeypatch):
    seen_halfway = []

    def read_now():
        try:
            seen_halfway.append(channel._get(QUEUE))
        except Empty:
            seen_halfway.append(None)

    monkeypatch.setattr(
        filesystem_broker,
        "open",
        lambda *args, **kwargs: HalfwayFile(open(*args, **kwargs), read_now),  # noqa: SIM115
        raising=False,
    )

    channel._put(QUEUE, {"body": "x" * 10_000, "n": 1})

    assert seen_halfway == [None]  # the reader found nothing, not half a message
    assert channel._get(QUEUE) == {"body": "x" * 10_000, "n": 1}


def test_every_message_comes_out_whole_exactly_once(channel, tmp_path):
    for n in range(50):
        channel._put(QUEUE, {"n": n})

    # Order is by millisecond only, as in kombu's own transport.
    assert sorted(channel._get(QUEUE)["n"] for _ in range(50)) == list(range(50))
    with pytest.raises(Empty):
        channel._get(QUEUE)
    assert list(tmp_path.iterdir()) == []  # no partial files left behind
