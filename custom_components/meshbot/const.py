"""Constants for meshbot: config keys, defaults and link names."""

from __future__ import annotations

from enum import StrEnum
import logging
from typing import Final

DOMAIN: Final = "meshbot"
LOGGER = logging.getLogger(__package__)


class LinkKind(StrEnum):
    """The three links one config entry can run."""

    RADIO = "radio"
    MESH = "mesh"
    LIGHTNING = "lightning"


# Entry data: one optional section per link.
CONF_RADIO: Final = "radio"
CONF_MESH: Final = "mesh"
CONF_LIGHTNING: Final = "lightning"

CONF_CONNECTION: Final = "connection"
CONNECTION_TCP: Final = "tcp"
CONNECTION_SERIAL: Final = "serial"
CONNECTION_BLUETOOTH: Final = "bluetooth"
CONF_DEVICE: Final = "device"
CONF_TLS: Final = "tls"
CONF_VERIFY_TLS: Final = "verify_tls"
CONF_CA_CERT: Final = "ca_cert"
CONF_LOCATION_MODE: Final = "location_mode"
LOCATION_HOME: Final = "home"
LOCATION_FIXED: Final = "fixed"
LOCATION_ENTITY: Final = "entity"
CONF_LOCATION: Final = "location"
CONF_FOLLOW_ENTITY: Final = "follow_entity"

# Options: tunables that need no new connection check.
CONF_MESH_TOPICS: Final = "mesh_topics"
CONF_CHANNEL_KEYS: Final = "channel_keys"
CONF_RADIUS_KM: Final = "radius_km"

DEFAULT_RADIO_PORT: Final = 4403
DEFAULT_MQTT_PORT: Final = 1883
DEFAULT_MQTT_TLS_PORT: Final = 8883
DEFAULT_MESH_HOST: Final = "mqtt.meshtastic.org"
DEFAULT_MESH_USERNAME: Final = "meshdev"
DEFAULT_MESH_PASSWORD: Final = "large4cats"
DEFAULT_MESH_TOPICS: Final = ["msh/US"]
DEFAULT_CHANNEL_KEYS: Final = {"LongFast": "AQ=="}
DEFAULT_LIGHTNING_HOST: Final = "blitzortung.ha.sed.pl"
DEFAULT_RADIUS_KM: Final = 100.0
MAX_RADIUS_KM: Final = 2000.0

# Back-off per link (initial, maximum) in seconds. The Blitzortung relay bans clients that
# reconnect faster than once a minute, so its floor is 60 s and jitter is only ever added.
BACKOFF: Final = {
    LinkKind.RADIO: (2.0, 300.0),
    LinkKind.MESH: (2.0, 300.0),
    LinkKind.LIGHTNING: (60.0, 900.0),
}
# Config-flow connection checks must answer while the user waits.
VALIDATION_TIMEOUT: Final = 10.0
# A Bluetooth connect goes through the BLE stack's retries (and maybe a proxy): allow it longer.
BLUETOOTH_CONNECT_TIMEOUT: Final = 30.0
# How often the connectivity sensors refresh their "last message" attribute.
ACTIVITY_REFRESH_SECONDS: Final = 60

# Mesh collector options.
CONF_NODE_POLICY: Final = "node_policy"
POLICY_NONE: Final = "none"
POLICY_CHOSEN: Final = "chosen"
POLICY_NEARBY: Final = "nearby"
POLICY_DIRECT: Final = "direct"
POLICY_ALL: Final = "all"
NODE_POLICIES: Final = [POLICY_NONE, POLICY_CHOSEN, POLICY_NEARBY, POLICY_DIRECT, POLICY_ALL]
CONF_TRACKED_NODES: Final = "tracked_nodes"
CONF_NODE_RADIUS_KM: Final = "node_radius_km"
CONF_MAX_TRACKED_NODES: Final = "max_tracked_nodes"
CONF_TRACK_POSITIONS: Final = "track_positions"
CONF_NODE_MAX_AGE_HOURS: Final = "node_max_age_hours"
CONF_LINK_MAX_AGE_HOURS: Final = "link_max_age_hours"
CONF_ACTIVE_MINUTES: Final = "active_minutes"

# A public feed must never turn into hundreds of devices by default: only nodes near home.
DEFAULT_NODE_POLICY: Final = POLICY_NEARBY
DEFAULT_NODE_RADIUS_KM: Final = 10.0
DEFAULT_MAX_TRACKED_NODES: Final = 50
DEFAULT_TRACK_POSITIONS: Final = False
DEFAULT_NODE_MAX_AGE_HOURS: Final = 72.0
DEFAULT_LINK_MAX_AGE_HOURS: Final = 24.0
DEFAULT_ACTIVE_MINUTES: Final = 120.0

EVENT_NODE_DISCOVERED: Final = "meshbot_node_discovered"
EVENT_MESSAGE: Final = "meshbot_message"
# What became of a direct message a notify entity sent: acknowledged, refused, or no answer.
EVENT_MESSAGE_DELIVERY: Final = "meshbot_message_delivery"
# Entity state writes are coalesced to at most one per entity per this interval.
FLUSH_SECONDS: Final = 1.0
SAVE_DELAY_SECONDS: Final = 60.0
PRUNE_SECONDS: Final = 300.0
# Saved snapshots: a new major version is one an older meshbot cannot read; a new minor version
# only adds what an older one may ignore (Home Assistant's Store convention).
STORAGE_VERSION: Final = 1
STORAGE_MINOR_VERSION: Final = 2

# Lightning monitor options.
CONF_WINDOW_MINUTES: Final = "window_minutes"
CONF_ALERT_DISTANCE_KM: Final = "alert_distance_km"
CONF_ALERT_STRIKES: Final = "alert_strikes"
CONF_ALERT_MINUTES: Final = "alert_minutes"
CONF_QUIET_MINUTES: Final = "quiet_minutes"
CONF_MAP_STRIKES: Final = "map_strikes"
CONF_MESH_ALERT_TARGETS: Final = "mesh_alert_targets"
DEFAULT_WINDOW_MINUTES: Final = 30.0
DEFAULT_ALERT_DISTANCE_KM: Final = 15.0
DEFAULT_ALERT_STRIKES: Final = 3
DEFAULT_ALERT_MINUTES: Final = 10.0
DEFAULT_QUIET_MINUTES: Final = 20.0
DEFAULT_MAP_STRIKES: Final = 0
MAX_MAP_STRIKES: Final = 200
EVENT_LIGHTNING_STRIKE: Final = "meshbot_lightning_strike"
EVENT_LIGHTNING_ALERT: Final = "meshbot_lightning_alert"
# Beyond this many strikes a second, the rest of the second becomes one summary event, so a
# storm cannot flood the event bus or the recorder.
MAX_STRIKE_EVENTS_PER_SECOND: Final = 10
MESH_ALERT_INTERVAL_SECONDS: Final = 1800.0
