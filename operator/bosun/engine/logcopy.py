"""Writes an operation's log into its namespace as ConfigMaps (`models.logcopy` says why and how).

The log store stays the operator's own record; this copy is what people read. A chunk is written
by server-side apply (create or replace in one request) and only when its bytes changed, so a
running operation rewrites just its last chunk, once per log flush. Errors are sorted as the store's
are: a busy API server raises `StoreUnavailable` (the log keeps the lines and tries again); a
namespace being deleted, or a refusal no retry will change, ends the copying with one warning in the
operator's log, as the store still has every line.
"""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict

from bosun.errors import PermanentError, TransientError
from bosun.kube import Kube, NamespaceTerminating
from bosun.models import logcopy
from bosun.models.names import API_VERSION
from bosun.store import StoreUnavailable

logger = logging.getLogger(__name__)
REMEMBERED = 10_000  # logs whose written chunks this process remembers (the driver's, then settle's)
_written: OrderedDict[str, dict[int, str]] = OrderedDict()  # uid -> chunk index -> digest of its bytes


def _digests(uid: str) -> dict[int, str]:
    known = _written.setdefault(uid, {})
    _written.move_to_end(uid)
    while len(_written) > REMEMBERED:
        _written.popitem(last=False)
    return known


def forget(uid: str) -> None:
    """The operation is archived: nothing writes its copy again (if something did, every chunk is
    applied once more, with the same bytes)."""
    _written.pop(uid, None)


def forget_written() -> None:
    """As a new process: every chunk is written again (and the API server keeps the same bytes)."""
    _written.clear()


class ConfigMapLogCopy:
    def __init__(
        self, kube: Kube, namespace: str, operation: str, uid: str, *, owner: dict[str, str] | None = None
    ) -> None:
        self.kube = kube
        self.owner = owner  # an ownerReference's kind, name and uid: the copy goes with that object
        self.namespace = namespace
        self.operation = operation
        self.uid = uid
        self._written = _digests(uid)  # shared by every copy of this log in this process
        self.given_up = False

    @property
    def remembered(self) -> bool:
        return bool(self._written)

    async def read(self) -> bytes:
        """What the copy holds (after a restart, say): every chunk up to the first missing one."""
        chunks = await self.kube.list_labelled(self.namespace, "ConfigMap", {logcopy.UID_LABEL: self.uid})
        try:
            return logcopy.assemble(chunks, self.operation, self.uid)
        except logcopy.DamagedLog as error:
            logger.warning("log copy of %s/%s rewritten from the store: %s", self.namespace, self.operation, error)
            return b""

    async def write(self, body: bytes) -> None:
        if self.given_up:
            return
        chunks = logcopy.split(body)
        for index, data in enumerate(chunks):
            digest = hashlib.sha256(data).hexdigest()
            if self._written.get(index) == digest:
                continue
            manifest = logcopy.chunk_manifest(self.namespace, self.operation, self.uid, index, data)
            if self.owner:
                manifest["metadata"]["ownerReferences"] = [{"apiVersion": API_VERSION, **self.owner}]
            try:
                await self.kube.apply(self.namespace, manifest)
            except TransientError as error:
                raise StoreUnavailable(f"log copy {manifest['metadata']['name']}: {error}") from error
            except (NamespaceTerminating, PermanentError) as error:
                logger.warning("log of %s/%s is not copied to its namespace: %s", self.namespace, self.operation, error)
                self.given_up = True
                return
            self._written[index] = digest
        for index in sorted(i for i in self._written if i >= len(chunks)):  # the log was rewritten shorter
            name = logcopy.chunk_name(self.operation, self.uid, index)
            try:
                await self.kube.delete_config_map(self.namespace, name)
            except TransientError as error:
                raise StoreUnavailable(f"log copy {name}: {error}") from error
            except PermanentError as error:
                logger.warning("stale log chunk %s/%s not removed: %s", self.namespace, name, error)
            del self._written[index]
