"""Configuration from KFP_BOT_* variables: a missing or contradictory setting stops start-up."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import BusKind, ConfigurationError, load_command_line_settings, load_settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("KFP_BOT_"):
            monkeypatch.delenv(name)


def test_defaults_are_the_embedded_bot(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KFP_BOT_DATA_DIR", str(tmp_path))
    settings = load_settings()
    assert settings.bus is BusKind.INPROCESS
    assert settings.github_mode is None
    assert settings.resolved_database_url == f"sqlite:///{tmp_path / 'kfp-bot.db'}"


def test_lists_and_urls_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KFP_BOT_ALLOWED_USERS", "alice, @bob ,")
    monkeypatch.setenv("KFP_BOT_GITHUB_API_URL", "https://ghe.example.com/api/v3/")
    monkeypatch.setenv("KFP_BOT_GITHUB_TOKEN", "t0ken")
    settings = load_settings()
    assert settings.allowed_users == ("alice", "bob")
    assert settings.github_api_url == "https://ghe.example.com/api/v3"
    assert settings.github_mode == "token"


@pytest.mark.parametrize("env,message", [
    ({"KFP_BOT_GITHUB_APP_ID": "12"}, "KFP_BOT_GITHUB_APP_ID is set but neither KFP_BOT_GITHUB_PRIVATE_KEY"),
    ({"KFP_BOT_GITHUB_PRIVATE_KEY": "pem"}, "KFP_BOT_GITHUB_APP_ID is not"),
    ({"KFP_BOT_GITHUB_APP_ID": "12", "KFP_BOT_GITHUB_PRIVATE_KEY": "pem", "KFP_BOT_GITHUB_TOKEN": "t"},
     "not both"),
    ({"KFP_BOT_WORKERS": "many"}, "KFP_BOT_WORKERS"),
    ({"KFP_BOT_BUS": "kafka"}, "KFP_BOT_BUS"),
    ({"KFP_BOT_PUBLIC_URL": "kfp-bot.example.com"}, "KFP_BOT_PUBLIC_URL.*starting with https://"),
    ({"KFP_BOT_RUN_FILES_KEEP_DAYS": "-1"}, "KFP_BOT_RUN_FILES_KEEP_DAYS"),
])
def test_contradictory_or_invalid_settings_name_the_variable(monkeypatch: pytest.MonkeyPatch, env: dict,
                                                             message: str) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigurationError, match=message):
        load_settings()


def test_serving_needs_the_webhook_secret() -> None:
    with pytest.raises(ConfigurationError, match="KFP_BOT_WEBHOOK_SECRET is not set"):
        load_settings().require_service_settings()


def test_an_unreadable_private_key_file_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("KFP_BOT_WEBHOOK_SECRET", "s")
    monkeypatch.setenv("KFP_BOT_GITHUB_APP_ID", "12")
    monkeypatch.setenv("KFP_BOT_GITHUB_PRIVATE_KEY_FILE", str(tmp_path / "missing.pem"))
    with pytest.raises(ConfigurationError, match="KFP_BOT_GITHUB_PRIVATE_KEY_FILE: cannot read"):
        load_settings().require_service_settings()


def test_secrets_never_show_in_the_settings_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KFP_BOT_WEBHOOK_SECRET", "super-secret-value")
    monkeypatch.setenv("KFP_BOT_GITHUB_TOKEN", "ghp_secret_token")
    text = repr(load_settings())
    assert "super-secret-value" not in text and "ghp_secret_token" not in text


def test_serve_refuses_to_start_without_a_secret_and_says_why(tmp_path) -> None:
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("KFP_BOT_")}
    env["KFP_BOT_DATA_DIR"] = str(tmp_path)
    result = subprocess.run([sys.executable, "-m", "bot", "serve", "--port", "0"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "KFP_BOT_WEBHOOK_SECRET is not set" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_compile_memory_cap_at_or_above_the_instance_memory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as raised:
        load_settings(data_dir=tmp_path, instance_memory_mb=768, compile_max_memory_mb=4096)
    assert "KFP_BOT_COMPILE_MAX_MEMORY_MB (4096) must be below KFP_BOT_INSTANCE_MEMORY_MB (768)" in str(raised.value)

    assert load_settings(data_dir=tmp_path, instance_memory_mb=3072, compile_max_memory_mb=1024).instance_memory_mb


def test_the_cloud_build_builder_needs_its_bucket(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="KFP_BOT_CLOUDBUILD_BUCKET"):
        load_settings(data_dir=tmp_path, builder="cloudbuild", gcp_project="p")


def test_unsigned_pushes_are_accepted_only_from_a_local_emulator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PUBSUB_EMULATOR_HOST", raising=False)
    for key, value in {"KFP_BOT_BUS": "pubsub", "KFP_BOT_GCP_PROJECT": "p", "KFP_BOT_PUBSUB_VERIFY_TOKEN": "0"}.items():
        monkeypatch.setenv(key, value)

    with pytest.raises(ConfigurationError, match="KFP_BOT_PUBSUB_VERIFY_TOKEN=0 .* is for a local Pub/Sub emulator"):
        load_settings()
    with pytest.raises(ConfigurationError, match="is for a local Pub/Sub emulator"):
        load_settings(pubsub_endpoint="pubsub.googleapis.com:443")
    assert not load_settings(pubsub_endpoint="127.0.0.1:8085").pubsub_verify_token
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", "localhost:8085")
    assert not load_settings().pubsub_verify_token
    assert load_settings(pubsub_verify_token=True, pubsub_push_audience="https://bot.example",
                         pubsub_push_service_account="push@p.iam.gserviceaccount.com").pubsub_verify_token


@pytest.mark.parametrize("variables", [
    {},
    {"KFP_BOT_DATA_DIR": "/srv/kfp-bot"},
    {"KFP_BOT_DATA_DIR": "relative/data"},
    {"KFP_BOT_DATA_DIR": "~/not-expanded"},
    {"KFP_BOT_DATA_DIR": ""},
    {"kfp_bot_data_dir": "/lower/case"},
    {"Kfp_Bot_Data_Dir": "/mixed/case", "KFP_BOT_WORKERS": "3"},
])
def test_the_command_lines_data_folder_is_the_one_the_full_settings_read(
        monkeypatch: pytest.MonkeyPatch, variables: dict[str, str]) -> None:
    # `kfp-bot plan` reads its one setting without pydantic-settings: the same variable, the same value.
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    narrow = load_command_line_settings()
    assert narrow.data_dir == load_settings().data_dir
    assert narrow.cache_dir == load_settings().cache_dir
