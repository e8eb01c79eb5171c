"""A stored event may be sent as stored only when its round trip gives back the same bytes."""

from __future__ import annotations

from agentlog.domain.events import (
    CustomEventRecorded,
    ModelCallMetered,
    TextDelta,
    encode_event,
)
from agentlog.infra.store.wire_form import ENCODING_FINGERPRINT, is_wire_form


def test_what_this_version_encodes_from_well_typed_events_is_wire_form() -> None:
    assert is_wire_form(encode_event(CustomEventRecorded(name="n", data={"a": [1, 2.5, None]})))
    assert is_wire_form(
        encode_event(TextDelta(run_id="r", message_id="m", block_index=0, delta="é\n"))
    )


def test_json_that_changes_on_its_round_trip_is_not() -> None:
    # An int where the field says float, keys in another order, a field this version lacks.
    assert not is_wire_form(
        encode_event(ModelCallMetered(endpoint="messages", status=200, cost_usd=1))
    )
    assert not is_wire_form(b'{"name":"n","type":"custom","data":1}')
    assert not is_wire_form(b'{"type":"custom","name":"n","data":1,"newer":2}')
    assert not is_wire_form(b'{"type":"no_such_event"}')
    assert not is_wire_form(b"not json")


def test_the_fingerprint_is_a_stable_digest() -> None:
    assert len(ENCODING_FINGERPRINT) == 64
    int(ENCODING_FINGERPRINT, 16)
