"""Who made a request and whether the role's policies allow what it needs: ``Enforcer``
(assumed-role keys and role policies read from moto, the decision, the records of
denials and unmapped requests), ``Denial`` in AWS's wording."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from assay_local.iam.mapping import request_checks
from assay_local.iam.policy import Check, Decision, Statement, evaluate, parse_policy
from assay_local.iam.target import Target, Unmapped
from assay_local.moto_requests import credential, service_and_operation

log = logging.getLogger("assay_local.iam")


@dataclass(frozen=True)
class Principal:
    """An assumed role, as its temporary credentials identify it."""

    arn: str  # arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION
    role_name: str
    role_arn: str
    account_id: str


@dataclass(frozen=True)
class Denial:
    """One request IAM would have refused (``message`` is AWS's wording)."""

    principal: str
    role: str
    action: str
    resource: str
    request: str  # e.g. "dynamodb TransactWriteItems", "s3 HEAD bucket/key"
    explicit: bool
    message: str
    stack: str = ""  # the template the stack was built from


def denial_message(principal: str, action: str, resource: str, explicit: bool) -> str:
    why = (
        "with an explicit deny in an identity-based policy"
        if explicit
        else f"because no identity-based policy allows the {action} action"
    )
    return f"User: {principal} is not authorized to perform: {action} on resource: {resource} {why}"


@dataclass(frozen=True)
class Outcome:
    """A request's service, its signer if enforced, the checks it needed, any denial."""

    service: str
    principal: Principal | None = None
    checks: list[Check] = field(default_factory=list)
    denial: Denial | None = None


# Every denial of every enforcer in this process (e.g. for a test session's final check).
_ALL_DENIALS: list[Denial] = []
_ALL_UNMAPPED: list[tuple[str, str]] = []
_REGISTRY_LOCK = threading.Lock()


def recorded_denials() -> list[Denial]:
    with _REGISTRY_LOCK:
        return list(_ALL_DENIALS)


def recorded_unmapped() -> list[tuple[str, str]]:
    """``(stack, request)`` of every request no mapping covered, in this process."""
    with _REGISTRY_LOCK:
        return list(_ALL_UNMAPPED)


class Enforcer:
    """Maps requests to checks and evaluates them against the signer's role in moto."""

    def __init__(self, account_id: str, region: str, *, stack: str = "") -> None:
        self.account_id = account_id
        self.region = region
        self.stack = stack
        self._lock = threading.Lock()
        self._principals: dict[str, Principal] = {}
        self._partition_keys: dict[tuple[str, str | None], str | None] = {}
        self._denials: list[Denial] = []
        self._unmapped: list[str] = []
        self._allowed: Counter[str] = Counter()

    # ---------------------------------------------------------------- records
    def denials(self) -> list[Denial]:
        with self._lock:
            return list(self._denials)

    def unmapped(self) -> list[str]:
        with self._lock:
            return list(self._unmapped)

    def allowed_counts(self) -> dict[str, int]:
        """Checks that passed, by ``role action`` (proof the enforcement saw the calls)."""
        with self._lock:
            return dict(self._allowed)

    def record(self, denial: Denial) -> None:
        log.warning("IAM (local enforcement) denied %s: %s", denial.request, denial.message)
        with self._lock:
            self._denials.append(denial)
        with _REGISTRY_LOCK:
            _ALL_DENIALS.append(denial)

    def _record_unmapped(self, request: str) -> None:
        log.warning("IAM (local enforcement) cannot map %s; passed unchecked", request)
        with self._lock:
            self._unmapped.append(request)
        with _REGISTRY_LOCK:
            _ALL_UNMAPPED.append((self.stack, request))

    # ----------------------------------------------------------- moto lookups
    def principal(self, access_key_id: str) -> Principal | None:
        """The assumed role behind a temporary access key, or None (not enforced)."""
        found = self._principals.get(access_key_id)
        if found is not None or not access_key_id.startswith("ASIA"):
            return found
        from moto.sts.models import sts_backends

        assumed = sts_backends[self.account_id]["aws"].get_assumed_role_from_access_key(access_key_id)
        if assumed is None:
            return None
        found = Principal(
            arn=assumed.arn,
            role_name=assumed.role_arn.rsplit("/", 1)[-1],
            role_arn=assumed.role_arn,
            account_id=assumed.account_id,
        )
        self._principals[access_key_id] = found
        return found

    def statements(self, principal: Principal) -> list[Statement]:
        """The role's inline and attached managed policies, as they are in moto now."""
        from moto.iam.models import iam_backends

        backend = iam_backends[principal.account_id]["aws"]
        role = next((r for r in backend.get_roles() if r.arn == principal.role_arn), None)
        if role is None:
            return []  # a deleted role allows nothing
        documents = list(role.policies.values())
        for policy in role.managed_policies.values():
            documents += [v.document for v in policy.versions if v.is_default]
        return [s for d in documents for s in parse_policy(d)]

    def partition_key(self, table: str, index: str | None) -> str | None:
        cache_key = (table, index)
        if cache_key in self._partition_keys:
            return self._partition_keys[cache_key]
        from moto.dynamodb.models import dynamodb_backends

        name = table.rsplit("/", 1)[-1] if table.startswith("arn:") else table
        found = dynamodb_backends[self.account_id][self.region].tables.get(name)
        attribute: str | None = None
        if found is not None:
            attribute = found.hash_key_attr
            for candidate in (*found.global_indexes, *found.indexes):
                if index is not None and candidate.name == index:
                    attribute = next(
                        (k["AttributeName"] for k in candidate.schema if k["KeyType"] == "HASH"), attribute
                    )
            self._partition_keys[cache_key] = attribute  # tables keep their key schema
        return attribute

    def secret_arn(self, secret_id: str) -> str:
        """A secret's full ARN (IAM checks the ARN, callers may name the secret)."""
        if secret_id.startswith("arn:"):
            return secret_id
        from moto.secretsmanager.models import secretsmanager_backends

        store = secretsmanager_backends[self.account_id][self.region].secrets
        if secret_id in store:
            return str(store[secret_id].arn)
        return f"arn:aws:secretsmanager:{self.region}:{self.account_id}:secret:{secret_id}"

    # ------------------------------------------------------------ the decision
    def checks(self, environ: dict[str, Any], service: str, op: str, region: str) -> list[Check]:
        """The checks a request needs (``Unmapped`` if this package cannot tell)."""
        target = Target(self.account_id, region, self.partition_key, self.secret_arn)
        return request_checks(environ, service, op, target)

    def decide(self, environ: dict[str, Any]) -> Outcome:
        """Who signed the request, what it needs and whether that is allowed."""
        service, op = service_and_operation(environ)
        scope = credential(environ)
        principal = self.principal(scope[0]) if scope else None
        if principal is None or scope is None:
            return Outcome(service)
        request = f"{service} {op or environ['REQUEST_METHOD']} {environ.get('PATH_INFO', '')}"
        try:
            checks = self.checks(environ, service, op, scope[1])
        except Unmapped as exc:
            self._record_unmapped(str(exc))
            return Outcome(service, principal)
        except Exception as exc:
            # Let the service answer it, but never silently: it went unchecked.
            self._record_unmapped(f"{request} ({type(exc).__name__}: {exc})")
            return Outcome(service, principal)
        statements = self.statements(principal)
        for check in checks:
            context = {**check.context, **self._global_context(principal, scope[1])}
            decision = evaluate(statements, Check(check.action, check.resource, context))
            if decision is not Decision.ALLOW:
                denial = self.denial(principal, check, request, explicit=decision is Decision.EXPLICIT_DENY)
                return Outcome(service, principal, checks, denial)
        with self._lock:
            self._allowed.update(f"{principal.role_name} {c.action}" for c in checks)
        return Outcome(service, principal, checks)

    def denial(self, principal: Principal, check: Check, request: str, *, explicit: bool) -> Denial:
        return Denial(
            principal=principal.arn,
            role=principal.role_name,
            action=check.action,
            resource=check.resource,
            request=request,
            explicit=explicit,
            message=denial_message(principal.arn, check.action, check.resource, explicit),
            stack=self.stack,
        )

    def allowed(self, principal: Principal, check: Check, region: str) -> bool:
        context = {**check.context, **self._global_context(principal, region)}
        return (
            evaluate(self.statements(principal), Check(check.action, check.resource, context))
            is Decision.ALLOW
        )

    @staticmethod
    def _global_context(principal: Principal, region: str) -> dict[str, tuple[str, ...]]:
        return {
            "aws:securetransport": ("true",),
            "aws:principalarn": (principal.role_arn,),
            "aws:principalaccount": (principal.account_id,),
            "aws:principaltype": ("AssumedRole",),
            "aws:requestedregion": (region,),
        }
