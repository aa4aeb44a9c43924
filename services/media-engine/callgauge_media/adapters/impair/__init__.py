"""Impairment of a call's media path in user space (no netem on these machines): the UDP relay
(relay.py) and the relays a media worker puts in front of a call's RTP/RTCP (media.py). The
impairment itself, as a value, is :mod:`callgauge_media.domain.impairment`."""
