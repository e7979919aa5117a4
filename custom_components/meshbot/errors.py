"""Link errors mapped to Home Assistant's errors in one place: the forms and the actions.

Reauthentication needs no mapping: the supervisor tells a refused login (`LinkAuthError`) from
every other failure itself and calls the entry's reauth hook.
"""

from __future__ import annotations

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
from .links.stream import TextTooLongError

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


def no_radio() -> ServiceValidationError:
    """Return the error of an action that needs a radio the entry does not have."""
    return ServiceValidationError(translation_domain=DOMAIN, translation_key="no_radio")
