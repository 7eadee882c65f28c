"""Where the admin keeps an uploaded import file between its preview and its confirmation.

django-import-export's own temporary storage hands the client the file's name and reads
whatever file of that name the confirmation names: another user's upload, or any file in
the temporary folder (its first line came back in the error). Here the client holds only
a signed ticket naming a random file of a private folder, valid only for the uploader's
login session and for ``MAX_AGE``; anything else is refused before a byte is read.
"""

from __future__ import annotations

import os
import re
import secrets
import stat
import tempfile
import time
from pathlib import Path

from django.core import signing
from django.utils.crypto import salted_hmac

SALT = "catalog.admin_uploads"
MAX_AGE = 24 * 3600  # seconds between preview and confirmation
_FILE_ID = re.compile(r"[0-9a-f]{32}")


class UploadRefused(Exception):
    """The confirmation names no upload of this user's session (tampered, foreign, expired)."""


def _root() -> Path:
    return Path(tempfile.gettempdir()) / "pms-admin-imports"


def _private_folder(path: Path) -> Path:
    """Create ``path`` (mode 0700) or refuse one that is not our own real directory."""
    path.mkdir(mode=0o700, exist_ok=True)
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        raise OSError(f"{path} is not a private directory of this process's user")
    return path


def _folder() -> Path:
    return _private_folder(_root())


def _session_tag(request) -> str:
    return salted_hmac(SALT, request.session.session_key or "").hexdigest()[:32]


def upload_store(data: bytes) -> str:
    """Keep ``data`` under a new random id; return the id."""
    folder = _folder()
    _sweep(folder)
    file_id = secrets.token_hex(16)
    descriptor = os.open(folder / f"{file_id}.csv", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(data)
    return file_id


def upload_read(file_id: str) -> bytes:
    """Return the bytes ``upload_store`` just stored under ``file_id``."""
    return (_folder() / f"{file_id}.csv").read_bytes()


def upload_ticket(request, file_id: str, file_name: str) -> str:
    """Return what the confirmation form carries: ``file_id`` signed for this session."""
    return signing.dumps(
        {
            "user": request.user.pk,
            "session": _session_tag(request),
            "file": file_id,
            "name": file_name,
        },
        salt=SALT,
    )


def upload_take(request, ticket: str) -> tuple[bytes, str]:
    """Return the upload's bytes and file name, and remove it; refuse a foreign ticket.

    Raise ``UploadRefused`` when ``ticket`` is not one ``upload_ticket`` gave this user in
    this session within ``MAX_AGE``, or its file is gone (already imported, swept).
    """
    try:
        claims = signing.loads(ticket, salt=SALT, max_age=MAX_AGE)
    except signing.BadSignature as exc:  # tampered, forged or expired
        raise UploadRefused from exc
    if not (
        isinstance(claims, dict)
        and claims.get("user") == request.user.pk
        and claims.get("session") == _session_tag(request)
        and isinstance(claims.get("file"), str)
        and _FILE_ID.fullmatch(claims["file"])
        and isinstance(claims.get("name"), str)
    ):
        raise UploadRefused
    path = _folder() / f"{claims['file']}.csv"
    taken = path.with_suffix(f".taken-{secrets.token_hex(8)}")
    try:
        path.rename(taken)  # atomic: of two confirmations sent at once, one gets the file
    except FileNotFoundError as exc:
        raise UploadRefused from exc
    try:
        return taken.read_bytes(), claims["name"]
    finally:
        taken.unlink(missing_ok=True)


def _sweep(folder: Path) -> None:
    """Remove uploads older than ``MAX_AGE`` (previews never confirmed)."""
    limit = time.time() - MAX_AGE
    for path in folder.glob("*.csv"):
        try:
            if path.stat().st_mtime < limit:
                path.unlink()
        except FileNotFoundError:
            pass
