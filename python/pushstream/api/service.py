"""The operations of the Stream API, independent of HTTP.

Each mutating operation validates its input and checks what it can right away
(404, 409, 422 answer synchronously), then starts a task whose change re-checks
everything inside the catalog transaction — so two concurrent creates of one id end
with one success and one failed task, never two sources.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import replace
from functools import lru_cache
from typing import Any, TypeVar

import orjson

from pushstream import wire
from pushstream._core import Mapping, Record
from pushstream.api import validation as v
from pushstream.api.tasks import Outcome, TaskRunner
from pushstream.catalog import settings as settings_registry
from pushstream.catalog.base import Catalog, Reader, Transaction
from pushstream.catalog.events import Change, ChangeKind, Hooks, SinkChange, SourceChange
from pushstream.catalog.models import By, Disabled, Event, Sink, Source, Task, Version, now, state_hash, takes_signal
from pushstream.config import ServerConfig
from pushstream.errors import (
    AlreadyExistsError,
    BadRequestError,
    ConfigError,
    MappingError,
    NotFoundError,
    ResourceLimitError,
)

MAX_SOURCES_PER_BRANCH = 100
MAX_SINKS_PER_SOURCE = 100
SECRET_LENGTH = 48
# Keboola's reason of a source or sink disabled through the API.
DISABLED_REASON = "API"
_SECRET_CHARS = string.ascii_letters + string.digits

E = TypeVar("E", Source, Sink)


def new_secret() -> str:
    """A source secret: 48 random characters of ``[0-9A-Za-z]``."""
    return "".join(secrets.choice(_SECRET_CHARS) for _ in range(SECRET_LENGTH))


def _placeholder_version(at: str, by: By) -> Version:
    return Version(number=0, hash="", description="", at=at, by=by)


def _versioned(entity: E, number: int, description: str, by: By, at: str | None = None) -> E:
    version = Version(number=number, hash=state_hash(entity.state()), description=description, at=at or now(), by=by)
    return replace(entity, version=version)


def source_not_found(source_id: str) -> NotFoundError:
    return NotFoundError(f'Source "{source_id}" not found in the branch.', error="stream.api.sourceNotFound")


def sink_not_found(sink_id: str) -> NotFoundError:
    return NotFoundError(f'Sink "{sink_id}" not found in the source.', error="stream.api.sinkNotFound")


def deleted_source_not_found(source_id: str) -> NotFoundError:
    return NotFoundError(
        f'Deleted source "{source_id}" not found in the branch.', error="stream.api.deletedSourceNotFound"
    )


def deleted_sink_not_found(sink_id: str) -> NotFoundError:
    return NotFoundError(f'Deleted sink "{sink_id}" not found in the source.', error="stream.api.deletedSinkNotFound")


def version_key(number: int) -> str:
    """A version number as Keboola keys it (``0000000012``): in messages and page ids."""
    return f"{number:010d}"


def version_not_found(source_id: str, sink_id: str, number: int) -> NotFoundError:
    if sink_id:
        return NotFoundError(
            f'Sink version "{sink_id}/{version_key(number)}" not found in the source.',
            error="stream.api.sinkVersionNotFound",
        )
    return NotFoundError(
        f'Source version "{source_id}/{version_key(number)}" not found in the branch.',
        error="stream.api.sourceVersionNotFound",
    )


def source_exists(key: str) -> AlreadyExistsError:
    return AlreadyExistsError(f'Source "{key}" already exists in the branch.', error="stream.api.sourceAlreadyExists")


def sink_exists(key: str) -> AlreadyExistsError:
    return AlreadyExistsError(f'Sink "{key}" already exists in the source.', error="stream.api.sinkAlreadyExists")


def task_not_found(task_id: str) -> NotFoundError:
    return NotFoundError(f'Task "{task_id}" not found.', error="stream.api.taskNotFound")


def _undeleted(entity: E, by: By) -> E:
    """An undeleted entity: a new version, as Keboola counts them."""
    restored = replace(entity, deleted=None)
    return _versioned(restored, entity.version.number + 1, f'Undeleted to version "{entity.version.number}".', by)


@lru_cache(maxsize=256)
def _compiled(columns_json: str) -> Mapping:
    return Mapping(columns_json)


class ConfigService:
    """The Stream API's operations on one catalog. ``by`` is who makes a change."""

    def __init__(self, config: ServerConfig, catalog: Catalog, hooks: Hooks, runner: TaskRunner) -> None:
        self.config = config
        self.catalog = catalog
        self.hooks = hooks
        self.runner = runner

    # Addressing.

    def branch_id(self, branch: str | int) -> int:
        """The numeric id of a branch (``"default"`` → the default branch); 404 if it does not exist."""
        branch_id = self.config.default_branch_id if branch == "default" else int(branch)
        if not self.catalog.branch_exists(branch_id):
            raise NotFoundError(f'Branch "{branch}" not found.', error="stream.api.branchNotFound")
        return branch_id

    def source_url(self, branch_id: int, source_id: str) -> str:
        return f"{self.config.api_url}/v1/branches/{branch_id}/sources/{source_id}"

    def sink_url(self, branch_id: int, source_id: str, sink_id: str) -> str:
        return f"{self.source_url(branch_id, source_id)}/sinks/{sink_id}"

    def ingest_url(self, source: Source, *, secret: str | None = None) -> str:
        """``<source public url>/stream/<projectId>/<sourceId>/<secret>`` (``secret`` replaces the source's)."""
        shown = source.secret if secret is None else secret
        return f"{self.config.source_url}/stream/{source.project_id}/{source.source_id}/{shown}"

    def otlp_base_url(self, source: Source) -> str:
        """``<source public url>/otlp/<projectId>/<sourceId>``: an OTLP source's endpoint without its secret."""
        return f"{self.config.source_url}/otlp/{source.project_id}/{source.source_id}"

    def _source_outputs(self, branch_id: int, source_id: str) -> dict[str, Any]:
        outputs = wire.TaskOutputs(
            url=self.source_url(branch_id, source_id),
            project_id=self.config.project_id,
            branch_id=branch_id,
            source_id=source_id,
        )
        return dict(wire.to_builtins(outputs))

    def _sink_outputs(self, branch_id: int, source_id: str, sink_id: str) -> dict[str, Any]:
        outputs = wire.TaskOutputs(
            url=self.sink_url(branch_id, source_id, sink_id),
            project_id=self.config.project_id,
            branch_id=branch_id,
            source_id=source_id,
            sink_id=sink_id,
        )
        return dict(wire.to_builtins(outputs))

    @staticmethod
    def _source(reader: Reader, branch_id: int, source_id: str) -> Source:
        source = reader.get_source(branch_id, source_id)
        if source is None:
            raise source_not_found(source_id)
        return source

    @classmethod
    def _sink(cls, reader: Reader, branch_id: int, source_id: str, sink_id: str) -> Sink:
        cls._source(reader, branch_id, source_id)
        sink = reader.get_sink(branch_id, source_id, sink_id)
        if sink is None:
            raise sink_not_found(sink_id)
        return sink

    # Tasks.

    def get_task(self, task_id: str) -> Task:
        task = self.catalog.get_task(task_id)
        if task is None:
            raise task_not_found(task_id)
        return task

    # Sources.

    def list_sources(
        self, branch_id: int, *, deleted: bool = False, after_id: str = "", limit: int = 100
    ) -> tuple[list[Source], int]:
        return self.catalog.page_sources(branch_id, deleted=deleted, after_id=after_id, limit=limit)

    def get_source(self, branch_id: int, source_id: str) -> Source:
        return self._source(self.catalog, branch_id, source_id)

    def create_source(self, branch_id: int, body: dict[str, Any], by: By) -> Task:
        fields = v.source_fields(body, create=True)
        assert fields.name is not None
        name = fields.name
        source_id = v.entity_id(body, "sourceId", name, "source")
        task_type = "api.create.source"

        def reserve(tx: Transaction) -> None:
            # A create of the same id still running is a conflict now, not a failed task later.
            self._check_source_free(tx, branch_id, source_id)
            if tx.has_processing_task(f"{task_type}/{branch_id}/{source_id}/"):
                raise source_exists(f"{self.config.project_id}/{branch_id}/{source_id}")

        def apply(tx: Transaction, task_id: str) -> Outcome:
            existing = self._check_source_free(tx, branch_id, source_id)
            at = now()
            source = Source(
                project_id=self.config.project_id,
                branch_id=branch_id,
                source_id=source_id,
                name=name,
                description=fields.description or "",
                secret=new_secret(),
                type=fields.type or "http",
                version=_placeholder_version(at, by),
                created=Event(at, by),
            )
            number = existing.version.number + 1 if existing else 1
            source = _versioned(source, number, "New source.", by, at)
            tx.put_source(source)
            tx.add_version(branch_id, source_id, "", source.version, source.state())
            return Outcome(
                "Source has been created successfully.", [SourceChange("created", None, source, tx, task_id)]
            )

        return self.runner.start(
            task_type, (branch_id, source_id), self._source_outputs(branch_id, source_id), apply, reserve=reserve
        )

    @staticmethod
    def _check_source_free(reader: Reader, branch_id: int, source_id: str) -> Source | None:
        """Raises 409/422 unless a source can be created; returns a deleted source with the id, if any."""
        existing = reader.get_source(branch_id, source_id, deleted=None)
        if existing is not None and not existing.is_deleted:
            raise source_exists(source_id)
        if reader.count_sources(branch_id) >= MAX_SOURCES_PER_BRANCH:
            raise ResourceLimitError(f"Maximum number of sources per branch is {MAX_SOURCES_PER_BRANCH}.")
        return existing

    def update_source(self, branch_id: int, source_id: str, body: dict[str, Any], by: By) -> Task:
        fields = v.source_fields(body, create=False)
        change_description = fields.change_description
        self._source(self.catalog, branch_id, source_id)

        def apply(tx: Transaction, task_id: str) -> Outcome:
            current = self._source(tx, branch_id, source_id)
            new = replace(
                current,
                name=current.name if fields.name is None else fields.name,
                description=current.description if fields.description is None else fields.description,
                type=current.type if fields.type is None else fields.type,
            )
            message = "Source has been updated successfully."
            # Every update is a new version (as in Keboola), also one that changes nothing.
            new = _versioned(new, current.version.number + 1, change_description or "Updated.", by)
            tx.put_source(new)
            tx.add_version(branch_id, source_id, "", new.version, new.state())
            return Outcome(message, [SourceChange("updated", current, new, tx, task_id)])

        return self.runner.start(
            "api.update.source", (branch_id, source_id), self._source_outputs(branch_id, source_id), apply
        )

    def delete_source(self, branch_id: int, source_id: str, by: By, *, cascade: bool = False) -> Task:
        """Soft-deletes a source and its sinks; ``cascade`` hard-deletes them (hooks get ``purge=True``)."""
        self._source(self.catalog, branch_id, source_id)

        def apply(tx: Transaction, task_id: str) -> Outcome:
            current = self._source(tx, branch_id, source_id)
            sinks, _ = tx.page_sinks(branch_id, source_id)
            changes: list[Change] = []
            if cascade:
                tx.purge_source(branch_id, source_id)
                changes.append(SourceChange("deleted", current, None, tx, task_id, purge=True))
                changes.extend(
                    SinkChange("deleted", sink, None, tx, task_id, purge=True, cause="source") for sink in sinks
                )
            else:
                deleted = Event(now(), by)
                new = replace(current, deleted=deleted)
                tx.put_source(new)
                changes.append(SourceChange("deleted", current, new, tx, task_id))
                for sink in sinks:
                    new_sink = replace(sink, deleted=deleted, deleted_with_source=True)
                    tx.put_sink(new_sink)
                    changes.append(SinkChange("deleted", sink, new_sink, tx, task_id, cause="source"))
            return Outcome("Source has been deleted successfully.", changes)

        return self.runner.start(
            "api.delete.source", (branch_id, source_id), self._source_outputs(branch_id, source_id), apply
        )

    def undelete_source(self, branch_id: int, source_id: str, by: By) -> Task:
        """Restores a deleted source with the sinks that were deleted with it."""
        self._check_undelete_source(self.catalog, branch_id, source_id)

        def apply(tx: Transaction, task_id: str) -> Outcome:
            current = self._check_undelete_source(tx, branch_id, source_id)
            new = _undeleted(current, by)
            tx.put_source(new)
            tx.add_version(branch_id, source_id, "", new.version, new.state())
            changes: list[Change] = [SourceChange("undeleted", current, new, tx, task_id)]
            sinks, _ = tx.page_sinks(branch_id, source_id, deleted=True)
            for sink in sinks:
                if sink.deleted_with_source:
                    new_sink = replace(_undeleted(sink, by), deleted_with_source=False)
                    tx.put_sink(new_sink)
                    tx.add_version(branch_id, source_id, sink.sink_id, new_sink.version, new_sink.state())
                    changes.append(SinkChange("undeleted", sink, new_sink, tx, task_id, cause="source"))
            return Outcome("Source has been undeleted successfully.", changes)

        return self.runner.start(
            "api.undelete.source", (branch_id, source_id), self._source_outputs(branch_id, source_id), apply
        )

    @staticmethod
    def _check_undelete_source(reader: Reader, branch_id: int, source_id: str) -> Source:
        current = reader.get_source(branch_id, source_id, deleted=True)
        if current is None:
            raise deleted_source_not_found(source_id)
        if reader.count_sources(branch_id) >= MAX_SOURCES_PER_BRANCH:
            raise ResourceLimitError(f"Maximum number of sources per branch is {MAX_SOURCES_PER_BRANCH}.")
        return current

    def set_source_enabled(self, branch_id: int, source_id: str, enabled: bool, by: By) -> Task:
        """Enables or disables a source (a new version; nothing changes if it already is)."""
        self._source(self.catalog, branch_id, source_id)
        verb: ChangeKind = "enabled" if enabled else "disabled"

        def apply(tx: Transaction, task_id: str) -> Outcome:
            current = self._source(tx, branch_id, source_id)
            message = f"Source has been {verb} successfully."
            if current.enabled == enabled:
                return Outcome(message)
            disabled = None if enabled else Disabled(now(), by, DISABLED_REASON)
            new = _versioned(
                replace(current, disabled=disabled), current.version.number + 1, f"{verb.capitalize()}.", by
            )
            tx.put_source(new)
            tx.add_version(branch_id, source_id, "", new.version, new.state())
            return Outcome(message, [SourceChange(verb, current, new, tx, task_id)])

        task_type = "api.enable.source" if enabled else "api.disable.source"
        return self.runner.start(task_type, (branch_id, source_id), self._source_outputs(branch_id, source_id), apply)

    def rotate_secret(self, branch_id: int, source_id: str) -> Source:
        """Replaces the secret of a source at once (no task, no new version); the old one stops working."""
        with self.catalog.transaction() as tx:
            current = self._source(tx, branch_id, source_id)
            new = replace(current, secret=new_secret())
            tx.put_source(new)
            tx.bump_revision()
        return new

    def source_settings(self, branch_id: int, source_id: str) -> list[dict[str, Any]]:
        source = self._source(self.catalog, branch_id, source_id)
        return settings_registry.describe([self.config.settings], source.settings)

    def patch_source_settings(self, branch_id: int, source_id: str, body: dict[str, Any], by: By) -> Task:
        patch = v.settings_patch(body)
        self._source(self.catalog, branch_id, source_id)

        def apply(tx: Transaction, task_id: str) -> Outcome:
            current = self._source(tx, branch_id, source_id)
            settings = _patched(current.settings, patch.values)
            message = "Source settings have been updated successfully."
            new = replace(current, settings=settings)
            new = _versioned(new, current.version.number + 1, patch.change_description or "Updated settings.", by)
            tx.put_source(new)
            tx.add_version(branch_id, source_id, "", new.version, new.state())
            # A patch that changes no value is still a version; hooks see it as a plain update.
            kind: ChangeKind = "settings_changed" if settings != current.settings else "updated"
            changes: list[Change] = [SourceChange(kind, current, new, tx, task_id)]
            sinks, _ = tx.page_sinks(branch_id, source_id)
            changes.extend(
                SinkChange("settings_changed", sink, sink, tx, task_id, cause="source")
                for sink in sinks
                if any(key not in sink.settings for key in _changed_keys(current.settings, settings))
            )
            return Outcome(message, changes)

        return self.runner.start(
            "api.update.sourceSettings", (branch_id, source_id), self._source_outputs(branch_id, source_id), apply
        )

    # Versions.

    def list_versions(
        self, branch_id: int, source_id: str, sink_id: str = "", *, after_id: str = "", limit: int = 100
    ) -> tuple[list[Version], int]:
        if sink_id:
            self._sink(self.catalog, branch_id, source_id, sink_id)
        else:
            self._source(self.catalog, branch_id, source_id)
        after = 0
        if after_id:
            if not after_id.isdigit() or len(after_id) > 18:
                raise BadRequestError(f'"query.afterId" must be a version number, found "{after_id}".')
            after = int(after_id)
        return self.catalog.page_versions(branch_id, source_id, sink_id, after=after, limit=limit)

    def get_version(self, branch_id: int, source_id: str, sink_id: str, number: int) -> Version:
        if sink_id:
            self._sink(self.catalog, branch_id, source_id, sink_id)
        else:
            self._source(self.catalog, branch_id, source_id)
        found = self.catalog.get_version(branch_id, source_id, sink_id, number)
        if found is None:
            raise version_not_found(source_id, sink_id, number)
        return found[0]

    def rollback_source(self, branch_id: int, source_id: str, number: int, by: By) -> Task:
        """A new version of the source with the state of version ``number`` (the secret and the enabled state stay)."""
        self.get_version(branch_id, source_id, "", number)

        def apply(tx: Transaction, task_id: str) -> Outcome:
            current = self._source(tx, branch_id, source_id)
            found = tx.get_version(branch_id, source_id, "", number)
            if found is None:
                raise version_not_found(source_id, "", number)
            new = replace(current.with_state(found[1]), disabled=current.disabled)
            new = _versioned(new, current.version.number + 1, f'Rollback to version "{number}".', by)
            tx.put_source(new)
            tx.add_version(branch_id, source_id, "", new.version, new.state())
            return Outcome(
                "Source version was rolled back successfully.", [SourceChange("updated", current, new, tx, task_id)]
            )

        return self.runner.start(
            "api.rollback.sourceVersion", (branch_id, source_id), self._source_outputs(branch_id, source_id), apply
        )

    # Sinks.

    def list_sinks(
        self, branch_id: int, source_id: str, *, deleted: bool = False, after_id: str = "", limit: int = 100
    ) -> tuple[list[Sink], int]:
        self._source(self.catalog, branch_id, source_id)
        return self.catalog.page_sinks(branch_id, source_id, deleted=deleted, after_id=after_id, limit=limit)

    def get_sink(self, branch_id: int, source_id: str, sink_id: str) -> Sink:
        return self._sink(self.catalog, branch_id, source_id, sink_id)

    def create_sink(self, branch_id: int, source_id: str, body: dict[str, Any], by: By) -> Task:
        # The payload is validated first, as Keboola's generated validators run before the operation.
        fields = v.sink_fields(body, create=True)
        assert fields.name is not None and fields.table is not None
        name, table = fields.name, fields.table
        sink_id = v.entity_id(body, "sinkId", name, "sink")
        task_type = "api.create.sink"

        def reserve(tx: Transaction) -> None:
            # A create of the same id still running is a conflict now, not a failed task later.
            self._source(tx, branch_id, source_id)
            self._check_sink_free(tx, branch_id, source_id, sink_id)
            if tx.has_processing_task(f"{task_type}/{branch_id}/{source_id}/{sink_id}/"):
                raise sink_exists(f"{self.config.project_id}/{branch_id}/{source_id}/{sink_id}")

        def apply(tx: Transaction, task_id: str) -> Outcome:
            self._source(tx, branch_id, source_id)
            existing = self._check_sink_free(tx, branch_id, source_id, sink_id)
            at = now()
            sink = Sink(
                project_id=self.config.project_id,
                branch_id=branch_id,
                source_id=source_id,
                sink_id=sink_id,
                name=name,
                description=fields.description or "",
                table=table,
                allowed_signals=fields.allowed_signals or (),
                version=_placeholder_version(at, by),
                created=Event(at, by),
            )
            number = existing.version.number + 1 if existing else 1
            sink = _versioned(sink, number, "New sink.", by, at)
            tx.put_sink(sink)
            tx.add_version(branch_id, source_id, sink_id, sink.version, sink.state())
            return Outcome("Sink has been created successfully.", [SinkChange("created", None, sink, tx, task_id)])

        return self.runner.start(
            task_type,
            (branch_id, source_id, sink_id),
            self._sink_outputs(branch_id, source_id, sink_id),
            apply,
            reserve=reserve,
        )

    @staticmethod
    def _check_sink_free(reader: Reader, branch_id: int, source_id: str, sink_id: str) -> Sink | None:
        existing = reader.get_sink(branch_id, source_id, sink_id, deleted=None)
        if existing is not None and not existing.is_deleted:
            raise sink_exists(sink_id)
        if reader.count_sinks(branch_id, source_id) >= MAX_SINKS_PER_SOURCE:
            raise ResourceLimitError(f"Maximum number of sinks per source is {MAX_SINKS_PER_SOURCE}.")
        return existing

    def update_sink(self, branch_id: int, source_id: str, sink_id: str, body: dict[str, Any], by: By) -> Task:
        fields = v.sink_fields(body, create=False)
        change_description = fields.change_description
        self._sink(self.catalog, branch_id, source_id, sink_id)

        def apply(tx: Transaction, task_id: str) -> Outcome:
            current = self._sink(tx, branch_id, source_id, sink_id)
            new = replace(
                current,
                name=current.name if fields.name is None else fields.name,
                description=current.description if fields.description is None else fields.description,
                type=current.type if fields.type is None else fields.type,
                table=current.table if fields.table is None else {**current.table, **fields.table},
                allowed_signals=current.allowed_signals if fields.allowed_signals is None else fields.allowed_signals,
            )
            message = "Sink has been updated successfully."
            # Every update is a new version (as in Keboola), also one that changes nothing.
            new = _versioned(new, current.version.number + 1, change_description or "Updated.", by)
            tx.put_sink(new)
            tx.add_version(branch_id, source_id, sink_id, new.version, new.state())
            return Outcome(message, [SinkChange("updated", current, new, tx, task_id)])

        return self.runner.start(
            "api.update.sink", (branch_id, source_id, sink_id), self._sink_outputs(branch_id, source_id, sink_id), apply
        )

    def delete_sink(self, branch_id: int, source_id: str, sink_id: str, by: By) -> Task:
        self._sink(self.catalog, branch_id, source_id, sink_id)

        def apply(tx: Transaction, task_id: str) -> Outcome:
            current = self._sink(tx, branch_id, source_id, sink_id)
            new = replace(current, deleted=Event(now(), by), deleted_with_source=False)
            tx.put_sink(new)
            return Outcome("Sink has been deleted successfully.", [SinkChange("deleted", current, new, tx, task_id)])

        return self.runner.start(
            "api.delete.sink", (branch_id, source_id, sink_id), self._sink_outputs(branch_id, source_id, sink_id), apply
        )

    def undelete_sink(self, branch_id: int, source_id: str, sink_id: str, by: By) -> Task:
        self._check_undelete_sink(self.catalog, branch_id, source_id, sink_id)

        def apply(tx: Transaction, task_id: str) -> Outcome:
            current = self._check_undelete_sink(tx, branch_id, source_id, sink_id)
            new = replace(_undeleted(current, by), deleted_with_source=False)
            tx.put_sink(new)
            tx.add_version(branch_id, source_id, sink_id, new.version, new.state())
            return Outcome(
                "Sink has been undeleted successfully.", [SinkChange("undeleted", current, new, tx, task_id)]
            )

        return self.runner.start(
            "api.undelete.sink",
            (branch_id, source_id, sink_id),
            self._sink_outputs(branch_id, source_id, sink_id),
            apply,
        )

    def _check_undelete_sink(self, reader: Reader, branch_id: int, source_id: str, sink_id: str) -> Sink:
        self._source(reader, branch_id, source_id)
        current = reader.get_sink(branch_id, source_id, sink_id, deleted=True)
        if current is None:
            raise deleted_sink_not_found(sink_id)
        if reader.count_sinks(branch_id, source_id) >= MAX_SINKS_PER_SOURCE:
            raise ResourceLimitError(f"Maximum number of sinks per source is {MAX_SINKS_PER_SOURCE}.")
        return current

    def set_sink_enabled(self, branch_id: int, source_id: str, sink_id: str, enabled: bool, by: By) -> Task:
        self._sink(self.catalog, branch_id, source_id, sink_id)
        verb: ChangeKind = "enabled" if enabled else "disabled"

        def apply(tx: Transaction, task_id: str) -> Outcome:
            current = self._sink(tx, branch_id, source_id, sink_id)
            message = f"Sink has been {verb} successfully."
            if current.enabled == enabled:
                return Outcome(message)
            disabled = None if enabled else Disabled(now(), by, DISABLED_REASON)
            new = _versioned(
                replace(current, disabled=disabled), current.version.number + 1, f"{verb.capitalize()}.", by
            )
            tx.put_sink(new)
            tx.add_version(branch_id, source_id, sink_id, new.version, new.state())
            return Outcome(message, [SinkChange(verb, current, new, tx, task_id)])

        task_type = "api.enable.sink" if enabled else "api.disable.sink"
        return self.runner.start(
            task_type, (branch_id, source_id, sink_id), self._sink_outputs(branch_id, source_id, sink_id), apply
        )

    def sink_settings(self, branch_id: int, source_id: str, sink_id: str) -> list[dict[str, Any]]:
        sink = self._sink(self.catalog, branch_id, source_id, sink_id)
        source = self._source(self.catalog, branch_id, source_id)
        return settings_registry.describe([self.config.settings, source.settings], sink.settings)

    def patch_sink_settings(self, branch_id: int, source_id: str, sink_id: str, body: dict[str, Any], by: By) -> Task:
        patch = v.settings_patch(body)
        self._sink(self.catalog, branch_id, source_id, sink_id)

        def apply(tx: Transaction, task_id: str) -> Outcome:
            current = self._sink(tx, branch_id, source_id, sink_id)
            settings = _patched(current.settings, patch.values)
            message = "Sink settings have been updated successfully."
            new = replace(current, settings=settings)
            new = _versioned(new, current.version.number + 1, patch.change_description or "Updated settings.", by)
            tx.put_sink(new)
            tx.add_version(branch_id, source_id, sink_id, new.version, new.state())
            # A patch that changes no value is still a version; hooks see it as a plain update.
            kind: ChangeKind = "settings_changed" if settings != current.settings else "updated"
            return Outcome(message, [SinkChange(kind, current, new, tx, task_id)])

        return self.runner.start(
            "api.update.sinkSettings",
            (branch_id, source_id, sink_id),
            self._sink_outputs(branch_id, source_id, sink_id),
            apply,
        )

    def rollback_sink(self, branch_id: int, source_id: str, sink_id: str, number: int, by: By) -> Task:
        """A new version of the sink with the state of version ``number`` (the enabled state stays)."""
        self.get_version(branch_id, source_id, sink_id, number)

        def apply(tx: Transaction, task_id: str) -> Outcome:
            current = self._sink(tx, branch_id, source_id, sink_id)
            found = tx.get_version(branch_id, source_id, sink_id, number)
            if found is None:
                raise version_not_found(source_id, sink_id, number)
            new = replace(current.with_state(found[1]), disabled=current.disabled)
            new = _versioned(new, current.version.number + 1, f'Rollback to version "{number}".', by)
            tx.put_sink(new)
            tx.add_version(branch_id, source_id, sink_id, new.version, new.state())
            return Outcome(
                "Sink version was rolled back successfully.", [SinkChange("updated", current, new, tx, task_id)]
            )

        return self.runner.start(
            "api.rollback.sinkVersion",
            (branch_id, source_id, sink_id),
            self._sink_outputs(branch_id, source_id, sink_id),
            apply,
        )

    # Test.

    def test_source(
        self,
        branch_id: int,
        source_id: str,
        body: bytes,
        headers: list[tuple[str, str]],
        ip: str,
        *,
        signal: str | None = None,
    ) -> list[tuple[Sink, list[str]]]:
        """Maps one request (body, headers, client IP) with every enabled sink of the
        source, as the receiver would; returns each sink with its row. For an OTLP
        source the body is one flattened record of ``signal`` (default ``logs``),
        mapped by the sinks that take that signal (``allowedSignals``).

        A sink whose mapping fails raises 422 ``stream.api.unprocessableContent``
        (a body that cannot be parsed, an unsupported content type, a missing value,
        a failing template).
        """
        source = self._source(self.catalog, branch_id, source_id)
        sinks, _ = self.catalog.page_sinks(branch_id, source_id)
        record = Record(body, headers, ip)
        result = []
        for sink in sinks:
            if not sink.enabled:
                continue
            if source.type == "otlp" and not takes_signal(sink.allowed_signals, signal or "logs"):
                continue
            try:
                mapping = _compiled(_columns_json(sink))
                row = mapping.map(record)
            except ConfigError as exc:
                raise BadRequestError(f'Sink "{sink.sink_id}" has an invalid mapping: {exc.message}.') from None
            except MappingError as exc:
                raise _mapping_error(sink, exc) from None
            result.append((sink, row))
        return result


def _columns_json(sink: Sink) -> str:
    return orjson.dumps(sink.columns).decode()


def _mapping_error(sink: Sink, exc: MappingError) -> BadRequestError:
    """Keboola answers a request its sinks cannot map with 422 ``stream.api.unprocessableContent``
    (a body that cannot be parsed, a content type the mapping cannot read, a missing value, a failing template)."""
    where = f'sink "{sink.sink_id}"'
    if exc.kind in ("malformed_body", "unsupported_content_type"):
        message = f"Cannot map the body for {where}: {exc.reason}."
    else:
        column = f'column "{exc.column}" of {where}' if exc.column else where
        message = f"Invalid value for {column}: {exc.reason}."
    return BadRequestError(message, error="stream.api.unprocessableContent", status_code=422)


def _patched(current: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    settings = dict(current)
    for key, value in values.items():
        if value is None:
            settings.pop(key, None)
        else:
            settings[key] = value
    return dict(sorted(settings.items()))


def _changed_keys(old: dict[str, Any], new: dict[str, Any]) -> set[str]:
    return {key for key in old.keys() | new.keys() if old.get(key) != new.get(key)}
