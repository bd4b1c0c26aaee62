"""A durable local stack: the data-plane writes moto served, kept in a data directory.

moto keeps everything in memory, and the local stack creates its resources from the template
at every start, so without this a restart forgets every dataset, eval, run and API key.
``DurableStore`` keeps what the template's resources *hold* — DynamoDB items, S3 objects, the
Secrets Manager secrets' values — and nothing else (the resources themselves come from the
template again; Step Functions executions are not kept, ``LocalStack`` resumes the runs they
served). Decision 0011 says why it is built this way; docs/local-stack.md#durability what
survives.

* ``store`` — ``DurableStore``: a WSGI middleware, innermost in front of moto, commits each
  data-plane write moto answered 2xx to the journal before the answer leaves (one lock around
  both, so the journal's order is moto's); keeps each template secret's value so the next
  start creates it with it; replays the journal through moto's own app at start (below IAM
  and metering; a multipart upload's new id re-pointed onto later rows); compacts it into a
  snapshot of the current state when the rows since the last one outweigh it (at least
  ``COMPACT_MIN_BYTES``: after a replay, and at a clean stop up to ``STOP_COMPACT_MAX_BYTES``).
* ``journal`` — the SQLite file (WAL, ``synchronous=NORMAL``): a committed write survives
  ``kill -9``, a torn last record is ignored on the next open, a compaction is one transaction.
* ``writes`` — which requests are data-plane writes worth keeping.
* ``wsgi_capture`` — a request as stored and replayed, and botocore clients over moto's app
  in this process (the snapshot reads through the public APIs and stores the requests the
  SDK would send to recreate the state).
* ``resume`` — the runs a stop cut short, and the FAILED event for one that cannot restart.

Local tooling only; never part of the Lambda package.
"""

from assay_local.persistence.journal import Journal, ReplayReport
from assay_local.persistence.resume import stopped_run_event, unfinished_runs
from assay_local.persistence.store import DB_NAME, DataDirError, DurableStore, StackResources
from assay_local.persistence.writes import classify
from assay_local.persistence.wsgi_capture import call_app, in_process_client, live_environ

__all__ = [
    "DB_NAME",
    "DataDirError",
    "DurableStore",
    "Journal",
    "ReplayReport",
    "StackResources",
    "call_app",
    "classify",
    "in_process_client",
    "live_environ",
    "stopped_run_event",
    "unfinished_runs",
]
