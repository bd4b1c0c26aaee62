"""Assay's Lambda code asset: one package, many functions (distinct ``Handler:`` strings).

Layers, from the edge inwards:

* ``handlers`` — thin Lambda entry points (HTTP API and workflow steps);
* ``services`` — use cases that orchestrate the ports;
* ``domain`` — pure logic (scorers, aggregation, ids); no boto3, no events;
* ``adapters`` — DynamoDB, S3, Step Functions, Secrets Manager; ``ClientError`` → domain errors;
* ``models`` — pydantic models by role (API, workflow, domain).
"""

# The service's version (pyproject.toml's, checked by a test): the Lambda asset carries no
# package metadata to read it from.
__version__ = "0.1.0"
