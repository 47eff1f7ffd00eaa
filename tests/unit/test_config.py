"""regwatch.load_config: typed config from YAML, every problem reported at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from regwatch import load_config
from regwatch.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "regwatch.yaml"
    p.write_text(text)
    return p


def test_no_config_and_empty_config_are_defaults(tmp_path: Path) -> None:
    a = load_config(None)
    b = load_config(write(tmp_path, ""))
    assert a == b
    assert a.store.kind == "embedded" and a.formats == ()


def test_full_config(tmp_path: Path) -> None:
    cfg = load_config(
        write(
            tmp_path,
            """
store:
  kind: embedded
  path: /var/lib/regwatch
harbor:
  host_tz: "+02:00"
formats:
  - name: mylb
    pattern: '%{IP:ip} %{WORD:verb} %{NOTSPACE:path} %{INT:code}'
    fields: {client_ip: ip, method: verb, uri: path, status: code}
    time_format: "%d/%b/%Y:%H:%M:%S %z"
    component: proxy
""",
        )
    )
    assert cfg.store.path == "/var/lib/regwatch"
    assert cfg.harbor_host_tz == "+02:00"
    (f,) = cfg.formats
    assert f.name == "mylb" and f.component == "proxy" and dict(f.fields)["status"] == "code"


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        """
colour: blue
store:
  kind: s3
  verify_tls: "yes"
harbor:
  host_tz: Mars/Olympus
formats:
  - name: broken
    pattern: '%{NO_SUCH_THING:x}'
  - pattern: 'no name'
""",
    )
    with pytest.raises(ConfigError) as ei:
        load_config(p)
    msg = str(ei.value)
    for needle in ("colour", "s3", "verify_tls", "Mars/Olympus", "NO_SUCH_THING", "formats[1]", str(p)):
        assert needle in msg, needle
    assert ei.value.exit_code == 2


@pytest.mark.parametrize("key", ["password", "api_key", "token"])
def test_secrets_in_plain_text_are_refused(tmp_path: Path, key: str) -> None:
    with pytest.raises(ConfigError) as ei:
        load_config(write(tmp_path, f"store:\n  kind: elasticsearch\n  url: http://es:9200\n  {key}: hunter2\n"))
    assert key in str(ei.value)
    assert "hunter2" not in str(ei.value)


def test_elasticsearch_needs_a_url(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("REGWATCH_ES_URL", raising=False)
    with pytest.raises(ConfigError, match="url"):
        load_config(write(tmp_path, "store:\n  kind: elasticsearch\n"))
    monkeypatch.setenv("REGWATCH_ES_URL", "http://es:9200")
    assert load_config(write(tmp_path, "store:\n  kind: elasticsearch\n")).store.kind == "elasticsearch"


@pytest.mark.parametrize(
    ("fmt", "needle"),
    [
        ("    pattern: '%{INT:foo}'\n    fields: {status: bar}\n", "bar"),
        ("    pattern: '%{INT:foo}'\n    fields: {not_a_field: foo}\n", "not_a_field"),
        ("    pattern: '(unclosed'\n", "(unclosed"),
    ],
)
def test_bad_formats(tmp_path: Path, fmt: str, needle: str) -> None:
    with pytest.raises(ConfigError) as ei:
        load_config(write(tmp_path, "formats:\n  - name: x\n" + fmt))
    assert needle in str(ei.value)


@pytest.mark.parametrize("text", ["- a\n- b\n", "42\n"])
def test_top_level_must_be_a_mapping(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError, match="mapping"):
        load_config(write(tmp_path, text))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as ei:
        load_config(tmp_path / "nope.yaml")
    assert "nope.yaml" in str(ei.value)
