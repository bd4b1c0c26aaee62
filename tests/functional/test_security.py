"""Tenancy, keys and roles: each test here fails if its guarantee breaks.

* key lifecycle: the secret is shown once, listed never, stored only as an HMAC; a revoked
  key fails on the very next request; an expired key is 401 auth.expired_key;
* roles: every route × every role (table-driven);
* isolation: another tenant's objects, of every id kind, are 404s identical to missing ids;
* logs never carry key material.
"""

from __future__ import annotations

import io
import json
import logging
import uuid
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from assay_service.bootstrap import bootstrap_tenant
from assay_service.services import keys as key_service
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.functional.factories import RECORDS, completed_run, new_key
from tests.functional.harness import OTHER_TENANT_KEY, OWNER_KEY, ROUTES, api_event, environment

# What each route needs: "read" (viewer+), "write" (member+).
NEEDS = {
    name: ("read" if api_event(name)["requestContext"]["http"]["method"] == "GET" else "write")
    for name in ROUTES
}


@pytest.fixture(scope="module")
def role_keys(stack) -> dict[str, str]:
    return {"owner": OWNER_KEY, "member": new_key(stack, "member"), "viewer": new_key(stack, "viewer")}


def test_key_is_shown_once_listed_without_secret_and_stored_only_as_hmac(stack):
    status, created, _ = stack.call(
        "ApiKeysFunction", api_event("create_api_key", body={"name": "laptop", "role": "viewer"})
    )
    assert status == 201 and created["key"].startswith("ask_") and len(created["key"]) >= 47
    secret = created["key"]
    _, listed, _ = stack.call("ApiKeysFunction", api_event("list_api_keys"))
    mine = next(k for k in listed["items"] if k["id"] == created["id"])
    assert "key" not in mine and secret not in json.dumps(listed)
    assert mine["prefix"] == secret[:8] and mine["role"] == "viewer"
    table = stack.env("ApiKeysFunction")["TABLE_NAME"]
    dump = json.dumps(boto3.client("dynamodb", region_name="us-east-1").scan(TableName=table), default=str)
    assert secret not in dump  # only the keyed hash is stored


def test_a_revoked_key_fails_on_the_very_next_request(stack):
    secret = new_key(stack, "member")
    assert stack.call("DatasetsFunction", api_event("list_datasets", key=secret))[0] == 200
    _, listed, _ = stack.call("ApiKeysFunction", api_event("list_api_keys"))
    key_id = next(
        k["id"]
        for k in listed["items"]
        if secret.startswith(k["prefix"]) and not k["revoked"] and k["last_used_at"]
    )
    status, revoked, _ = stack.call("ApiKeysFunction", api_event("revoke_api_key", path_id=key_id))
    assert status == 200 and revoked["revoked"] is True
    status, body, _ = stack.call("DatasetsFunction", api_event("list_datasets", key=secret))
    assert status == 401 and body["code"] == "auth.invalid_key"


def test_an_expired_key_is_401_expired(stack):
    secret = key_service.generate_key()
    with environment(stack.env("ApiKeysFunction")):
        key_service.store_key(
            tenant_id=uuid.UUID(stack.tenant_id),
            role="member",
            raw=secret,
            expires_at=datetime.now(UTC) - timedelta(seconds=1),
        )
    status, body, _ = stack.call("DatasetsFunction", api_event("list_datasets", key=secret))
    assert status == 401 and body["code"] == "auth.expired_key"


def test_keys_cannot_outrank_their_creator(stack, role_keys):
    status, body, _ = stack.call(
        "ApiKeysFunction", api_event("create_api_key", key=role_keys["member"], body={"role": "owner"})
    )
    assert status == 403 and body["code"] == "auth.insufficient_permissions"
    status, body, _ = stack.call(
        "ApiKeysFunction",
        api_event(
            "create_api_key", key=OWNER_KEY, body={"role": "member", "expires_at": "2001-01-01T00:00:00Z"}
        ),
    )
    assert status == 400 and "expires_at" in body["error"]
    for field in ("tenant_id", "key_hash", "revoked"):
        status, body, _ = stack.call(
            "ApiKeysFunction", api_event("create_api_key", body={"role": "viewer", field: "x"})
        )
        assert status == 400 and field in body["error"]  # server-owned fields are refused


@pytest.mark.parametrize("role", ["viewer", "member", "owner"])
@pytest.mark.parametrize("name", sorted(ROUTES))
def test_role_matrix(stack, role_keys, role, name):
    """Every route × every role: allowed → never 403 (404 for the sample's unknown ids is
    fine); not allowed → 403 auth.insufficient_permissions."""
    status, body, _ = stack.call(ROUTES[name], api_event(name, key=role_keys[role]))
    allowed = NEEDS[name] == "read" or role in {"member", "owner"}
    if allowed:
        assert status != 403 and status < 500, (status, body)
    else:
        assert status == 403 and body["code"] == "auth.insufficient_permissions", (status, body)


@pytest.fixture(scope="module")
def tenant_a_objects(stack) -> dict[str, str]:
    """One object of every id kind, owned by tenant A (the default tenant)."""
    run = completed_run(stack)
    _, export, _ = stack.call("ExportRunFunction", api_event("export_run", path_id=run["id"]))
    _, keys, _ = stack.call("ApiKeysFunction", api_event("list_api_keys"))
    return {
        "dataset": run["dataset_id"],
        "eval": run["eval_id"],
        "eval_version": run["eval_version_id"],
        "run": run["id"],
        "evaluation": export["items"][0]["id"],
        "key": keys["items"][0]["id"],
        "project": run["project_id"],
    }


ID_ROUTES = {  # sample event → which id kind its path takes
    "get_dataset": "dataset",
    "list_dataset_versions": "dataset",
    "create_dataset_version": "dataset",
    "create_upload": "dataset",
    "read_records": "dataset",
    "schedule_run": "dataset",
    "create_dataset_version_from_upload": "dataset",
    "get_eval": "eval",
    "list_eval_versions": "eval",
    "create_eval_version": "eval",
    "get_eval_version": "eval_version",
    "get_run": "run",
    "list_run_evaluations": "run",
    "export_run": "run",
    "export_run_link": "run",
    "cancel_run": "run",
    "aegis_run": "run",
    "get_evaluation": "evaluation",
    "revoke_api_key": "key",
    "get_project": "project",
    "compare_runs": "run",
    "delete_dataset": "dataset",
    "delete_eval": "eval",
    "delete_run": "run",
}


def test_every_id_route_is_covered_by_the_isolation_test():
    with_ids = {n for n in ROUTES if "pathParameters" in api_event(n)}
    assert with_ids == set(ID_ROUTES)


@pytest.mark.parametrize("name", sorted(ID_ROUTES))
def test_another_tenants_object_is_an_indistinguishable_404(stack, tenant_a_objects, name):
    foreign = api_event(name, path_id=tenant_a_objects[ID_ROUTES[name]], key=OTHER_TENANT_KEY)
    missing = api_event(name, path_id=str(uuid.uuid4()), key=OTHER_TENANT_KEY)
    f_status, f_body, _ = stack.call(ROUTES[name], foreign)
    m_status, m_body, _ = stack.call(ROUTES[name], missing)
    assert f_status == m_status == 404, (f_body, m_body)
    assert f_body == m_body  # request ids are equal here: the sample events share one


def test_foreign_objects_never_show_up_in_lists(stack, tenant_a_objects):
    for name, fn in [
        ("list_datasets", "DatasetsFunction"),
        ("list_evals", "EvalsFunction"),
        ("list_runs", "ListRunsFunction"),
        ("list_api_keys", "ApiKeysFunction"),
        ("aymara_list_runs", "CompatViewsFunction"),
        ("list_projects", "ProjectsFunction"),
    ]:
        status, body, _ = stack.call(fn, api_event(name, key=OTHER_TENANT_KEY))
        assert status == 200
        dumped = json.dumps(body)
        assert not any(value in dumped for value in tenant_a_objects.values()), name


@settings(max_examples=60, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.uuids(), st.sampled_from(sorted(ID_ROUTES)))
def test_random_ids_are_404_for_the_other_tenant(stack, value, name):
    status, body, _ = stack.call(ROUTES[name], api_event(name, path_id=str(value), key=OTHER_TENANT_KEY))
    assert status == 404 and body["code"] == "resource.not_found"


def test_logs_never_carry_key_material(stack, caplog):
    # Our logger at its most verbose, formatted as in Lambda; libraries at INFO (botocore's
    # DEBUG wire dumps are never enabled by a deployment: LogLevel sets the service's logger).
    from assay_service.observability import get_logger

    caplog.set_level(logging.INFO)
    service = get_logger()  # the Powertools logger; its handler writes the Lambda JSON lines
    stream = io.StringIO()
    original = service.registered_handler.setStream(stream)
    level = service.log_level
    service.setLevel(logging.DEBUG)
    try:
        _exercise_auth(stack)
    finally:
        service.registered_handler.setStream(original)
        service.setLevel(level)
    logs = caplog.text + stream.getvalue()
    assert '"message":"authenticated"' in logs and '"authentication failed"' in logs
    for material in _EXERCISED:
        assert material not in logs


_EXERCISED: list[str] = []


def _exercise_auth(stack) -> None:
    secret = new_key(stack, "viewer")
    stack.call("DatasetsFunction", api_event("list_datasets", key=secret))
    stack.call("DatasetsFunction", api_event("list_datasets", key=secret + "x"))
    stack.call("DatasetsFunction", api_event("list_datasets", key="ask_wrong-key-but-long-enough-000"))
    with environment(stack.env("ApiKeysFunction")):
        from assay_service import dependencies

        digest = key_service.hash_key(secret, dependencies.keyring().hmac_key())
        hmac_key = dependencies.keyring().hmac_key().decode()
    _EXERCISED[:] = [secret, secret[8:], digest, hmac_key, "ask_wrong-key-but-long-enough-000"]


def test_runs_in_flight_limit_holds_at_the_limit_and_frees_on_finish(stack):
    """A fresh tenant with MaxRunsInFlight=2: two runs schedule, the third is 429
    quota.limit_exceeded, and cancelling one frees its slot (exactly once)."""
    # Its own tenant: other tests leave runs in flight for the suite's tenants.
    key = "ask_functional-tests-in-flight-tenant-key-4242"
    with environment(stack.env("DatasetsFunction")):
        bootstrap_tenant(slug="in-flight", owner_key=key)
    limit = {"MAX_RUNS_IN_FLIGHT": "2"}
    _, ds, _ = stack.call("DatasetsFunction", api_event("create_dataset", key=key))
    stack.call(
        "DatasetsFunction",
        api_event("create_dataset_version", path_id=ds["id"], key=key, body={"records": RECORDS}),
    )
    _, ev, _ = stack.call("EvalsFunction", api_event("create_eval", key=key))
    _, version, _ = stack.call("EvalsFunction", api_event("create_eval_version", path_id=ev["id"], key=key))

    def schedule():
        return stack.call(
            "ScheduleRunFunction",
            api_event("schedule_run", path_id=ds["id"], key=key, body={"eval_version_id": version["id"]}),
            env=limit,
        )

    first, second = schedule(), schedule()
    assert first[0] == second[0] == 202
    status, body, _ = schedule()
    assert status == 429 and body["code"] == "quota.limit_exceeded" and body["details"] == {"limit": 2}
    cancel = api_event("cancel_run", path_id=first[1]["id"], key=key)
    assert stack.call("CancelRunFunction", cancel)[0] == 200
    assert stack.call("CancelRunFunction", cancel)[0] == 409  # a second cancel frees nothing
    assert schedule()[0] == 202
    assert schedule()[0] == 429


def test_records_per_version_limit(stack):
    dataset = stack.call("DatasetsFunction", api_event("create_dataset"))[1]["id"]
    limit = {"MAX_RECORDS_PER_VERSION": "3"}
    at = [{"output": str(i)} for i in range(3)]
    status, _, _ = stack.call(
        "DatasetsFunction",
        api_event("create_dataset_version", path_id=dataset, body={"records": at}),
        env=limit,
    )
    assert status == 201
    status, body, _ = stack.call(
        "DatasetsFunction",
        api_event("create_dataset_version", path_id=dataset, body={"records": [*at, {"output": "x"}]}),
        env=limit,
    )
    assert status == 400 and "more than 3 records" in body["error"]


def test_projects_group_datasets_and_foreign_projects_are_refused(stack):
    status, project, _ = stack.call("ProjectsFunction", api_event("create_project"))
    assert status == 201
    status, dataset, _ = stack.call(
        "DatasetsFunction", api_event("create_dataset", body={"name": "grouped", "project_id": project["id"]})
    )
    assert status == 201 and dataset["project_id"] == project["id"]
    status, body, _ = stack.call(
        "DatasetsFunction",
        api_event("create_dataset", key=OTHER_TENANT_KEY, body={"name": "x", "project_id": project["id"]}),
    )
    assert status == 404 and body["error"] == "project not found"
    names, cursor = [], None
    while True:  # every page: the suite's other tests create projects in this tenant too
        query = {"limit": "100", **({"cursor": cursor} if cursor else {})}
        _, listed, _ = stack.call("ProjectsFunction", api_event("list_projects", query=query))
        names += [p["name"] for p in listed["items"]]
        cursor = listed.get("next_cursor")
        if not cursor:
            break
    assert "default" in names and project["name"] in names  # bootstrap made the default
