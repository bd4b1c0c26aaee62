import pytest

# The shared builders assert on what the handlers answer: pytest rewrites their asserts as it
# does the test modules' (they were defined in test modules before).
pytest.register_assert_rewrite("tests.functional.factories")
