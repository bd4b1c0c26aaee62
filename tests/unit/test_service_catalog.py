"""Datasets and evals through the services on the in-memory fakes: a dataset or eval that
runs use is not deleted (409), versions are numbered once, deletes remove what they own,
and a delete racing a schedule loses nothing and stores no run (the dataset's tombstone)."""

from __future__ import annotations

import uuid

import pytest
from assay_service.errors import ConflictError, InvalidRequestError, NotFoundError
from assay_service.models.api import CreateDatasetRequest, CreateEvalRequest, RecordIn
from assay_service.models.domain import DatasetVersion, utcnow
from assay_service.services import catalog, runs

from tests.support import fakes
from tests.unit.test_service_runs import catalogue, principal, schedule

ports_fixture = fakes.ports_fixture


def test_a_dataset_used_by_a_run_is_not_deleted(ports: fakes.Ports):
    who = principal()
    dataset_id, _, version_id = catalogue(ports, who)
    run, _ = schedule(ports, who, dataset_id, version_id)
    objects = dict(ports.artifacts.objects)
    with pytest.raises(ConflictError, match="1 run\\(s\\) use this dataset; delete them first") as caught:
        catalog.delete_dataset(who, dataset_id, ports=ports)
    assert caught.value.details == {"runs": 1, "dataset_id": str(dataset_id)}
    assert catalog.get_dataset(who, dataset_id, ports=ports).version_count == 1
    assert ports.artifacts.objects == objects  # nothing deleted
    runs.cancel_run(who, run.id, ports=ports)
    with pytest.raises(ConflictError):  # a cancelled run still uses it
        catalog.delete_dataset(who, dataset_id, ports=ports)
    runs.delete_run(who, run.id, ports=ports)
    catalog.delete_dataset(who, dataset_id, ports=ports)
    with pytest.raises(NotFoundError):
        catalog.get_dataset(who, dataset_id, ports=ports)
    assert not any(f"/datasets/{dataset_id}/" in key for key in ports.artifacts.objects)


def test_an_eval_used_by_a_run_is_not_deleted(ports: fakes.Ports):
    who = principal()
    dataset_id, eval_id, version_id = catalogue(ports, who)
    run, _ = schedule(ports, who, dataset_id, version_id)
    with pytest.raises(ConflictError, match="1 run\\(s\\) use this eval") as caught:
        catalog.delete_eval(who, eval_id, ports=ports)
    assert caught.value.details == {"runs": 1, "eval_id": str(eval_id)}
    assert catalog.get_eval_version(who, version_id, ports=ports).eval_id == eval_id
    runs.cancel_run(who, run.id, ports=ports)
    runs.delete_run(who, run.id, ports=ports)
    catalog.delete_eval(who, eval_id, ports=ports)
    with pytest.raises(NotFoundError):
        catalog.get_eval(who, eval_id, ports=ports)
    with pytest.raises(NotFoundError):
        catalog.get_eval_version(who, version_id, ports=ports)


def test_a_run_scheduled_after_the_check_still_stops_the_delete(ports: fakes.Ports, monkeypatch):
    """The service's count is a courtesy; the store's guard (the run counter, in the
    delete's own transaction) is what keeps a run from pointing at nothing."""
    who = principal()
    dataset_id, eval_id, version_id = catalogue(ports, who)
    schedule(ports, who, dataset_id, version_id)
    monkeypatch.setattr(catalog, "_refuse_if_runs", lambda *args, **kwargs: None)  # the race: checked before
    with pytest.raises(ConflictError, match="was scheduled while it was being deleted"):
        catalog.delete_dataset(who, dataset_id, ports=ports)
    with pytest.raises(ConflictError, match="was scheduled while it was being deleted"):
        catalog.delete_eval(who, eval_id, ports=ports)
    assert catalog.get_dataset(who, dataset_id, ports=ports).id == dataset_id
    assert catalog.get_eval(who, eval_id, ports=ports).id == eval_id


def test_another_tenants_runs_do_not_hold_a_dataset(ports: fakes.Ports):
    who, other = principal(), principal()
    dataset_id, _, _ = catalogue(ports, who)
    schedule(ports, other, *catalogue(ports, other)[::2])
    catalog.delete_dataset(who, dataset_id, ports=ports)
    with pytest.raises(NotFoundError):
        catalog.get_dataset(who, dataset_id, ports=ports)


def test_a_dataset_is_the_tenants_own(ports: fakes.Ports):
    who, other = principal(), principal()
    dataset_id, _, _ = catalogue(ports, who)
    with pytest.raises(NotFoundError, match="dataset not found"):
        catalog.get_dataset(other, dataset_id, ports=ports)
    with pytest.raises(NotFoundError):
        catalog.delete_dataset(other, dataset_id, ports=ports)


def test_versions_are_numbered_in_order_and_a_stale_writer_conflicts(ports: fakes.Ports):
    who = principal()
    dataset_id, _, _ = catalogue(ports, who)
    stale = catalog.get_dataset(who, dataset_id, ports=ports)
    second = catalog.create_dataset_version(
        who, dataset_id, records=[RecordIn(output="a", golden_answer="a")], ports=ports
    )
    assert second.version == 2
    assert [v.version for v in catalog.list_dataset_versions(who, dataset_id, ports=ports)] == [2, 1]
    version = second.model_copy(update={"id": uuid.uuid4()})
    with pytest.raises(ConflictError, match="another version of this dataset was created at the same time"):
        ports.datasets.add_version(who.tenant_id, stale, version, "tenants/x.jsonl")
    assert catalog.get_dataset(who, dataset_id, ports=ports).version_count == 2


def test_a_bad_record_creates_nothing(ports: fakes.Ports):
    who = principal()
    records = [{"id": "a", "output": "x"}, {"id": "a", "output": "y"}]  # a repeated id
    with pytest.raises(InvalidRequestError, match="repeats record 1"):
        catalog.create_dataset(
            who, CreateDatasetRequest.model_validate({"name": "d", "records": records}), ports=ports
        )
    assert ports.datasets.items == {}
    assert ports.artifacts.objects == {}


def test_an_eval_with_a_bad_metric_creates_nothing(ports: fakes.Ports):
    who = principal()
    body = {"name": "e", "metrics": [{"name": "m", "scorer": "no_such_scorer"}]}
    with pytest.raises(InvalidRequestError):
        catalog.create_eval(who, CreateEvalRequest.model_validate(body), ports=ports)
    assert ports.evals.items == {}
    assert ports.evals.versions == {}


def test_a_list_cursor_is_bound_to_its_tenant(ports: fakes.Ports):
    who, other = principal(), principal()
    for _ in range(3):
        catalogue(ports, who)
    page, cursor = catalog.list_datasets(who, limit=2, cursor=None, ports=ports)
    rest, end = catalog.list_datasets(who, limit=2, cursor=cursor, ports=ports)
    assert (len(page), len(rest), end) == (2, 1, None)
    assert {d.id for d in page}.isdisjoint(d.id for d in rest)
    with pytest.raises(InvalidRequestError, match="not a cursor of this list"):
        catalog.list_datasets(other, limit=2, cursor=cursor, ports=ports)


def test_a_dataset_delete_refused_by_the_stores_guard_can_be_finished_later(ports: fakes.Ports, monkeypatch):
    """The dataset adapter's documented contract: the versions already deleted stay
    deleted, a retry (once the run is gone) finishes."""
    who = principal()
    dataset_id, _, version_id = catalogue(ports, who)
    run, _ = schedule(ports, who, dataset_id, version_id)
    with monkeypatch.context() as patched:
        patched.setattr(catalog, "_refuse_if_runs", lambda *args, **kwargs: None)
        with pytest.raises(ConflictError):
            catalog.delete_dataset(who, dataset_id, ports=ports)
    runs.cancel_run(who, run.id, ports=ports)
    runs.delete_run(who, run.id, ports=ports)
    catalog.delete_dataset(who, dataset_id, ports=ports)
    with pytest.raises(NotFoundError):
        catalog.get_dataset(who, dataset_id, ports=ports)


def test_an_eval_delete_refused_by_the_stores_guard_can_be_finished_later(ports: fakes.Ports, monkeypatch):
    who = principal()
    dataset_id, eval_id, version_id = catalogue(ports, who)
    run, _ = schedule(ports, who, dataset_id, version_id)
    with monkeypatch.context() as patched:
        patched.setattr(catalog, "_refuse_if_runs", lambda *args, **kwargs: None)  # a run scheduled meanwhile
        with pytest.raises(ConflictError):
            catalog.delete_eval(who, eval_id, ports=ports)
    # refused as a whole: the eval keeps the version its run was scheduled on
    assert catalog.get_eval_version(who, version_id, ports=ports).eval_id == eval_id
    runs.cancel_run(who, run.id, ports=ports)
    runs.delete_run(who, run.id, ports=ports)
    catalog.delete_eval(who, eval_id, ports=ports)
    with pytest.raises(NotFoundError):
        catalog.get_eval(who, eval_id, ports=ports)


# ---------------------------------------------------------------- delete vs schedule races
# A dataset delete writes a tombstone first (guarded by the run counter), and a run's create
# checks the tombstone is absent: whichever commits first, the other is refused cleanly.
def _dataset_state(ports: fakes.Ports, who, dataset_id: uuid.UUID) -> tuple:
    """Everything a dataset delete could lose: its objects, its version items, its item."""
    objects = {k: v for k, v in ports.artifacts.objects.items() if str(dataset_id) in k}
    versions = dict(ports.datasets.versions.get((who.tenant_id, dataset_id), {}))
    return objects, versions, ports.datasets.items.get((who.tenant_id, dataset_id))


def _run_state(ports: fakes.Ports, who) -> tuple:
    """Every run of the tenant, its run counters and its runs in flight."""
    runs_ = {k for k in ports.runs.runs if k[0] == who.tenant_id}
    counted = {sk: n for (t, sk), n in ports.runs.counters.items() if t == who.tenant_id and n}
    return runs_, counted, ports.runs.in_flight.get(who.tenant_id, 0), set(ports.workflow.started)


def test_a_run_scheduled_after_the_deletes_check_refuses_the_delete_and_nothing_is_lost(
    ports: fakes.Ports, monkeypatch
):
    """The delete has counted no run (its pre-check passed); a run is scheduled right after,
    before the delete's first write (the tombstone): the tombstone's guard refuses (409)
    and every object and version stays."""
    who = principal()
    dataset_id, _, version_id = catalogue(ports, who)
    catalog.create_dataset_version(
        who, dataset_id, records=[RecordIn(output="a", golden_answer="a")], ports=ports
    )
    ports.artifacts.put(ports.artifacts.upload_key(who.tenant_id, dataset_id, uuid.uuid4()), b"{}\n")
    before = _dataset_state(ports, who, dataset_id)
    assert len(before[0]) == 3 and len(before[1]) == 2
    scheduled = []
    check = catalog._refuse_if_runs

    def run_after_the_check(*args, **kwargs):
        check(*args, **kwargs)
        scheduled.append(schedule(ports, who, dataset_id, version_id)[0])

    monkeypatch.setattr(catalog, "_refuse_if_runs", run_after_the_check)
    with pytest.raises(ConflictError, match="was scheduled while it was being deleted; delete the run first"):
        catalog.delete_dataset(who, dataset_id, ports=ports)
    assert _dataset_state(ports, who, dataset_id) == before  # every object, version and the item
    assert catalog.get_dataset(who, dataset_id, ports=ports).version_count == 2
    [run] = scheduled
    assert runs.get_run(who, run.id, ports=ports).dataset_id == dataset_id
    # the run can go on: it reads its records
    version, key = ports.datasets.get_version(who.tenant_id, dataset_id, run.dataset_version) or (None, "")
    assert version is not None and ports.artifacts.get_bytes(key)


@pytest.mark.parametrize("delete_gets", ["done", "past the tombstone"])
def test_a_delete_that_commits_first_refuses_the_run_cleanly(ports: fakes.Ports, monkeypatch, delete_gets):
    """The schedule has read the dataset, its version and the eval; the delete writes its
    tombstone (and finishes, or fails right after) before the run's create: the run is a 404
    and nothing of it is stored — no run, no counter moved, no slot in flight, no execution."""
    who = principal()
    dataset_id, _, version_id = catalogue(ports, who)
    before = _run_state(ports, who)
    create = ports.runs.create

    def delete_first(run, **kwargs):
        if delete_gets == "done":
            catalog.delete_dataset(who, dataset_id, ports=ports)
        else:
            monkeypatch.setattr(ports.artifacts, "delete_keys", fail)
            with pytest.raises(RuntimeError):
                catalog.delete_dataset(who, dataset_id, ports=ports)
        return create(run, **kwargs)

    def fail(keys):
        raise RuntimeError("S3 is down")

    monkeypatch.setattr(ports.runs, "create", delete_first)
    with pytest.raises(NotFoundError, match="^dataset not found$"):
        schedule(ports, who, dataset_id, version_id)
    assert _run_state(ports, who) == before
    with pytest.raises(NotFoundError):
        catalog.get_dataset(who, dataset_id, ports=ports)


@pytest.mark.parametrize("failing", ["objects", "items"])
def test_an_interrupted_delete_hides_the_dataset_and_deleting_again_finishes(
    ports: fakes.Ports, monkeypatch, failing
):
    """A delete that fails after its tombstone (S3 failing once, or the item writes): the
    dataset reads as gone and takes no version and no run; deleting it again finishes, with
    no pre-check to pass a second time."""
    who = principal()
    dataset_id, _, version_id = catalogue(ports, who)
    catalog.create_dataset_version(who, dataset_id, records=[RecordIn(output="a")], ports=ports)
    upload = ports.artifacts.upload_key(who.tenant_id, dataset_id, uuid.uuid4())
    ports.artifacts.put(upload, b'{"output": "x"}\n')
    runs_before = _run_state(ports, who)
    target = ports.artifacts if failing == "objects" else ports.datasets
    name = "delete_keys" if failing == "objects" else "delete"
    original = getattr(target, name)
    calls = []

    def fail_once(*args):
        calls.append(args)
        if len(calls) == 1:
            raise RuntimeError("interrupted")
        return original(*args)

    monkeypatch.setattr(target, name, fail_once)
    with pytest.raises(RuntimeError, match="interrupted"):
        catalog.delete_dataset(who, dataset_id, ports=ports)
    with pytest.raises(NotFoundError):
        catalog.get_dataset(who, dataset_id, ports=ports)
    assert dataset_id not in {d.id for d in catalog.list_datasets(who, limit=10, cursor=None, ports=ports)[0]}
    with pytest.raises(NotFoundError, match="^dataset not found$"):
        schedule(ports, who, dataset_id, version_id)
    with pytest.raises(NotFoundError):
        catalog.create_dataset_version(who, dataset_id, records=[RecordIn(output="b")], ports=ports)
    stale = ports.datasets.get_for_delete(who.tenant_id, dataset_id)
    assert stale is not None and stale[1] is True  # marked: a retry finds it
    late = DatasetVersion(
        id=uuid.uuid4(), dataset_id=dataset_id, version=3, record_count=1, size_bytes=1, created_at=utcnow()
    )
    with pytest.raises(NotFoundError, match="^dataset not found$"):  # past the service's read too
        ports.datasets.add_version(who.tenant_id, stale[0], late, "k")
    assert _run_state(ports, who) == runs_before
    monkeypatch.setattr(catalog, "_refuse_if_runs", refuse)  # a retry asks no pre-check again
    catalog.delete_dataset(who, dataset_id, ports=ports)
    assert _dataset_state(ports, who, dataset_id) == ({}, {}, None)
    assert list(ports.artifacts.list_keys(f"uploads/{who.tenant_id}/{dataset_id}/")) == []
    with pytest.raises(NotFoundError):
        catalog.delete_dataset(who, dataset_id, ports=ports)


def refuse(*args, **kwargs):
    raise AssertionError("a delete already begun is not checked again")


def test_a_dataset_being_deleted_is_left_out_of_every_list_page(ports: fakes.Ports):
    who = principal()
    made = [catalogue(ports, who)[0] for _ in range(3)]
    stored = ports.datasets.get(who.tenant_id, made[1])
    assert stored is not None
    ports.datasets.begin_delete(stored)
    seen, cursor = [], None
    while True:
        page, cursor = catalog.list_datasets(who, limit=1, cursor=cursor, ports=ports)
        seen += [d.id for d in page]
        if cursor is None:
            break
    assert sorted(seen) == sorted([made[0], made[2]])


def test_a_run_cannot_be_created_on_an_eval_deleted_a_moment_before(ports: fakes.Ports, monkeypatch):
    """The schedule has read the eval version and the eval; the eval's delete commits
    before the run's create: the run is a 404 and nothing of it is stored."""
    who = principal()
    dataset_id, eval_id, version_id = catalogue(ports, who)
    before = _run_state(ports, who)
    create = ports.runs.create

    def delete_first(run, **kwargs):
        catalog.delete_eval(who, eval_id, ports=ports)
        return create(run, **kwargs)

    monkeypatch.setattr(ports.runs, "create", delete_first)
    with pytest.raises(NotFoundError, match="^eval version not found$"):
        schedule(ports, who, dataset_id, version_id)
    assert _run_state(ports, who) == before
    with pytest.raises(NotFoundError):
        catalog.get_eval_version(who, version_id, ports=ports)


def test_a_run_that_commits_before_an_eval_delete_keeps_the_eval_whole(ports: fakes.Ports, monkeypatch):
    who = principal()
    dataset_id, eval_id, version_id = catalogue(ports, who)
    delete = ports.evals.delete

    def run_first(ev):
        schedule(ports, who, dataset_id, version_id)
        return delete(ev)

    monkeypatch.setattr(ports.evals, "delete", run_first)
    with pytest.raises(ConflictError, match="was scheduled while it was being deleted"):
        catalog.delete_eval(who, eval_id, ports=ports)
    assert catalog.get_eval_version(who, version_id, ports=ports).eval_id == eval_id
    assert catalog.get_eval(who, eval_id, ports=ports).version_count == 1


@pytest.mark.parametrize("refusal", [ConflictError("another version first"), NotFoundError("dataset")])
def test_a_version_create_the_store_refuses_takes_its_object_with_it(
    ports: fakes.Ports, monkeypatch, refusal
):
    who = principal()
    dataset_id, _, _ = catalogue(ports, who)
    before = set(ports.artifacts.objects)

    def refused(*args, **kwargs):
        raise refusal

    monkeypatch.setattr(ports.datasets, "add_version", refused)
    with pytest.raises(type(refusal)):
        catalog.create_dataset_version(who, dataset_id, records=[RecordIn(output="a")], ports=ports)
    assert set(ports.artifacts.objects) == before


def test_a_dataset_delete_removes_every_object_under_the_dataset_even_unlisted_ones(ports: fakes.Ports):
    """An object a crashed version create left behind has no version item: the delete still
    finds it under the dataset's prefix, and nothing of another dataset's goes with it."""
    who = principal()
    dataset_id, _, _ = catalogue(ports, who)
    other_id, _, _ = catalogue(ports, who)
    store = ports.artifacts
    orphan = store.dataset_version_key(who.tenant_id, dataset_id, uuid.uuid4())
    store.put(orphan, b'{"output": "left by a crash"}\n')
    upload = store.upload_key(who.tenant_id, dataset_id, uuid.uuid4())
    store.put(upload, b"{}\n")
    kept = {k for k in store.objects if str(other_id) in k}
    catalog.delete_dataset(who, dataset_id, ports=ports)
    assert {k for k in store.objects if str(dataset_id) in k} == set()
    assert kept and {k for k in store.objects if str(other_id) in k} == kept
