"""kombu's file-system transport, with messages that appear whole or not at all.

The embedded broker (no ``REDIS_URL``) keeps each message in a file. kombu writes that
file under its final name, and a worker polling the folder can take it while it is still
empty; the JSON decode error that follows stops the worker for good (kombu issue #1551).
Here a message is written under a name the readers ignore and renamed into place, which
is atomic within one file system.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from time import monotonic
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps

# A reader takes only names ending in "<queue>.msg"; this suffix keeps a partial file out.
PARTIAL_SUFFIX = ".part"


class Channel(filesystem.Channel):
    # The filesystem Channel's own signature, which its stubs too mark as an override.
    def _put(self, queue: str, payload: dict[str, Any], **kwargs: Any) -> None:  # type: ignore[override]
        """Put ``payload`` on ``queue``: write it aside, then rename it into the queue."""
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = final + PARTIAL_SUFFIX
        try:
            with open(partial, "wb") as file:
                file.write(str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.remove(partial)
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel

    @property
    def default_connection_params(self) -> dict:
        # A folder has no host. kombu's default names "localhost", and a connection that
        # states none (``filesystem://``) is then warned about each time it is described
        # ("No hostname was supplied"), at every worker start among others.
        return {"port": self.default_port}
