"""Form fields every link's steps share: the selectors and the checks of what users type.

Home Assistant's selectors check types and draw the widgets, but a number selector lets NaN,
infinities and fractions through and a text selector takes anything. Each check here returns the
value the entry stores, or raises `FieldError` with the translated error the field shows, so a
bad value costs a form error on its field and is never stored.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
import ipaddress
import math
from typing import Any

from homeassistant.core import split_entity_id, valid_entity_id
from homeassistant.helpers import selector
import voluptuous as vol

# MQTT carries user names and passwords with a two-byte length.
MAX_MQTT_BYTES = 65535
MAX_HOST_LENGTH = 253
MAX_LABEL_LENGTH = 63
MAX_PATH_BYTES = 4096
HOST_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_")

TEXT_MULTILINE = selector.TextSelector(selector.TextSelectorConfig(multiline=True))
PASSWORD = selector.TextSelector(
    selector.TextSelectorConfig(type=selector.TextSelectorType.PASSWORD)
)
# The selector draws the box and checks the type; `port` checks the value.
PORT = selector.NumberSelector(
    selector.NumberSelectorConfig(min=1, max=65535, mode=selector.NumberSelectorMode.BOX)
)


@dataclass(frozen=True, kw_only=True)
class OptionsPart:
    """The options of one part of an entry: when they apply, their fields, how they are read."""

    applies: Callable[[Mapping[str, Any]], bool]
    fields: Callable[[], dict[Any, Any]]
    suggested: Callable[[Mapping[str, Any]], dict[str, Any]]
    read: Callable[[Mapping[str, Any], dict[str, str]], dict[str, Any]]


class FieldError(ValueError):
    """Raise when a form value cannot be used; `key` names the translated error."""

    def __init__(self, key: str) -> None:
        """Keep the translation key of the error."""
        super().__init__(key)
        self.key = key


def host(value: Any) -> str:
    """Return a host name or IP address as the entry stores it; raise FieldError."""
    if not isinstance(value, str):
        raise FieldError("invalid_host")
    text = value.strip()
    try:
        ipaddress.ip_address(text.removeprefix("[").removesuffix("]"))
    except ValueError:
        pass
    else:
        return text.removeprefix("[").removesuffix("]")
    try:
        # Internationalised names travel as their ASCII (punycode) form.
        ascii_name = text.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise FieldError("invalid_host") from None
    labels = ascii_name.removesuffix(".").split(".")
    if (
        not ascii_name
        or len(ascii_name) > MAX_HOST_LENGTH
        or any(
            not 0 < len(label) <= MAX_LABEL_LENGTH
            or not set(label) <= HOST_CHARACTERS
            or label.startswith("-")
            or label.endswith("-")
            for label in labels
        )
    ):
        raise FieldError("invalid_host")
    return text


def port(value: Any) -> int:
    """Return a TCP port number; raise FieldError."""
    return int(number(value, 1, 65535, integer=True, error="invalid_port"))


def number(
    value: Any,
    minimum: float,
    maximum: float,
    *,
    integer: bool = False,
    error: str = "invalid_number",
) -> float:
    """Return a finite number within [minimum, maximum], whole if asked; raise FieldError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise FieldError(error)
    if not math.isfinite(value) or not minimum <= value <= maximum:
        raise FieldError(error)
    if integer:
        if value != int(value):
            raise FieldError(error)
        return int(value)
    # -0.0 reads as 0 in a form; store the plain zero.
    return float(value) + 0.0


def mqtt_text(value: Any, error: str) -> str:
    """Return a user name or password MQTT can carry; raise FieldError."""
    if not isinstance(value, str) or "\x00" in value:
        raise FieldError(error)
    try:
        size = len(value.encode())
    except UnicodeEncodeError:
        raise FieldError(error) from None
    if size > MAX_MQTT_BYTES:
        raise FieldError(error)
    return value


def pin(value: Any) -> str:
    """Return a Meshtastic Bluetooth PIN (six digits, as the node shows it); raise FieldError."""
    text = value.strip() if isinstance(value, str) else ""
    if len(text) != 6 or not text.isascii() or not text.isdigit():
        raise FieldError("invalid_pin")
    return text


def path(value: Any, error: str) -> str:
    """Return an absolute file or device path; raise FieldError."""
    if not isinstance(value, str):
        raise FieldError(error)
    text = value.strip()
    # Lone surrogates are not printable: what passes encodes.
    if not text.startswith("/") or not text.isprintable() or len(text.encode()) > MAX_PATH_BYTES:
        raise FieldError(error)
    return text


def entity_id(value: Any, domains: tuple[str, ...]) -> str:
    """Return an entity id of one of `domains`; raise FieldError."""
    if not isinstance(value, str) or not valid_entity_id(value):
        raise FieldError("invalid_entity")
    if split_entity_id(value)[0] not in domains:
        raise FieldError("invalid_entity")
    return value


def text_list(value: Any) -> list[str]:
    """Return the non-blank entries of a multiple text field, stripped."""
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise FieldError("invalid_list")
    # A blank line the form's list leaves behind is no entry, nor an error.
    return [item.strip() for item in value if item.strip()]


def boolean(value: Any) -> bool:
    """Return a switch's position; raise FieldError."""
    if not isinstance(value, bool):
        raise FieldError("invalid_boolean")
    return value


def read(
    user_input: Mapping[str, Any],
    checks: Mapping[str, Callable[[Any], Any]],
    errors: dict[str, str],
    optional: Collection[str] = (),
) -> dict[str, Any]:
    """Return the checked value of each field; put each failure in `errors`.

    A missing field is checked as None (and so refused), unless it is `optional`.
    """
    values: dict[str, Any] = {}
    for key, check in checks.items():
        if key not in user_input and key in optional:
            continue
        try:
            values[key] = check(user_input.get(key))
        except FieldError as err:
            errors[key] = err.key
    return values


def number_fields(
    table: Mapping[str, tuple[float, float, str | None]], defaults: Mapping[str, float]
) -> dict[Any, Any]:
    """Return number-box form fields for a table of (minimum, maximum, unit)."""
    fields: dict[Any, Any] = {}
    for key, (minimum, maximum, unit) in table.items():
        config = selector.NumberSelectorConfig(
            min=minimum, max=maximum, step=1, mode=selector.NumberSelectorMode.BOX
        )
        if unit is not None:
            config["unit_of_measurement"] = unit
        fields[vol.Required(key, default=defaults[key])] = selector.NumberSelector(config)
    return fields


def number_checks(
    table: Mapping[str, tuple[float, float, str | None]], integers: frozenset[str]
) -> dict[str, Callable[[Any], float]]:
    """Return the checks of a table of number fields, whole numbers for `integers`."""
    return {
        key: _number_check(minimum, maximum, key in integers)
        for key, (minimum, maximum, _unit) in table.items()
    }


def _number_check(minimum: float, maximum: float, integer: bool) -> Callable[[Any], float]:
    def check(value: Any) -> float:
        return number(value, minimum, maximum, integer=integer)

    return check
