"""infra/kamailio/kamailio.cfg parses and its modules load (`kamailio -c`), and the launcher writes
a db_text subscriber table Kamailio can read."""

from __future__ import annotations

from pathlib import Path

import pytest

from callgauge_platform.kamailio import check_config, default_config, write_subscribers

pytestmark = pytest.mark.kamailio


def test_the_config_is_valid() -> None:
    assert default_config().is_file(), default_config()
    result = check_config()
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "config file ok" in result.stdout + result.stderr


def test_a_broken_config_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.cfg"
    bad.write_text(default_config().read_text().replace("sl_send_reply(\"484\"", "no_such_function(\"484\"", 1))
    assert check_config(bad).returncode != 0


def test_subscriber_table_escapes_colons(tmp_path: Path) -> None:
    write_subscribers(tmp_path, {"alice": "pa:ss\\word", "bob": "x"}, "127.0.0.1")
    lines = (tmp_path / "subscriber").read_text().splitlines()
    assert lines[0].startswith("id(int,auto) username(str)")
    assert lines[1] == "1:alice:127.0.0.1:pa\\:ss\\\\word::"
    assert "subscriber:7" in (tmp_path / "version").read_text()
    with pytest.raises(ValueError):
        write_subscribers(tmp_path, {"eve": "two\nlines"}, "127.0.0.1")


@pytest.mark.kamailio_tls
def test_the_config_with_tls_is_valid(tmp_path: Path) -> None:
    from tests.tls_certs import make_ca

    server = make_ca(tmp_path).issue(tmp_path, "127.0.0.1")
    result = check_config(tls=(server.cert_path, server.key_path))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
