"""Asyncio links to MQTT brokers and Meshtastic radios; no Home Assistant import here."""
