"""No password in any output line, study or trial attr, dashboard response, artifact or report.

The machine's PostgreSQL trusts local connections, so a URL may carry any password and still
connect: each way a password can be given is used for a real study, and every place the
service writes or serves is then searched for it.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest
import sqlalchemy

from search.config import PROJECT_CONFIGS
from search.storage import mask, resolve_url, without_password
from tests.conftest import free_port, run_cli, start_dashboard, stop

SECRETS = ("S3cr@tPW", "p@ss:w/rd", "Qu3ryPW", "EnvPW", "CfgPW")


def _with_password(pg_url: str, password: str, how: str) -> str:
    """``pg_url`` (trust auth, no password) with ``password`` put where ``how`` says."""
    url = sqlalchemy.engine.make_url(pg_url)
    user, rest = url.username, f"{url.host}:{url.port}/{url.database}"
    if how == "userinfo":  # unencoded: '@' and ':' inside the password, as users write it
        return f"postgresql://{user}:{password}@{rest}"
    if how == "escaped":
        escaped = password.replace("@", "%40").replace(":", "%3A").replace("/", "%2F")
        return f"postgresql://{user}:{escaped}@{rest}"
    return f"postgresql://{user}@{rest}?password={password}"


def test_mask_and_removal_cover_every_form() -> None:
    for url in (
        "postgresql://u:S3cr@tPW@host/db",
        "postgresql://u:p%40ss%3Aw@host/db",
        "postgresql://u@host/db?sslmode=require&password=Qu3ryPW",
        "postgresql://u:pw@host/db?password=Qu3ryPW",
    ):
        for shown in (mask(url), without_password(url)):
            for secret in ("S3cr", "tPW", "p%40ss", "Qu3ryPW", ":pw@"):
                assert secret not in shown, (url, shown)
    assert resolve_url("postgresql://u:a@b@h/db").endswith("a%40b@h/db")  # parses as meant


def _everything_stored(url: str) -> str:
    """Every row of every table of the database (studies, trials, attrs, the dashboard's
    note), as text."""
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.NullPool)
    parts = []
    with engine.connect() as conn:
        for table in sqlalchemy.inspect(conn).get_table_names():
            rows = conn.execute(sqlalchemy.text(f'SELECT * FROM "{table}"')).fetchall()
            parts.append(f"{table}: {rows!r}")
    engine.dispose()
    return "\n".join(parts)


def _files_text(folder: Path) -> str:
    return "\n".join(
        p.read_bytes().decode("latin-1") for p in sorted(folder.rglob("*")) if p.is_file()
    )


@pytest.mark.slow
@pytest.mark.parametrize("how", ["userinfo", "escaped", "query", "environment", "config"])
def test_no_password_anywhere(how: str, pg_url: str, tmp_path: Path) -> None:
    secret = {"userinfo": "S3cr@tPW", "escaped": "p@ss:w/rd", "query": "Qu3ryPW"}.get(
        how, "EnvPW" if how == "environment" else "CfgPW"
    )
    plain = sqlalchemy.engine.make_url(pg_url)
    config = (PROJECT_CONFIGS / "smoke.yaml").read_text()
    env: dict[str, str] = {}
    storage: list[str] = []
    if how == "environment":
        env["PGPASSWORD"] = secret
        storage = ["--storage", pg_url]
    elif how == "config":
        url = f"postgresql://{plain.username}:{secret}@{plain.host}:{plain.port}/{plain.database}"
        config += f"storage: {url}\n"
    else:
        storage = ["--storage", _with_password(pg_url, secret, how)]
    (tmp_path / "smoke.yaml").write_text(config)
    outputs = []
    for args in (
        ["run", "--study", "smoke.yaml", "--dry-run", "0", *storage],
        ["best", "--study", "smoke.yaml", "--json", *storage],
        ["export", "--study", "smoke.yaml", "-o", "best.yaml", *storage],
        ["report", "--study", "smoke.yaml", "-o", "report.html", *storage],
        # A bad study name on the same storage: the error names the storage, masked.
        ["best", "--study", "nosuch", *storage],
    ):
        proc = run_cli(*args, cwd=tmp_path, env=env)
        outputs.append(proc.stdout + proc.stderr)
    text = "\n".join(outputs)
    assert "(created)" in text and "wrote report.html" in text
    forms = {secret, secret.replace("@", "%40").replace(":", "%3A").replace("/", "%2F")}
    stored = _everything_stored(pg_url)
    files = _files_text(tmp_path / "artifacts") + (tmp_path / "report.html").read_text()
    files += (tmp_path / "best.yaml").read_text()
    for form in forms:
        assert form not in text, "printed"
        assert form not in stored, "stored in the study"
        assert form not in files, "in an artifact, the export or the report"
    # Nor an absolute path of this machine (the config file's folder).
    assert str(tmp_path) not in stored and str(tmp_path) not in files
    # What optuna-dashboard serves to every viewer.
    port = free_port()
    dashboard = start_dashboard(pg_url, tmp_path, port)
    try:
        studies = urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=30)
        body = studies.read().decode()
        ids = [s["study_id"] for s in json.loads(body)["study_summaries"]]
        for study_id in ids:
            detail = urllib.request.urlopen(
                f"http://127.0.0.1:{port}/api/studies/{study_id}?after=0", timeout=30
            )
            body += detail.read().decode()
        served = body + (tmp_path / "dashboard.log").read_text()
    finally:
        stop(dashboard)
    for form in forms:
        assert form not in served, "served by the dashboard"
