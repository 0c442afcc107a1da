#!/usr/bin/env python3
"""The hash chain's test vectors (SPEC §9, docs/integrity.md "The
encoding"), computed from the encoding alone by a second implementation:
not the Rust one, so a vector both agree on was not made up by one of them.
crates/spendguard-core/src/chain.rs (unit tests) and
tests/pg_regress/sql/chain.sql (through SQL) expect the same hashes.
Run by `make unit`; exits 1 when a hash differs."""
import hashlib
import struct
import sys

DOMAIN = b"spendguard-chain"


def field(tag, payload=b""):
    return bytes([tag]) + struct.pack(">I", len(payload)) + payload


def text(s):
    return field(1, s.encode()) if s is not None else field(0)


def int8(v):
    return field(2, struct.pack(">q", v)) if v is not None else field(0)


def int4(v):
    return field(3, struct.pack(">i", v))


def boolean(v):
    return field(4, bytes([1 if v else 0]))


def time(micros):
    return field(5, struct.pack(">q", micros))


def raw(b):
    return field(6, b)


def numeric(s):
    return field(7, s.encode())


def link(record, prev, fields):
    b = DOMAIN + bytes([1, record]) + (prev or b"") + struct.pack(">I", len(fields)) + b"".join(fields)
    return hashlib.sha256(b).digest()


genesis = link(0, None, [text("acme"), text("gpt"), int4(7)])
event = link(1, genesis, [
    text("acme"), int8(42), text("ev-1"), text("fp"), text("h1"), text("gpt"), int4(7),
    text("authorize_exposure"), boolean(True), text(None), time(820551845678901), int8(1500),
    int8(0), int8(None), int8(2000), int8(10000), int8(1), int8(1500), int8(0), text(None),
    text(None), int8(None), text("single_primary_linearizable"), int8(1)])
checkpoint = link(2, event, [
    text("acme"), text("gpt"), int4(7), int8(42), time(820551845678901), time(820551900000000),
    int8(1), int8(1), int8(1500), int8(0), numeric("-12.50"), int8(42), int8(0), numeric("0"),
    int8(1), raw(event), int8(2)])
root = hashlib.sha256(DOMAIN + bytes([1, 3]) + text("gpt") + int4(7) + int8(2) + raw(checkpoint)
                      + text("gpu") + int4(0) + int8(1) + raw(event)).digest()

EXPECTED = {
    "genesis": ("a4d7ad19a24abd52846d45a352937567bd57f3b04534de43fc06f179c1fe54e4", genesis),
    "event": ("7aefe6eb704ac9ee002b52459084d82aa21be1480206c855a85d4ec55b6a726e", event),
    "checkpoint": ("66865caf052cffffed3b8c36c95f14473aa4a7f545bb9f792a29e17cbd9b9d4c", checkpoint),
    "root": ("9155a7ba436682abb61af9ccc5a4084a304b5f1b8d66885f920f4223833a4335", root),
}
bad = [name for name, (want, got) in EXPECTED.items() if got.hex() != want]
for name, (want, got) in EXPECTED.items():
    print(f"{name:10} {got.hex()} {'ok' if got.hex() == want else 'MISMATCH, want ' + want}")
if bad:
    sys.exit(1)
print(f"{len(EXPECTED)} passed, 0 failed")
