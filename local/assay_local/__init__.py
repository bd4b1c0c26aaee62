"""Assay's embedded local stack (never shipped to Lambda).

``LocalStack`` starts moto in-process, deploys ``template.yaml`` onto it through the
service APIs, runs the real handlers in warm worker processes behind moto's Lambda
hook and serves the HTTP API as API Gateway payload format 2.0::

    from assay_local.stack import LocalStack

    with LocalStack(port=0) as stack:
        requests.get(f"{stack.url}/v1/health")

Or ``python -m assay_local serve [--port N]``. Modules: ``template`` (load, translate,
resolve), ``resources`` (create on moto), ``lambda_runtime`` (hook + workers),
``routes`` + ``http_front`` (the HTTP API), ``stack`` (orchestration),
``iam`` (each function's role enforced in front of moto), ``metering`` (billable
requests counted), ``moto_requests`` (what both parse from a request).

This package's ``__init__`` stays import-free on purpose: every Lambda worker process
imports ``assay_local._worker`` and must not pay for moto or boto3 on the way.
"""
