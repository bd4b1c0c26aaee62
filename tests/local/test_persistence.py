"""The durable local stack's journal (assay_local/persistence/), socket-free: moto's own
WSGI app serves SDK requests in this process, behind the journal's middleware. What it
kept is replayed into a reset moto, and the state read back through the public APIs must
be the same — in order, after a compaction, and when the last record was torn by a crash."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from assay_local.moto_requests import WsgiApp
from assay_local.persistence import (
    DB_NAME,
    DataDirError,
    DurableStore,
    Journal,
    StackResources,
    call_app,
    classify,
    in_process_client,
    live_environ,
    unfinished_runs,
)
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

HOST = "127.0.0.1:4599"  # never dialled: every request is served in this process
TABLE = "t-table"
BUCKET = "t-bucket"
SECRET = "t-ApiKeySecret"
ODD_KEY = "uploads/a b/é+%/x.jsonl"


def reset(app: WsgiApp) -> None:
    environ = live_environ(
        {"REQUEST_METHOD": "POST", "PATH_INFO": "/moto-api/reset", "QUERY_STRING": ""}, b"", HOST
    )
    assert call_app(app, environ)[0] == 200


@pytest.fixture
def moto_app() -> Iterator[WsgiApp]:
    app = DomainDispatcherApplication(create_backend_app)
    reset(app)
    yield app
    reset(app)


def create_resources(app: WsgiApp, secret_value: str | bytes = "hmac-key-0") -> str:  # noqa: S107
    """The 'template': a table with an index, a versioned bucket, a secret. Returns its ARN."""
    ddb = in_process_client("dynamodb", app, HOST)
    ddb.create_table(
        TableName=TABLE,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("PK", "SK", "G")],
        KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "ByG",
                "KeySchema": [{"AttributeName": "G", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )
    s3 = in_process_client("s3", app, HOST)
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    s3.create_bucket(Bucket="not-the-templates")
    kind = "SecretBinary" if isinstance(secret_value, bytes) else "SecretString"
    return in_process_client("secretsmanager", app, HOST).create_secret(Name=SECRET, **{kind: secret_value})[
        "ARN"
    ]


def open_store(data: Path, app: WsgiApp, secret_arn: str) -> tuple[DurableStore, WsgiApp]:
    store = DurableStore(data, stack_name="t")
    front = store.middleware(app)
    store.attach(
        HOST,
        StackResources(
            tables=(TABLE,), buckets=(BUCKET,), secrets={SECRET: "ApiKeySecret", secret_arn: "ApiKeySecret"}
        ),
        {"ApiKeySecret": "hmac-key-0"},
    )
    return store, front


def restart(data: Path, app: WsgiApp) -> DurableStore:
    """What a new start does: a clean moto, the resources (the secret with its kept value),
    the journal replayed."""
    reset(app)
    kept = Journal(data / DB_NAME)
    value = kept.secret_values()["ApiKeySecret"]
    kept.close()
    store, _ = open_store(data, app, create_resources(app, value))
    report = store.restore()
    assert report.failed == 0, report.errors
    return store


def state(app: WsgiApp) -> dict[str, Any]:
    """Everything a client can read back: items, the index, objects (body + type), secret."""
    ddb = in_process_client("dynamodb", app, HOST)
    items = sorted(json.dumps(i, sort_keys=True, default=str) for i in ddb.scan(TableName=TABLE)["Items"])
    by_g = ddb.query(
        TableName=TABLE,
        IndexName="ByG",
        KeyConditionExpression="G = :g",
        ExpressionAttributeValues={":g": {"S": "g1"}},
    )["Count"]
    s3 = in_process_client("s3", app, HOST)
    objects = {}
    for listed in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        got = s3.get_object(Bucket=BUCKET, Key=listed["Key"])
        objects[listed["Key"]] = (got["Body"].read(), got["ContentType"])
    secret = in_process_client("secretsmanager", app, HOST).get_secret_value(SecretId=SECRET)
    return {
        "items": items,
        "by_g": by_g,
        "objects": objects,
        "secret": secret.get("SecretString", secret.get("SecretBinary")),
    }


def some_writes(front: WsgiApp, secret_arn: str) -> None:
    ddb = in_process_client("dynamodb", front, HOST)
    for i in range(30):
        ddb.put_item(
            TableName=TABLE,
            Item={
                "PK": {"S": f"p{i}"},
                "SK": {"S": "x"},
                "G": {"S": "g1"},
                "n": {"N": "0"},
                "blob": {"B": bytes([i, 0, 255])},
            },
        )
    for _ in range(5):  # order matters: the counter ends at 5 only if all five replay
        ddb.update_item(
            TableName=TABLE,
            Key={"PK": {"S": "p0"}, "SK": {"S": "x"}},
            UpdateExpression="ADD n :one",
            ExpressionAttributeValues={":one": {"N": "1"}},
        )
    with pytest.raises(ddb.exceptions.ConditionalCheckFailedException):  # refused: not kept
        ddb.put_item(
            TableName=TABLE,
            Item={"PK": {"S": "p1"}, "SK": {"S": "x"}},
            ConditionExpression="attribute_not_exists(PK)",
        )
    ddb.transact_write_items(
        TransactItems=[
            {
                "Put": {
                    "TableName": TABLE,
                    "Item": {"PK": {"S": "t"}, "SK": {"S": "1"}},
                    "ConditionExpression": "attribute_not_exists(PK)",
                }
            },
            {
                "Update": {
                    "TableName": TABLE,
                    "Key": {"PK": {"S": "p1"}, "SK": {"S": "x"}},
                    "UpdateExpression": "SET G = :g",
                    "ExpressionAttributeValues": {":g": {"S": "g2"}},
                }
            },
        ]
    )
    ddb.delete_item(TableName=TABLE, Key={"PK": {"S": "p2"}, "SK": {"S": "x"}})
    ddb.put_item(TableName=TABLE, Item={"PK": {"S": "p2"}, "SK": {"S": "x"}, "v": {"S": "again"}})
    ddb.batch_write_item(
        RequestItems={
            TABLE: [
                {"DeleteRequest": {"Key": {"PK": {"S": "p3"}, "SK": {"S": "x"}}}},
                {"PutRequest": {"Item": {"PK": {"S": "b"}, "SK": {"S": "1"}}}},
            ]
        }
    )

    s3 = in_process_client("s3", front, HOST)
    s3.put_object(Bucket=BUCKET, Key=ODD_KEY, Body=b"line\n" * 100, ContentType="application/x-ndjson")
    s3.put_object(Bucket=BUCKET, Key="k/overwritten", Body=b"first")
    s3.put_object(Bucket=BUCKET, Key="k/overwritten", Body=b"second", ContentType="text/plain")
    s3.put_object(Bucket=BUCKET, Key="k/deleted", Body=b"gone")
    s3.delete_object(Bucket=BUCKET, Key="k/deleted")
    s3.put_object(Bucket=BUCKET, Key="k/batch-deleted", Body=b"gone")
    s3.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": "k/batch-deleted"}]})
    s3.copy_object(Bucket=BUCKET, Key="k/copy", CopySource={"Bucket": BUCKET, "Key": ODD_KEY})
    upload = s3.create_multipart_upload(Bucket=BUCKET, Key="exports/e.json", ContentType="application/json")[
        "UploadId"
    ]
    parts = [
        {
            "PartNumber": n,
            "ETag": s3.upload_part(
                Bucket=BUCKET,
                Key="exports/e.json",
                UploadId=upload,
                PartNumber=n,
                Body=(b"%d" % n) * (5 * 1024 * 1024 if n == 1 else 10),
            )["ETag"],
        }
        for n in (1, 2)
    ]
    s3.complete_multipart_upload(
        Bucket=BUCKET, Key="exports/e.json", UploadId=upload, MultipartUpload={"Parts": parts}
    )
    aborted = s3.create_multipart_upload(Bucket=BUCKET, Key="exports/x.json")["UploadId"]
    s3.abort_multipart_upload(Bucket=BUCKET, Key="exports/x.json", UploadId=aborted)
    s3.put_object(Bucket="not-the-templates", Key="ignored", Body=b"x")  # not kept
    in_process_client("secretsmanager", front, HOST).put_secret_value(
        SecretId=secret_arn, SecretString="hmac-key-1"
    )


# ----------------------------------------------------------------------------- journal
def test_writes_moto_applied_replay_in_order_into_the_same_state(moto_app, tmp_path):
    data = tmp_path / "data"
    arn = create_resources(moto_app)
    store, front = open_store(data, moto_app, arn)
    assert store.restore().rows == 0  # a new data directory
    store.start_recording()
    some_writes(front, arn)
    before = state(moto_app)
    rows = store.journal.count()
    store.close(compact=False)

    # 30 puts, 5 updates, transact, delete, put, batch; 14 S3 writes; the refused put, the
    # other bucket and the secret (kept apart) are not journal rows
    assert rows == 30 + 5 + 1 + 1 + 1 + 1 + 14
    after = restart(data, moto_app)
    assert state(moto_app) == before
    assert before["secret"] == "hmac-key-1"
    assert before["objects"]["k/overwritten"] == (b"second", "text/plain")
    assert "k/deleted" not in before["objects"] and "k/batch-deleted" not in before["objects"]
    counter = [json.loads(i) for i in before["items"] if '"p0"' in i][0]
    assert counter["n"] == {"N": "5"}
    after.close(compact=False)


def test_a_compacted_journal_replays_into_the_same_state_with_fewer_rows(moto_app, tmp_path):
    data = tmp_path / "data"
    arn = create_resources(moto_app)
    store, front = open_store(data, moto_app, arn)
    store.restore()
    store.start_recording()
    some_writes(front, arn)
    before = state(moto_app)
    full_rows = store.journal.count()
    report = store.compact()
    ddb = in_process_client("dynamodb", front, HOST)  # a write after the snapshot is kept too
    ddb.put_item(TableName=TABLE, Item={"PK": {"S": "late"}, "SK": {"S": "x"}})
    before["items"] = state(moto_app)["items"]
    store.close(compact=False)

    items, objects = len(before["items"]), len(before["objects"])
    assert report.rows == -(-(items - 1) // 25) + objects  # BatchWriteItem of 25, PutObject each
    assert report.rows + 1 < full_rows
    restart(data, moto_app).close(compact=False)
    assert state(moto_app) == before


def test_compaction_is_due_when_the_writes_outweigh_the_snapshot(moto_app, tmp_path, monkeypatch):
    import assay_local.persistence.store as persistence_store

    monkeypatch.setattr(persistence_store, "COMPACT_MIN_BYTES", 1000)
    arn = create_resources(moto_app)
    store, front = open_store(tmp_path / "data", moto_app, arn)
    store.restore()
    store.start_recording()
    assert not store.compaction_due()
    some_writes(front, arn)
    assert store.compaction_due()
    assert store.close() is not None  # a clean stop compacts
    store = restart(tmp_path / "data", moto_app)
    assert not store.compaction_due() and store.journal.snapshot_bytes > 0
    store.close()


def test_a_torn_last_record_is_ignored_not_fatal(tmp_path):
    """A crash in the middle of a commit leaves a WAL frame cut short: the next open sees
    the journal as it was before that commit."""
    live = tmp_path / "live"
    live.mkdir()
    journal = Journal(live / DB_NAME)
    journal.db.execute("PRAGMA wal_autocheckpoint=0")  # all commits stay in the WAL
    for n in range(3):
        journal.append({"REQUEST_METHOD": "PUT", "PATH_INFO": f"/b/{n}"}, b"x" * 3000)
    crashed = tmp_path / "crashed"
    crashed.mkdir()
    for path in live.iterdir():  # the files as a kill -9 leaves them (connection still open)
        shutil.copy(path, crashed / path.name)
    journal.close()
    wal = crashed / f"{DB_NAME}-wal"
    wal.write_bytes(wal.read_bytes()[:-1500])  # the last commit's frame, half written

    reopened = Journal(crashed / DB_NAME)
    assert [row[2]["PATH_INFO"] for row in reopened.rows()] == ["/b/0", "/b/1"]
    reopened.append({"REQUEST_METHOD": "PUT", "PATH_INFO": "/b/next"}, b"")  # and it goes on
    assert reopened.count() == 3
    reopened.close()


def test_garbage_after_the_last_commit_is_ignored(tmp_path):
    journal = Journal(tmp_path / DB_NAME)
    journal.db.execute("PRAGMA wal_autocheckpoint=0")
    journal.append({"REQUEST_METHOD": "PUT", "PATH_INFO": "/b/0"}, b"x")
    copy = tmp_path / "copy"
    copy.mkdir()
    for path in tmp_path.glob(f"{DB_NAME}*"):
        shutil.copy(path, copy / path.name)
    journal.close()
    with (copy / f"{DB_NAME}-wal").open("ab") as wal:
        wal.write(b"\x00\x13garbage of a write that never finished" * 50)
    reopened = Journal(copy / DB_NAME)
    assert reopened.count() == 1
    reopened.close()


# ---------------------------------------------------------------- what is and is not kept
@pytest.mark.parametrize(
    ("method", "path", "query", "target", "expected"),
    [
        ("POST", "/", "", "DynamoDB_20120810.TransactWriteItems", "dynamodb"),
        ("POST", "/", "", "DynamoDB_20120810.Query", None),
        ("POST", "/", "", "secretsmanager.PutSecretValue", "secret"),
        ("POST", "/", "", "secretsmanager.GetSecretValue", None),
        ("POST", "/", "", "AWSStepFunctions.StartExecution", None),
        ("PUT", "/bkt/a/b.json", "", "", "s3"),
        ("PUT", "/bkt/a/b.json", "partNumber=1&uploadId=u", "", "s3"),
        ("POST", "/bkt/a/b.json", "uploads", "", "s3-create-multipart"),
        ("DELETE", "/bkt/a/b.json", "", "", "s3"),
        ("POST", "/bkt", "delete", "", "s3"),
        ("GET", "/bkt/a/b.json", "", "", None),
        ("PUT", "/bkt", "versioning", "", None),  # bucket configuration: the template's
        ("PUT", "/other/a", "", "", None),  # not one of the template's buckets
    ],
)
def test_which_requests_are_data_plane_writes(method, path, query, target, expected):
    scope = (
        "dynamodb"
        if target.startswith("DynamoDB")
        else ("secretsmanager" if target.startswith("secrets") else "states" if target else "s3")
    )
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "HTTP_AUTHORIZATION": f"AWS4-HMAC-SHA256 Credential=testing/20261207/us-east-1/"
        f"{scope}/aws4_request, SignedHeaders=host, Signature=0",
    }
    if target:
        environ["HTTP_X_AMZ_TARGET"] = target
    write = classify(environ, {"bkt"})
    assert (write.kind if write else None) == expected


def test_a_presigned_upload_is_a_write_too():
    """The dataset upload: a PUT authenticated by its query string, no Authorization."""
    query = (
        "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=ASIAX%2F20261207%2Fus-east-1"
        "%2Fs3%2Faws4_request&X-Amz-Date=20261207T000000Z&X-Amz-Expires=900"
        "&X-Amz-SignedHeaders=content-type%3Bhost&X-Amz-Signature=00"
    )
    write = classify(
        {"REQUEST_METHOD": "PUT", "PATH_INFO": "/bkt/uploads/t/d/u.jsonl", "QUERY_STRING": query}, {"bkt"}
    )
    assert write is not None and write.kind == "s3"


def test_a_data_directory_serves_one_stack_at_a_time(tmp_path):
    first = DurableStore(tmp_path, stack_name="t")
    with pytest.raises(DataDirError, match="in use by another local stack"):
        DurableStore(tmp_path, stack_name="t")
    first.close()
    with pytest.raises(DataDirError, match="holds the state of the local stack 't'"):
        DurableStore(tmp_path, stack_name="other")
    DurableStore(tmp_path, stack_name="t").close()  # released: usable again


def test_unfinished_runs_are_the_pending_and_running_ones(moto_app, tmp_path):
    arn = create_resources(moto_app)
    store, front = open_store(tmp_path / "data", moto_app, arn)
    store.restore()
    ddb = in_process_client("dynamodb", front, HOST)
    for run, status in [
        ("r1", "pending"),
        ("r2", "running"),
        ("r3", "completed"),
        ("r4", "failed"),
        ("r5", "cancelled"),
    ]:
        ddb.put_item(
            TableName=TABLE,
            Item={
                "PK": {"S": f"T#t1#RUN#{run}"},
                "SK": {"S": "RUN"},
                "id": {"S": run},
                "tenant_id": {"S": "t1"},
                "status": {"S": status},
            },
        )
    ddb.put_item(
        TableName=TABLE,
        Item={"PK": {"S": "T#t1#RUN#r2"}, "SK": {"S": "B#0000001"}, "status": {"S": "running"}},
    )  # not a run item
    found = unfinished_runs(store, TABLE)
    assert [(r.run_id, r.status) for r in found] == [("r1", "pending"), ("r2", "running")]
    store.close(compact=False)


def test_a_stop_leaves_a_big_journal_to_the_next_start(moto_app, tmp_path, monkeypatch):
    """A stop must end within seconds: past STOP_COMPACT_MAX_BYTES the journal is kept as
    it is, and the next start's replay compacts it — nothing is lost either way."""
    import assay_local.persistence.store as persistence_store

    monkeypatch.setattr(persistence_store, "COMPACT_MIN_BYTES", 1000)
    monkeypatch.setattr(persistence_store, "STOP_COMPACT_MAX_BYTES", 2000)
    arn = create_resources(moto_app)
    store, front = open_store(tmp_path / "data", moto_app, arn)
    store.restore()
    store.start_recording()
    some_writes(front, arn)
    assert store.compaction_due() and store.journal.write_bytes > 2000
    before = state(moto_app)
    assert store.close() is None  # not compacted at the stop
    store = restart(tmp_path / "data", moto_app)  # replays, then compacts: it was due
    assert store.journal.write_bytes == 0 and store.journal.snapshot_bytes > 0
    assert state(moto_app) == before
    store.close()


def test_a_secret_value_given_at_a_start_replaces_the_kept_one_and_is_kept(tmp_path):
    # GIVEN a first start: the secrets' values as created are kept
    created = {"ApiKeySecret": "hmac-key-0", "JudgeOpenAISecret": "generated-0"}
    store = DurableStore(tmp_path, stack_name="t")
    store.attach(HOST, StackResources(), created)
    store.close()
    # WHEN the next start is given a judge key (`--judge-api-key`, ASSAY_JUDGE_API_KEY)
    store = DurableStore(tmp_path, stack_name="t")
    assert store.secret_values() == created  # what the secrets are created with, unless given
    given = {"JudgeOpenAISecret": "sk-given"}
    store.attach(HOST, StackResources(), {**created, **given}, given=given)
    # THEN it replaces the kept value of that secret only, and is kept for the next start
    assert store.secret_values() == {"ApiKeySecret": "hmac-key-0", "JudgeOpenAISecret": "sk-given"}
    store.close()
    store = DurableStore(tmp_path, stack_name="t")
    store.attach(HOST, StackResources(), store.secret_values())  # a start given no key
    assert store.secret_values()["JudgeOpenAISecret"] == "sk-given"
    store.close()
