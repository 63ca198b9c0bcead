from pathlib import Path

import pytest

from server.config import ConfigError, load_settings


def test_defaults_are_embedded():
    settings = load_settings(environ={})
    assert settings.listen == "127.0.0.1:50051"
    assert settings.s3.embedded
    assert settings.resolved_index_url.startswith("sqlite:///")
    assert settings.resolved_index_url.endswith(".kanal/index.db")


def test_file_then_environment_then_flags(tmp_path: Path):
    config = tmp_path / "kanal.toml"
    config.write_text(
        '[server]\nlisten = "0.0.0.0:6000"\nstate_dir = "/var/lib/kanal"\n'
        '[s3]\nendpoint = "http://minio:9000"\nbucket = "docs"\n'
        'access_key = "ak"\nsecret_key = "sk"\n'
        '[index]\nurl = "postgresql+psycopg://kanal@db/kanal"\n'
    )
    settings = load_settings(config, environ={"KANAL_S3_BUCKET": "from-env",
                                              "KANAL_LISTEN": "127.0.0.1:7000"})
    assert settings.s3.endpoint == "http://minio:9000" and not settings.s3.embedded
    assert settings.s3.bucket == "from-env"
    assert settings.listen == "127.0.0.1:7000"
    assert settings.state_dir == Path("/var/lib/kanal")
    assert settings.resolved_index_url == "postgresql+psycopg://kanal@db/kanal"
    flagged = load_settings(config, environ={}, listen="127.0.0.1:8000", state_dir=None)
    assert flagged.listen == "127.0.0.1:8000"


@pytest.mark.parametrize(("env", "message"), [
    ({"KANAL_LISTEN": "nonsense"}, "HOST:PORT"),
    ({"KANAL_LOG_FORMAT": "xml"}, "log_format"),
    ({"KANAL_S3_ENDPOINT": "http://s3:9000"}, "access_key"),
])
def test_bad_settings_say_which(env, message):
    with pytest.raises(ConfigError, match=message):
        load_settings(environ=env)


def test_unreadable_config_file(tmp_path: Path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[server\n")
    with pytest.raises(ConfigError, match="bad.toml"):
        load_settings(bad, environ={})


def test_reflection_is_on_for_development_and_off_once_keys_are_configured(tmp_path: Path):
    assert load_settings(environ={}).reflection_enabled  # no keys: the development setup
    config = tmp_path / "kanal.toml"
    config.write_text('[[auth.keys]]\nid = "core"\nsha256 = "' + "a" * 64 + '"\n'
                      'tenant = "bank"\nrole = "producer"\n')
    assert not load_settings(config, environ={}).reflection_enabled
    assert load_settings(config, environ={"KANAL_REFLECTION": "true"}).reflection_enabled
    config.write_text(config.read_text() + '[server]\nreflection = true\n')
    assert load_settings(config, environ={}).reflection_enabled
    assert not load_settings(config, environ={"KANAL_REFLECTION": "0"}).reflection_enabled
    with pytest.raises(ConfigError, match="KANAL_REFLECTION must be true or false"):
        load_settings(environ={"KANAL_REFLECTION": "maybe"})


def test_metrics_listen(tmp_path: Path):
    assert load_settings(environ={}).metrics_listen is None  # default, with fallback
    assert load_settings(environ={"KANAL_METRICS_LISTEN": "off"}).metrics_listen == "off"
    config = tmp_path / "kanal.toml"
    config.write_text('[server]\nmetrics_listen = "0.0.0.0:9100"\n')
    assert load_settings(config, environ={}).metrics_listen == "0.0.0.0:9100"
    with pytest.raises(ConfigError, match="metrics_listen"):
        load_settings(environ={"KANAL_METRICS_LISTEN": "9100"})
