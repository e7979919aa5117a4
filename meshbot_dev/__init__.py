"""Development parts of meshbot that tests, the demo and the benchmarks share.

Not test code and not part of the integration: a real Mosquitto runner (`mosquitto`), a fake
Meshtastic node speaking the stream protocol over TCP and a pseudo-terminal (`fake_node`), a
generator of Meshtastic MQTT traffic (`mesh_traffic`), config entry builders (`entries`) and the
headless Chromium helpers (`browser`).
"""
