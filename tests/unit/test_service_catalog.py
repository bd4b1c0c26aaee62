"""Datasets and evals through the services on the in-memory fakes: a dataset or eval that
runs use is not deleted (409), versions are numbered once, deletes remove what they own."""

from __future__ import annotations

import uuid

import pytest
from assay_service.errors import ConflictError, InvalidRequestError, NotFoundError
from assay_service.models.api import CreateDatasetRequest, CreateEvalRequest, RecordIn
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
