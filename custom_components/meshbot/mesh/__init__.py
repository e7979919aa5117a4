"""Meshtastic decoding and state; pure Python, no Home Assistant import."""
