"""The in-memory fakes keep up with their ports: every method a Protocol of
``assay_service.ports`` declares exists on its fake with the same parameters (a port
change the fake misses fails here, since ``make check`` does not type the tests), and the
fakes refuse what their adapters refuse."""

from __future__ import annotations

import inspect
import typing
import uuid
from datetime import UTC, datetime

import pytest
from assay_service.errors import ConflictError, InvalidRequestError, QuotaExceededError
from assay_service.models.domain import Eval, EvalVersion, Metric, Run, Tenant
from assay_service.ports import RunQuery
from botocore.exceptions import ClientError

from tests.support import fakes
from tests.support.factories import a_run


def _methods(cls: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in vars(cls).items()
        if callable(member) and not name.startswith("_")
    }


def _shape(signature: inspect.Signature) -> list[tuple[str, inspect._ParameterKind, bool]]:
    """Names, kinds and whether each has a default (``self`` left out)."""
    return [
        (p.name, p.kind, p.default is not inspect.Parameter.empty)
        for p in signature.parameters.values()
        if p.name != "self"
    ]


@pytest.mark.parametrize("port", list(fakes.FAKES), ids=lambda port: port.__name__)
def test_every_port_method_is_on_its_fake_with_the_same_parameters(port: type):
    fake = fakes.FAKES[port]
    declared = _methods(port)
    assert declared, f"{port.__name__} declares no methods"
    for name, signature in declared.items():
        assert hasattr(fake, name), f"{fake.__name__} lacks {port.__name__}.{name}"
        assert _shape(inspect.signature(getattr(fake, name))) == _shape(signature), (
            f"{fake.__name__}.{name} does not take {port.__name__}.{name}'s parameters"
        )


def test_every_port_has_a_fake():
    from assay_service import ports

    protocols = {
        obj
        for obj in vars(ports).values()
        if inspect.isclass(obj) and getattr(obj, "_is_protocol", False) and obj.__module__ == ports.__name__
    }
    assert protocols <= set(fakes.FAKES), sorted(p.__name__ for p in protocols - set(fakes.FAKES))


def test_the_fake_ports_hold_a_fake_of_every_port():
    """``fakes.Ports`` against ``ports.Ports``: its methods are checked above, its
    properties here (each a field holding the fake of the port it returns)."""
    from assay_service import ports

    fake = fakes.Ports()
    properties = {name: m for name, m in vars(ports.Ports).items() if isinstance(m, property)}
    assert properties, "ports.Ports declares no properties"
    for name, prop in properties.items():
        port = typing.get_type_hints(prop.fget)["return"]
        assert isinstance(getattr(fake, name, None), fakes.FAKES[port]), (
            f"fakes.Ports.{name} is not a {fakes.FAKES[port].__name__}"
        )
    assert fake.model_client("openai") is fake.model_client("bedrock") is fake.judge


def new_run(tenant_id: uuid.UUID, status: str = "pending") -> Run:
    return a_run(tenant_id=tenant_id, status=status, metrics=[Metric(name="m", scorer="exact_match")])


NOW = "2026-12-07T12:00:00+00:00"


def test_the_run_fake_is_no_yes_man():
    repo = fakes.FakeRunRepository()
    tenant = uuid.uuid4()
    run = new_run(tenant)
    assert repo.create(run, max_in_flight=1, idempotency=("k", "h1")) == run.id
    assert repo.create(new_run(tenant), max_in_flight=5, idempotency=("k", "h1")) == run.id
    with pytest.raises(ConflictError):
        repo.create(new_run(tenant), max_in_flight=5, idempotency=("k", "h2"))
    with pytest.raises(QuotaExceededError):
        repo.create(new_run(tenant), max_in_flight=1)
    # pending: no batch is recorded
    assert repo.record_batch(run, 0, completed=2, failed=0, records=[], evaluations=[], now=NOW) == "inactive"
    assert repo.set_status(run, "completed", expect=["running"]) is False
    assert repo.set_status(run, "running", expect=["pending"], fields={"started_at": NOW}) is True
    assert repo.set_status(run, "running", expect=["pending"]) is False  # the stored one moved on
    assert repo.record_batch(run, 0, completed=2, failed=0, records=[], evaluations=[], now=NOW) == "recorded"
    assert (
        repo.record_batch(run, 0, completed=2, failed=0, records=[], evaluations=[], now=NOW) == "duplicate"
    )
    stored = repo.get(tenant, run.id)
    assert stored is not None
    assert (stored.completed_count, stored.started_at) == (2, datetime.fromisoformat(NOW))
    assert repo.delete(run) is False  # the caller's copy is stale (pending): the write refuses
    assert repo.count(RunQuery(tenant_id=tenant, criteria={"status": "running"})) == 1
    assert repo.count(RunQuery(tenant_id=tenant, criteria={"status": "pending"})) == 0
    assert repo.get(uuid.uuid4(), run.id) is None  # another tenant's id space


def test_the_run_list_pages_newest_first_with_a_bound_cursor():
    repo = fakes.FakeRunRepository()
    tenant = uuid.uuid4()
    made = [new_run(tenant) for _ in range(5)]
    for run in made:
        repo.create(run, max_in_flight=10)
    newest_first = sorted(made, key=lambda r: (r.created_at.isoformat(), str(r.id)), reverse=True)
    page, cursor = repo.list_page(RunQuery(tenant_id=tenant, criteria={}, limit=2))
    rest, end = repo.list_page(RunQuery(tenant_id=tenant, criteria={}, limit=10, cursor=cursor))
    assert [r.id for r in page + rest] == [r.id for r in newest_first]
    assert end is None
    skipped, _ = repo.list_page(RunQuery(tenant_id=tenant, criteria={}, limit=2, offset=3))
    assert [r.id for r in skipped] == [r.id for r in newest_first[3:]]
    with pytest.raises(InvalidRequestError):
        repo.list_page(RunQuery(tenant_id=tenant, criteria={"status": "pending"}, cursor=cursor))


def test_an_object_is_stored_on_close_and_never_on_abort():
    store = fakes.FakeArtifactStore()
    kept, dropped = store.writer("a", "text/plain"), store.writer("b", "text/plain")
    kept.write(b"hello\n")
    dropped.write(b"gone\n")
    dropped.abort()
    assert store.size("a") is None  # not before close
    assert kept.close() == 6
    assert (store.size("a"), store.size("b")) == (6, None)
    assert store.get_bytes("a", byte_range=(1, 3)) == b"ell"  # an inclusive range, as S3's


def test_the_key_fake_writes_a_use_only_past_the_condition():
    repo = fakes.FakeTenantRepository()
    tenant, key_id = uuid.uuid4(), uuid.uuid4()
    stored = {
        "key_id": key_id,
        "tenant_id": tenant,
        "role": "member",
        "prefix": "ask_abcd",
        "expires_at": None,
    }
    assert repo.put_key(key_hash="h", created_at=NOW, **stored) is True
    assert repo.put_key(key_hash="h", created_at=NOW, **stored) is False  # the hash is taken
    repo.touch_key("h", "2026-12-07T12:00:00+00:00", "2026-12-07T11:59:00+00:00")
    repo.touch_key("h", "2026-12-07T12:00:30+00:00", "2026-12-07T11:59:30+00:00")  # used 30 s ago
    assert repo.touches == ["2026-12-07T12:00:00+00:00"]
    repo.touch_key("h", "2026-12-07T12:01:01+00:00", "2026-12-07T12:00:01+00:00")
    assert (repo.get_key_by_id(tenant, key_id) or {})["last_used_at"] == "2026-12-07T12:01:01+00:00"
    assert repo.get_key_by_id(uuid.uuid4(), key_id) is None  # another tenant's pointer space
    first = Tenant(id=uuid.uuid4(), slug="acme", created_at=datetime.now(UTC))
    assert repo.create(first) == first
    assert repo.create(Tenant(id=uuid.uuid4(), slug="acme", created_at=datetime.now(UTC))) == first


def test_catalog_fakes_refuse_duplicates_and_stale_version_counts():
    runs = fakes.FakeRunRepository()
    evals = fakes.FakeEvalRepository(runs)
    now = datetime.now(UTC)
    ev = Eval(id=uuid.uuid4(), tenant_id=uuid.uuid4(), project_id=uuid.uuid4(), name="e", created_at=now)
    version = EvalVersion(
        id=uuid.uuid4(), eval_id=ev.id, version=1, metrics=[], threshold=0.5, created_at=now
    )
    evals.create(ev)
    with pytest.raises(ClientError):  # as the adapter: its conditional put fails
        evals.create(ev)
    evals.add_version(ev.tenant_id, ev, version)
    with pytest.raises(ConflictError, match="another version of this eval"):
        evals.add_version(ev.tenant_id, ev, version.model_copy(update={"id": uuid.uuid4()}))  # stale count
    runs.counters[(ev.tenant_id, f"eval_id#{ev.id}")] = 1
    with pytest.raises(ConflictError, match="was scheduled while it was being deleted"):
        evals.delete(ev.model_copy(update={"version_count": 1}))
    assert evals.get(ev.tenant_id, ev.id) is not None
    runs.counters[(ev.tenant_id, f"eval_id#{ev.id}")] = 0
    with pytest.raises(ConflictError, match="changed while it was being deleted"):
        evals.delete(ev)  # the caller's copy says 0 versions, the store's eval 1


def test_the_dataset_fakes_tombstone_is_honoured_as_the_adapters():
    """As the adapters: a run's create needs its dataset (not being deleted) and its eval;
    ``begin_delete`` is refused while a run counts the dataset; a marked dataset reads as
    gone (but ``get_for_delete`` finds it) and takes no version and no run."""
    from assay_service.errors import NotFoundError
    from assay_service.models.domain import Dataset, DatasetVersion

    ports = fakes.Ports()
    now = datetime.now(UTC)
    tenant = uuid.uuid4()
    dataset = Dataset(id=uuid.uuid4(), tenant_id=tenant, project_id=uuid.uuid4(), name="d", created_at=now)
    ev = Eval(id=uuid.uuid4(), tenant_id=tenant, project_id=dataset.project_id, name="e", created_at=now)
    ports.datasets.create(dataset)
    ports.evals.create(ev)
    run = a_run(tenant_id=tenant, dataset_id=dataset.id, eval_id=ev.id)
    with pytest.raises(NotFoundError, match="^eval version not found$"):
        ports.runs.create(run.model_copy(update={"eval_id": uuid.uuid4()}), max_in_flight=5)
    with pytest.raises(NotFoundError, match="^dataset not found$"):
        ports.runs.create(run.model_copy(update={"dataset_id": uuid.uuid4()}), max_in_flight=5)
    assert ports.runs.create(run, max_in_flight=5) == run.id
    with pytest.raises(ConflictError, match="was scheduled while it was being deleted"):
        ports.datasets.begin_delete(dataset)
    assert ports.datasets.get(tenant, dataset.id) == dataset  # refused: nothing changed
    assert ports.runs.set_status(run, "cancelled", expect=["pending"]) is True
    assert ports.runs.delete(run.model_copy(update={"status": "cancelled"})) is True
    ports.datasets.begin_delete(dataset)
    ports.datasets.begin_delete(dataset)  # again: still marked, no error
    assert ports.datasets.get(tenant, dataset.id) is None
    assert ports.datasets.get_for_delete(tenant, dataset.id) == (dataset, True)
    assert ports.datasets.list_page(tenant, limit=10) == ([], None)
    version = DatasetVersion(
        id=uuid.uuid4(), dataset_id=dataset.id, version=1, record_count=1, size_bytes=1, created_at=now
    )
    with pytest.raises(NotFoundError, match="^dataset not found$"):
        ports.datasets.add_version(tenant, dataset, version, "k")
    with pytest.raises(NotFoundError, match="^dataset not found$"):
        ports.runs.create(run.model_copy(update={"id": uuid.uuid4()}), max_in_flight=5)
    assert ports.runs.in_flight[tenant] == 0 and ports.runs.counter(tenant, f"dataset_id#{dataset.id}") == 0
    ports.datasets.delete(dataset, [])
    assert ports.datasets.get_for_delete(tenant, dataset.id) is None
