"""The sealed compose input: encrypted and compressed at rest, keys that rotate."""

from __future__ import annotations

import os
import stat

import pytest
from cryptography.fernet import Fernet

from server.delivery.sealed import SealedInputs, load_keys

INPUT = {"tenant": "nordkort", "data": '{"customer": {"name": "Kari Nordmann"}}' * 50,
         "document_id": "01M8N1XH1T0X6MVPG205JXFRP9"}


def test_sealed_inputs_are_encrypted_compressed_and_open_again(tmp_path) -> None:
    sealed = SealedInputs(load_keys((), tmp_path))
    blob = sealed.seal(INPUT)
    assert b"Kari" not in blob and b"nordkort" not in blob
    assert len(blob) < len(INPUT["data"]) / 4  # zlib before Fernet
    assert sealed.open(blob) == INPUT
    key_file = tmp_path / "delivery-input.key"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert SealedInputs(load_keys((), tmp_path)).open(blob) == INPUT  # same key next start


def test_configured_keys_rotate_and_a_foreign_key_cannot_open(tmp_path) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    blob = SealedInputs(load_keys([old], tmp_path)).seal(INPUT)
    rotated = SealedInputs(load_keys([new, old], tmp_path))
    assert rotated.open(blob) == INPUT
    with pytest.raises(ValueError, match="no configured key"):
        SealedInputs(load_keys([new], tmp_path)).open(blob)
