"""Test entry point: patch first (the only place tests patch), then shared fixtures."""

from gevent import monkey

monkey.patch_all()

import pytest  # noqa: E402

pytest.register_assert_rewrite("tests.helpers")
