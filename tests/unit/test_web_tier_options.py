"""The web tier's settings refuse what would only fail later, with one clear line."""

import pytest

from pms_backend import server


def test_an_http_server_missing_from_the_venv_is_refused_at_once(tmp_path, monkeypatch):
    monkeypatch.setattr(server, "VENV_BIN", tmp_path)  # a venv without granian
    with pytest.raises(SystemExit, match="granian is not installed"):
        server.options_from_env({"PMS_HTTP_SERVER": "granian"})


def test_bad_numbers_and_addresses_are_refused():
    for env in ({"PORT": "0"}, {"WEB_CONCURRENCY": "two"}, {"FORWARDED_ALLOW_IPS": "proxy"}):
        with pytest.raises(SystemExit, match="error: "):
            server.options_from_env(env)


def test_trusted_proxies_become_nginx_networks():
    options = server.options_from_env({"FORWARDED_ALLOW_IPS": "10.0.0.1, 192.168.0.0/16"})
    assert options["trusted_proxies"] == ["10.0.0.1/32", "192.168.0.0/16"]
