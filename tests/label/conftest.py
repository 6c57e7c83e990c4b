"""Fixtures of the serving tests (defined in ``_label_test_utils``)."""

from _label_test_utils import served  # noqa: F401
