"""`[delivery]` settings: a broken configuration stops the start with the setting's name."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.delivery.providers.base import ProviderContext, build
from server.delivery.providers.smtp import SmtpProvider
from server.delivery.stage import DeliverySettings


def test_channels_name_configured_providers_and_print_is_built_in() -> None:
    settings = DeliverySettings.from_dict({
        "channels": {"email": "relay"},
        "providers": {"relay": {"type": "smtp", "concurrency": 8},
                      "nordkort-relay": {"type": "smtp"}},
        "tenants": {"nordkort": {"channels": {"email": "nordkort-relay"}}},
    })
    assert settings.provider_for("other", "email") == "relay"
    assert settings.provider_for("other", "print") == "print"
    assert settings.provider_for("other", "sms") is None
    assert settings.provider_for("nordkort", "email") == "nordkort-relay"
    with pytest.raises(ValueError, match=r"delivery.channels.sms: no provider 'smpp'"):
        DeliverySettings.from_dict({"channels": {"sms": "smpp"}})
    with pytest.raises(ValueError, match=r"delivery.tenants.n.channels.email: no provider 'x'"):
        DeliverySettings.from_dict({"tenants": {"n": {"channels": {"email": "x"}}}})
    with pytest.raises(ValueError, match=r"delivery.providers.relay"):
        DeliverySettings.from_dict({"providers": {"relay": {"concurrency": 0}}})


def test_an_unknown_provider_type_or_a_missing_dkim_key_is_refused(tmp_path: Path) -> None:
    context = ProviderContext(tmp_path)
    with pytest.raises(ValueError, match="unknown 'carrier-pigeon'"):
        build("bird", {"type": "carrier-pigeon"}, context)
    missing = ProviderContext(tmp_path, {"nordkort": {"dkim": {
        "selector": "k1", "key_file": str(tmp_path / "nope.pem")}}})
    with pytest.raises(ValueError, match="delivery.tenants.nordkort.dkim"):
        SmtpProvider("relay", {"type": "smtp"}, missing)
