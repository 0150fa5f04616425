"""base.addresses: a server URL or a Kafka address list is checked before anything connects."""

from __future__ import annotations

import pytest

from base.addresses import check_host_ports, check_http_url


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8123", "https://u:p@ch.example:8443/db", "http://[::1]:8123"]
)
def test_good_server_urls_pass(url: str) -> None:
    assert check_http_url(url) == url


@pytest.mark.parametrize(
    "url",
    ["notaurl", "http://h:99999", "http://h:0", "http://[::1:8123", "ftp://h:21", "http://:80"],
)
def test_bad_server_urls_are_one_line_without_the_url(url: str) -> None:
    with pytest.raises(ValueError) as raised:
        check_http_url(url.replace("//", "//user:s3cret@", 1) if "//" in url else url)
    assert "s3cret" not in str(raised.value) and "\n" not in str(raised.value)


@pytest.mark.parametrize("value", ["127.0.0.1:9092", "a:1,b:65535", "[::1]:9092"])
def test_good_kafka_addresses_pass(value: str) -> None:
    assert check_host_ports(value) == value


@pytest.mark.parametrize(
    "value", ["127.0.0.1:99999", "h:0", "localhost", ":9092", "[::1:9092", "a:1,b:x"]
)
def test_bad_kafka_addresses_are_refused(value: str) -> None:
    with pytest.raises(ValueError):
        check_host_ports(value)
