"""Exceptions raised by the links; the integration maps them to Home Assistant errors."""


class LinkError(Exception):
    """Raise when a link cannot connect or loses its connection."""


class LinkClosedByPeer(LinkError):
    """Raise when the peer closed the connection in order, as a radio does for a new client.

    A reset, a timeout or a restart is not this.
    """


class LinkTimeoutError(LinkError):
    """Raise when a connect, handshake or liveness deadline passes."""


class LinkAuthError(LinkError):
    """Raise when the peer rejects the credentials; retrying cannot help."""


class LinkProtocolError(LinkError):
    """Raise when the peer breaks the protocol beyond what can be skipped."""


class LinkTlsError(LinkError):
    """Raise when the TLS handshake fails, typically on an untrusted certificate."""


class LinkPairingError(LinkAuthError):
    """Raise when a Bluetooth radio refuses the pairing (a wrong PIN, or no way to enter it)."""


class LinkPairingRequired(LinkPairingError):
    """Raise when a Bluetooth radio requires pairing and no PIN was given."""
