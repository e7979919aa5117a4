"""Catch Home Assistant's deprecation reports about meshbot, so that tests can fail on them."""

from __future__ import annotations

import logging

# Home Assistant reports a custom integration's use of a deprecated API through these loggers
# (helpers.frame: "Detected that custom integration 'meshbot' calls ..."; helpers.deprecation:
# "... was used from meshbot, this is a deprecated constant ...") and only logs them, so a test
# would pass while the next release breaks meshbot.
REPORTING_LOGGERS = ("homeassistant.helpers.frame", "homeassistant.helpers.deprecation")


def is_deprecation_report(record: logging.LogRecord) -> bool:
    """Return whether a log record reports meshbot using something Home Assistant deprecates."""
    if record.levelno < logging.WARNING:
        return False
    message = record.getMessage()
    if "meshbot" not in message:
        return False
    return record.name.startswith(REPORTING_LOGGERS) or (
        "deprecat" in message.lower() and record.name.startswith("homeassistant")
    )


class DeprecationReports(logging.Handler):
    """Collect the deprecation reports about meshbot that reach the root logger."""

    def __init__(self) -> None:
        """Start with no reports."""
        super().__init__(logging.WARNING)
        self.reports: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        """Keep the record's message if it reports a deprecation in meshbot."""
        if is_deprecation_report(record):
            self.reports.append(f"{record.name}: {record.getMessage()}")
