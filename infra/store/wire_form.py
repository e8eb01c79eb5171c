"""Whether a stored event's bytes are already what a read would send for it.

A read sends an event as this version encodes it: decoded from the stored JSON and encoded
again, so an import's key order, fields a newer version wrote and defaults an older one left
out come out the same as everywhere else. For an event this version appended, that round trip
usually gives back the stored bytes: a store can then mark the row with this version's
encoding (`ENCODING_FINGERPRINT`) and send such rows as they are, which is most of a replay's
cost once the read itself is cheap (SQLite). The mark is a promise only about the bytes it was
checked on, at append: any row without it, or with another version's, takes the round trip.
"""

from __future__ import annotations

import hashlib

import msgspec

from agentlog.domain.events import SessionEvent, decode_event, encode_event

# Raise to invalidate every mark without a schema change (e.g. a change of encoder options).
ENCODING_REVISION = 1


def _fingerprint() -> str:
    # The schema names every event type, field, type and default; msgspec's version covers
    # how it writes them (floats, escapes). Any change gives another fingerprint, and rows
    # marked with the old one are decoded and encoded again when read.
    schema = msgspec.json.encode(msgspec.json.schema(SessionEvent))
    source = b"%d|%s|%s" % (ENCODING_REVISION, msgspec.__version__.encode(), schema)
    return hashlib.sha256(source).hexdigest()


ENCODING_FINGERPRINT = _fingerprint()


def is_wire_form(data: bytes) -> bool:
    """`data` comes back byte for byte from decoding and encoding it again (not so for, say,
    an event built in Python with an int where its field says float: stored `1`, sent `1.0`)."""
    try:
        return encode_event(decode_event(data)) == data
    except (msgspec.DecodeError, msgspec.ValidationError):
        return False
