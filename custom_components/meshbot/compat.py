"""What differs between the Home Assistant releases meshbot supports (2026.2 to the newest)."""

from __future__ import annotations

from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr

from .const import DOMAIN

# Home Assistant 2026.8 links a device to its parent by the parent's registry id and deprecates
# the identifier form (removed in 2027.8); 2026.2 knows only the identifier form.
VIA_DEVICE_BY_REGISTRY_ID = "via_device_id" in dr.DeviceInfo.__annotations__


def async_entry_device(
    hass: HomeAssistant, entry_id: str, identifier: str
) -> dr.DeviceEntry | None:
    """Return the entry's device with meshbot's `identifier`, if it is registered.

    Device identifiers are unique per config entry from Home Assistant 2026.8 on, which then
    deprecates the lookup by identifier alone that 2026.2 alone offers.
    """
    registry = dr.async_get(hass)
    if lookup := getattr(registry, "async_get_device_by_identifier", None):
        device: dr.DeviceEntry | None = lookup((DOMAIN, identifier), entry_id)
        return device
    return registry.async_get_device(identifiers={(DOMAIN, identifier)})
