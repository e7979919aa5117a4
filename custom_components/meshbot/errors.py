"""Link errors mapped to Home Assistant's errors in one place: the forms and the actions.

Reauthentication needs no mapping: the supervisor tells a refused login (`LinkAuthError`) from
every other failure itself and calls the entry's reauth hook.
"""

from __future__ import annotations

import math

from homeassistant.exceptions import HomeAssistantError, ServiceValidationError

from .const import DOMAIN
from .links.errors import (
    LinkAuthError,
    LinkError,
    LinkPairingError,
    LinkPairingRequired,
    LinkTimeoutError,
    LinkTlsError,
)
from .links.stream import RequestRefused, RequestTimeout, TextTooLongError

# The most specific first: a TLS timeout is a timeout to the user, but a refused login is not.
FORM_ERRORS: tuple[tuple[type[LinkError], str], ...] = (
    (LinkPairingRequired, "pin_required"),
    (LinkPairingError, "pairing_failed"),
    (LinkAuthError, "invalid_auth"),
    (LinkTlsError, "tls_error"),
    (LinkTimeoutError, "timeout_connect"),
)


def form_error(err: LinkError) -> str:
    """Return the translated form error for a link that failed its check."""
    for kind, key in FORM_ERRORS:
        if isinstance(err, kind):
            return key
    return "cannot_connect"


def send_error(err: LinkError | TextTooLongError, radio_connected: bool) -> HomeAssistantError:
    """Return the translated error an action raises when the radio cannot send."""
    if isinstance(err, TextTooLongError):
        return ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="text_too_long",
            translation_placeholders={"size": str(err.size), "limit": str(err.limit)},
        )
    if isinstance(err, LinkTimeoutError):
        return HomeAssistantError(translation_domain=DOMAIN, translation_key="radio_timeout")
    return HomeAssistantError(
        translation_domain=DOMAIN,
        translation_key="radio_not_connected" if not radio_connected else "radio_refused",
        translation_placeholders={"reason": str(err)},
    )


def request_error(err: LinkError, node: str, radio_connected: bool) -> HomeAssistantError:
    """Return the translated error of a request to `node` that got no answer."""
    if isinstance(err, RequestTimeout):
        return HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="request_timeout",
            translation_placeholders={"node": node, "seconds": f"{err.timeout:g}"},
        )
    if isinstance(err, RequestRefused):
        return HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="request_refused",
            translation_placeholders={"node": node, "reason": err.reason},
        )
    return send_error(err, radio_connected)


def request_paced(node: str, delay: float | None) -> ServiceValidationError:
    """Return the error of a request the airtime rules hold back (`delay` None: one waits)."""
    if delay is None:
        return ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="request_pending",
            translation_placeholders={"node": node},
        )
    return ServiceValidationError(
        translation_domain=DOMAIN,
        translation_key="request_too_soon",
        translation_placeholders={"node": node, "seconds": str(math.ceil(delay))},
    )


def no_radio() -> ServiceValidationError:
    """Return the error of an action that needs a radio the entry does not have."""
    return ServiceValidationError(translation_domain=DOMAIN, translation_key="no_radio")
