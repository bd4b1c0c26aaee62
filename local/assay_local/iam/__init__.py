"""Enforce each Lambda function's IAM role on the local stack, as AWS would.

moto accepts any request from anyone, so a function whose policy lacks an action it calls
works locally and fails on AWS with AccessDenied. The local stack closes that gap:

* Every worker runs with credentials of its function's own execution role, like Lambda:
  the stack calls moto's STS ``AssumeRole`` on the role the template gives the function
  (session name = the function's name) and puts the returned AccessKeyId,
  SecretAccessKey and SessionToken in the worker's environment.
* ``IamEnforcementApp``, a WSGI middleware in front of moto, recognises requests signed by
  an assumed-role key (moto's STS knows which role each ``ASIA…`` key belongs to, header
  or presigned URL), works out the IAM actions and resource ARNs the request needs and
  evaluates the role's policies — inline and attached managed, read from moto's IAM on each
  request (so a policy change applies at once), each document parsed once. A request that
  is not allowed gets the service's own AccessDenied answer (DynamoDB/Secrets Manager/Step
  Functions JSON 400, S3 XML 403, REST-JSON 403) and is recorded: ``Enforcer.denials()``,
  and a warning on the ``assay_local.iam`` logger.

Requests signed any other way pass untouched: the test harness and the HTTP front (the
dummy ``testing`` keys, like API Gateway's service principal invoking a function), the
Step Functions interpreter's own clients, the tenant bootstrap.

Enforced
    * DynamoDB, every operation, on ``table/NAME`` (``table/NAME/index/INDEX`` for a
      Query or Scan with ``IndexName``). TransactWriteItems needs, per item, PutItem,
      UpdateItem, DeleteItem or ConditionCheckItem; TransactGetItems GetItem per item
      (there is no Transact* IAM action). BatchGetItem and BatchWriteItem are their own
      actions, checked on each table they name. PartiQL maps to PartiQLSelect/Insert/
      Update/Delete.
    * S3 object and bucket operations: GET/HEAD object → GetObject (GetObjectVersion with
      ``versionId``), PUT → PutObject (+ GetObject on a copy source), multipart Create/
      UploadPart/Complete → PutObject, Abort → AbortMultipartUpload, ListParts →
      ListMultipartUploadParts, DELETE → DeleteObject, DeleteObjects → DeleteObject per
      key, GET/HEAD bucket → ListBucket, sub-resources (``?tagging``, ``?acl``, …) → their
      own actions. As on AWS, a GET/HEAD of a missing key answers 403, not 404, unless the
      role may ``s3:ListBucket`` the bucket (recorded as a denial of s3:ListBucket).
    * Secrets Manager, every operation, on the secret's full ARN (a name is resolved
      through moto). Step Functions, every operation, on the state machine, execution,
      map run or activity ARN the request names. Bedrock Runtime Converse/InvokeModel
      (``bedrock:InvokeModel``) and their streaming forms
      (``bedrock:InvokeModelWithResponseStream``) on the foundation-model (or inference
      profile) ARN. Lambda Invoke, GetFunction, GetFunctionConfiguration.
      ``sts:GetCallerIdentity`` is always allowed, as on AWS.
    * Evaluation: an explicit Deny wins, then any Allow, else an implicit deny; Action /
      NotAction (case-insensitive), Resource / NotResource, ``*`` and ``?`` wildcards.
    * Conditions on the keys ``dynamodb:LeadingKeys`` (the partition key values of the
      items the request names: Key/Item, every item of a batch, a Query's key condition —
      on an index, the index's partition key —; none for a Scan), ``s3:prefix``
      (ListBucket), ``aws:SecureTransport`` (true: the SDK on Lambda talks TLS),
      ``aws:PrincipalArn``, ``aws:PrincipalAccount``,
      ``aws:PrincipalType``, ``aws:RequestedRegion``; with the String*, Arn*, Bool and Null
      operators, ``ForAllValues:``/``ForAnyValue:`` and ``…IfExists``. A condition on any
      other key, or with another operator (Numeric*, Date*, IpAddress…), is not evaluated:
      an Allow statement carrying one is taken as matching and a Deny statement as not
      matching — broader than AWS, never a false denial.

Not enforced
    * The state machine's role (EvalRunStateMachine): moto's interpreter invokes the
      functions and reads the manifest with this process's own credentials. Its policy is
      covered by tests/infrastructure/test_template_policy.py only.
    * Resource-based policies as a source of Allow (the template's bucket policy only
      denies; its Lambda permissions are for API Gateway). Bucket-policy denials stay moto's
      (unconditional ones; conditional ones are left out, see ``resources.py``).
    * Permissions boundaries, session policies, SCPs (the template has none); the roles'
      trust policies (the stack assumes them itself); credential expiry, session tokens
      and signatures (moto verifies none).
    * KMS: the template encrypts with AWS-managed keys (SSE-S3, DynamoDB's), which need no
      ``kms:`` permission.
    * Services and operations with no mapping here, and requests this package cannot
      parse, pass — and are recorded (``Enforcer.unmapped()``) so a test can insist there
      are none.
    * Policy variables (``${aws:username}``) in resources.

moto's own evaluator (``moto.iam.access_control``) is not reused: it turns an Allow whose
condition does not hold into an explicit Deny, matches actions case-sensitively and does not
escape regex characters in patterns. Its models are: STS's assumed roles map a key to its
role, IAM's roles hold the policies.

On by default in every local stack; ``ASSAY_LOCAL_IAM=off`` (or ``LocalStack(iam=False)``)
turns it off. Local tooling only; never part of the Lambda package.

Modules
    * ``policy``: statements, conditions, the Allow/Deny evaluation.
    * ``target``, ``mapping`` and one module per service (``dynamodb``, ``s3``,
      ``secretsmanager``, ``stepfunctions``, ``bedrock``, ``awslambda``): a request → the
      checks (action, resource, condition keys) it needs.
    * ``enforcer``: which role signed a request, its policies in moto, the decision and the
      records (``Enforcer``, ``Denial``).
    * ``middleware``: the WSGI app, ``iam_middleware``, ``enabled_from_env``.
"""
