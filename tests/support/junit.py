"""What a JUnit consumer (GitHub's test-report actions, Jenkins, GitLab) needs of ``assay ci --junit``.

Parsing is not enough: these tools read the counts from the attributes and show the test cases by
``classname`` and ``name``, and a failure without ``message`` shows up blank. ``validate_junit``
raises ``AssertionError`` naming the first problem and returns the root element."""

from __future__ import annotations

import xml.etree.ElementTree as ET

COUNTS = ("tests", "failures", "errors", "skipped")
OUTCOMES = ("failure", "error", "skipped")


def _count(element: ET.Element, name: str, *, required: bool) -> int | None:
    value = element.get(name)
    where = f"<{element.tag} name={element.get('name')!r}>"
    if value is None:
        assert not required, f"{where} lacks the {name} attribute"
        return None
    assert value.isdigit(), f"{where} {name}={value!r} is not a non-negative integer"
    return int(value)


def _seconds(element: ET.Element) -> None:
    value = element.get("time")
    if value is not None:
        try:
            assert float(value) >= 0, f"<{element.tag}> time={value!r} is negative"
        except ValueError:
            raise AssertionError(f"<{element.tag}> time={value!r} is not a number") from None


def _check_case(case: ET.Element) -> str | None:
    """The case's outcome (failure, error, skipped or None for a pass) after checking it."""
    for attribute in ("name", "classname"):
        assert (case.get(attribute) or "").strip(), (
            f"a testcase lacks {attribute}: {ET.tostring(case)[:200]!r}"
        )
    _seconds(case)
    outcomes = [child for child in case if child.tag in OUTCOMES]
    assert len(outcomes) <= 1, f"testcase {case.get('name')!r} has {len(outcomes)} outcomes"
    if not outcomes:
        return None
    outcome = outcomes[0]
    if outcome.tag in ("failure", "error"):
        assert (outcome.get("message") or "").strip(), (
            f"the {outcome.tag} of testcase {case.get('name')!r} has no message"
        )
    return outcome.tag


def _check_suite(suite: ET.Element) -> dict[str, int]:
    assert suite.tag == "testsuite", f"expected <testsuite>, got <{suite.tag}>"
    assert (suite.get("name") or "").strip(), "a testsuite lacks name"
    _seconds(suite)
    for child in suite:
        assert child.tag in ("properties", "testcase", "system-out", "system-err"), (
            f"unexpected <{child.tag}> in a testsuite"
        )
    for prop in suite.iter("property"):
        assert prop.get("name") and prop.get("value") is not None, f"bad property {prop.attrib}"
    cases = suite.findall("testcase")
    outcomes = [_check_case(case) for case in cases]
    actual = {
        "tests": len(cases),
        "failures": outcomes.count("failure"),
        "errors": outcomes.count("error"),
        "skipped": outcomes.count("skipped"),
    }
    for name in COUNTS:
        declared = _count(suite, name, required=name != "skipped")
        if declared is not None:
            assert declared == actual[name], (
                f"testsuite {suite.get('name')!r} says {name}={declared}, its test cases say {actual[name]}"
            )
    return actual


def validate_junit(xml: bytes) -> ET.Element:
    assert xml.lstrip().startswith(b"<?xml"), "no XML declaration"
    root = ET.fromstring(xml)  # noqa: S314 (our own output)
    if root.tag == "testsuite":
        _check_suite(root)
        return root
    assert root.tag == "testsuites", f"the root is <{root.tag}>, not <testsuites> or <testsuite>"
    suites = list(root)
    assert suites and all(s.tag == "testsuite" for s in suites), "<testsuites> must hold <testsuite>s"
    totals = dict.fromkeys(COUNTS, 0)
    for suite in suites:
        for name, value in _check_suite(suite).items():
            totals[name] += value
    for name in COUNTS:
        declared = _count(root, name, required=False)
        if declared is not None:
            assert declared == totals[name], (
                f"<testsuites> says {name}={declared}, its suites say {totals[name]}"
            )
    return root
