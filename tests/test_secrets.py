"""Secrets: found by format and by surroundings (not only by variable name), and absent from every
byte a code run writes -- kept shards, rejected rows, logs, stats, and what ``head``/``show`` print."""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from datatrove.data import Document

from r1data.sources.secrets import random_looking, redact, wordlike
from r1data.stages.base import reject
from r1data.stages.code import SecretRedaction, SecretRedactionConfig

ROOT = Path(__file__).resolve().parents[1]

# synthetic values in each issuer's documented format (none is a live credential)
AWS_ID = "AKIA2E0A8F3B244C9986"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
GITHUB = "ghp_R8mZq2LwX5vT9kN3pB7cY1dF6hJ4sA0eG2uQ"
GITHUB_PAT = "github_pat_11ABCDEFG0aBcDeFgHiJkL_mNoPqRsTuVwXyZ0123456789abcdefghijklmnopqrstuvwxyzABCDEF"
SLACK = "xoxb-2048217361-4093825610-Xq7Lm2Pz9Rk4Tv8Wn3Ys6Bd"
SLACK_HOOK = "https://hooks.slack.com/services/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"
STRIPE = "sk_live_51Hq8ZpLk2Xv9Tn4Wm7Rc3Yb"
STRIPE_RK = "rk_live_51Hq8ZpLk2Xv9Tn4Wm7Rc3Yc"
GOOGLE_KEY = "AIzaSyB3x9Qm2Lp7Kv4Tn8Wr1Ys6Zd0Fh5Jc2Ge"
GOOGLE_OAUTH = "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"
SENDGRID = "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"
AZURE = "Qm9ndXNBenVyZVN0b3JhZ2VLZXlGb3JUZXN0cy0wMTIzNDU2Nzg5YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eQ=="
PEM_BODY = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7q2Lm"
PEM = f"-----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}\nQm9ndXNLZXlNYXRlcmlhbEZvclRlc3Rz\n-----END RSA PRIVATE KEY-----"
GCP_KEY_BODY = "MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQDq9Xz"
GCP_KEY_ID = "3f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a"
JWT = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1c2VyLTQyIiwiaWF0IjoxNzAwMDAwMDAwfQ.Qm9ndXNTaWduYXR1cmVGb3JUZXN0czEyMzQ1Njc4"
NEAR_CLIENT_ID = "Zq8xK2mN4pR7sT1vW3yA5bC9dE6fG0hJ"
EMAIL = "ops.lead@acme-corp.io"
PASSWORD = "s3cr3t-v@lue-42"

PLANTED = [AWS_ID, AWS_SECRET, GITHUB, GITHUB_PAT, SLACK, SLACK_HOOK, STRIPE, STRIPE_RK, GOOGLE_KEY, GOOGLE_OAUTH, SENDGRID, AZURE, PEM_BODY,
           GCP_KEY_BODY, GCP_KEY_ID, JWT, NEAR_CLIENT_ID, EMAIL, PASSWORD]


# --------------------------------------------------------------------------------------------
# formats, with and without their variable names

FORMATS = [
    (GITHUB, "github_token", "GITHUB_TOKEN"),
    (GITHUB_PAT, "github_token", "gh_pat"),
    (SLACK, "slack_token", "SLACK_BOT_TOKEN"),
    (SLACK_HOOK, "slack_token", "SLACK_WEBHOOK_URL"),
    (STRIPE, "stripe_key", "STRIPE_SECRET_KEY"),
    (STRIPE_RK, "stripe_key", "stripe_restricted"),
    (GOOGLE_KEY, "google_api_key", "GOOGLE_API_KEY"),
    (GOOGLE_OAUTH, "google_oauth_client_secret", "GOOGLE_CLIENT_SECRET"),
    (SENDGRID, "sendgrid_key", "SENDGRID_API_KEY"),
    (f"DefaultEndpointsProtocol=https;AccountName=acme;AccountKey={AZURE};EndpointSuffix=core.windows.net", "azure_storage_key", "AZURE_STORAGE"),
    (PEM, "private_key", "PRIVATE_KEY"),
    (JWT, "jwt", "session_jwt"),
]


@pytest.mark.parametrize("value, kind, name", FORMATS, ids=[f[1] + "-" + f[2] for f in FORMATS])
@pytest.mark.parametrize("named", [True, False], ids=["named", "unnamed"])
def test_each_format_is_found_with_or_without_its_name(value, kind, name, named):
    text = f'{name} = """{value}"""\n' if named else f"connect(\n    '''{value}''',\n    retries=3,\n)\n"
    out, counts = redact(text)
    assert value not in out and value.split("\n")[0] not in out, out
    assert kind in counts, counts


def test_aws_secret_next_to_its_key_id_without_names():
    # issue 21: `return 'AKIA…', 'wJalr…'` kept the secret in clear
    out, counts = redact(f"def creds():\n    return '{AWS_ID}', '{AWS_SECRET}'\n")
    assert out == "def creds():\n    return '<AWS_ACCESS_KEY_ID>', '<AWS_SECRET_ACCESS_KEY>'\n"
    assert counts == {"aws_access_key_id": 1, "aws_secret_access_key": 1}
    # in an env file and a JSON credentials file, key id before or after the secret
    for text in (f"AWS_ACCESS_KEY_ID={AWS_ID}\nAWS_SECRET_ACCESS_KEY={AWS_SECRET}\n",
                 f'{{"SecretAccessKey": "{AWS_SECRET}", "AccessKeyId": "{AWS_ID}"}}',
                 f"[default]\nkey = {AWS_ID}\nsecret = {AWS_SECRET}\n"):
        out, counts = redact(text)
        assert AWS_ID not in out and AWS_SECRET not in out, out


def test_gcp_service_account_file():
    sa = json.dumps({
        "type": "service_account", "project_id": "demo-project", "private_key_id": GCP_KEY_ID,
        "private_key": f"-----BEGIN PRIVATE KEY-----\n{GCP_KEY_BODY}\nQm9ndXM=\n-----END PRIVATE KEY-----\n",
        "client_email": "svc@demo-project.iam.gserviceaccount.com", "client_id": "104857600000000000001",
    }, indent=2)
    out, counts = redact(sa)
    assert GCP_KEY_ID not in out and GCP_KEY_BODY not in out and counts["private_key"] == 1
    assert '"client_id": "104857600000000000001"' in out  # a numeric id is not a secret


def test_high_entropy_string_next_to_a_key_id():
    for text in (f'cfg = {{"client_id": "my-app", "token": "{NEAR_CLIENT_ID}"}}',
                 f'keyId = "k-1"\nvalue = "{NEAR_CLIENT_ID}"',
                 f"session = connect('{AWS_ID}', '{NEAR_CLIENT_ID}')"):
        out, counts = redact(text)
        assert NEAR_CLIENT_ID not in out and "high_entropy_string" in counts, out
    # alone, the same string is left alone: most long random-looking literals are not secrets
    assert redact(f'salt = "{NEAR_CLIENT_ID}"\n') == (f'salt = "{NEAR_CLIENT_ID}"\n', {})


@pytest.mark.parametrize(
    "text",
    [
        # git SHAs and lockfile hashes, even next to a key id (hexadecimal is never taken for a secret by content)
        f"commit = 'da39a3ee5e6b4b0d3255bfef95601890afd80709'  # {AWS_ID[:4]}",
        "key_id = 7\nsha = 'da39a3ee5e6b4b0d3255bfef95601890afd80709'\n",
        'files = [{file = "x.whl", hash = "sha256:3b1c2a4f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b"}]\n',
        '"integrity": "sha512-Yx2wT8m3LqN1cZ5vB7kJ9hR0dF4sG6aP2eW8uI1oK3lM5nQ7rT9yU1xV3zA5bC7dE9fG1hJ3kL5mN7pQ9rS1tU=="\n',
        # identifiers and paths next to key ids
        'client_id = "my_client"\nself.handlerClassName = "RequestHandlerFactory"\n',
        "app_id = 'com.example.app'\nurl = 'https://example.com/api/v2/resources/list'\n",
        "keyid = 1\nLONG = 'ThisIsAnIdentifierName'\n",
        # words joined by separators, dotted names (met near key ids in boto3 and botocore)
        "KeyId = k\nh = 'X-Amz-Content-SHA256'\nev = 'before-call.signin.CreateOAuth2Token'\ncls = 'creating-resource-class.ec2.Instance'\n",
        # the AWS documentation's key id pattern without a secret beside it
        "prefix = 'AKIA'\nmsg = 'an access key id starts with AKIA'\n",
    ],
)
def test_lookalikes_are_left_alone(text):
    assert redact(text) == (text, {})


def test_random_looking():
    assert random_looking(AWS_SECRET) and random_looking(NEAR_CLIENT_ID)
    assert not random_looking("da39a3ee5e6b4b0d3255bfef95601890afd80709")  # hexadecimal
    assert not random_looking("ThisIsAnIdentifierName")  # no digit
    assert not random_looking("aaaaaaaaaaaaaaaaaaaaAAAAAAAAAAA1")  # low entropy
    assert wordlike("X-Amz-Content-SHA256") and not wordlike(NEAR_CLIENT_ID)


def test_by_content_off_is_the_released_behaviour():
    text = f"return '{AWS_ID}', '{AWS_SECRET}'\ncfg = {{'client_id': 'x', 'v': '{NEAR_CLIENT_ID}'}}\n"
    out, counts = redact(text, by_content=False)
    assert AWS_SECRET in out and NEAR_CLIENT_ID in out and counts == {"aws_access_key_id": 1}


# --------------------------------------------------------------------------------------------
# the stage redacts documents rejected before it (through the sink's scrub)


def test_scrub_redacts_a_rejected_document_once():
    stage = SecretRedaction(SecretRedactionConfig())
    doc = Document(text=f"x = '{GITHUB}'\n", id="a", metadata={})
    reject(doc, "code_reader", "unknown_language")
    stage.scrub(doc)
    assert GITHUB not in doc.text and doc.metadata["redactions"] == {"github_token": 1}
    stage.scrub(doc)  # a second pass neither changes nor recounts it
    assert doc.metadata["redactions"] == {"github_token": 1}
    kept = Document(text=f"x = '{GITHUB}'\n", id="b", metadata={})
    assert stage.tag(kept) is None
    stage.scrub(kept)
    assert kept.metadata["redactions"] == {"github_token": 1}
    off = SecretRedaction(SecretRedactionConfig(redact_rejected=False))
    doc = Document(text=f"x = '{GITHUB}'\n", id="c", metadata={})
    off.scrub(doc)
    assert GITHUB in doc.text


# --------------------------------------------------------------------------------------------
# end to end: no planted secret in any byte the run writes or the CLI prints


def r1data(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "cli"), env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-m", "r1data_cli.app", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def leaky_files(tag: str) -> dict[str, str]:
    """Kept and rejected files, each carrying every planted secret, with and without names."""
    unnamed = (
        f"def creds():\n    return '{AWS_ID}', '{AWS_SECRET}'\n\n\n"
        f"def endpoints():\n    return [\n        '{GITHUB}',\n        '{GITHUB_PAT}',\n        '{SLACK}',\n        '{SLACK_HOOK}',\n"
        f"        '{STRIPE}',\n        '{STRIPE_RK}',\n        '{GOOGLE_KEY}',\n        '{GOOGLE_OAUTH}',\n        '{JWT}',\n        '{SENDGRID}',\n"
        f"        'DefaultEndpointsProtocol=https;AccountName=acme;AccountKey={AZURE};EndpointSuffix=core.windows.net',\n    ]\n\n\n"
        f'CONFIG = {{"client_id": "svc", "value": "{NEAR_CLIENT_ID}"}}\nOWNER = "{EMAIL}"\ndb_password = "{PASSWORD}"\n'
        f'KEY = """{PEM}"""\n'
    )
    named = "".join(f'{name} = """{value}"""\n' for value, _, name in FORMATS) + (
        f'AWS_ACCESS_KEY_ID = "{AWS_ID}"\nAWS_SECRET_ACCESS_KEY = "{AWS_SECRET}"\nGOOGLE_CLIENT_ID = "svc"\nGOOGLE_CLIENT_TOKEN = "{NEAR_CLIENT_ID}"\n'
    )
    sa = json.dumps({"type": "service_account", "private_key_id": GCP_KEY_ID,
                     "private_key": f"-----BEGIN PRIVATE KEY-----\n{GCP_KEY_BODY}\n-----END PRIVATE KEY-----\n"})
    env = (f"AWS_ACCESS_KEY_ID={AWS_ID}\nAWS_SECRET_ACCESS_KEY={AWS_SECRET}\nGITHUB_TOKEN={GITHUB}\nSLACK_WEBHOOK={SLACK_HOOK}\n"
           f"STRIPE={STRIPE}\nGOOGLE_KEY={GOOGLE_KEY}\nJWT={JWT}\nADMIN={EMAIL}\nDB_PASSWORD='{PASSWORD}'\n{sa}\n{PEM}\n")
    return {
        f"{tag}/ok.py": '"""Kept: ordinary code."""\n\n\n' + unnamed + named,  # kept, redacted by the stage
        f"{tag}/config.env": env,  # rejected by the reader: unknown_language
        f"{tag}/wide.py": unnamed + named + "TABLE = [" + ", ".join(str(i) for i in range(400)) + "]\n",  # max_line_length
        f"{tag}/sa.json": json.dumps(json.loads(sa), indent=2),  # kept JSON data file
        f"{tag}/gen.py": "# Code generated by protoc. DO NOT EDIT.\n" + named + unnamed,  # rejected by the reader: generated
    }


def grep_secrets(blob: bytes | str, where: str) -> None:
    data = blob if isinstance(blob, str) else blob.decode("utf-8", "replace")
    for s in PLANTED:
        assert s not in data, f"{s[:12]}... in {where}"
        # JSON writes the PEM's newlines as \n; check the first line of multi-line values too
        assert json.dumps(s)[1:-1] not in data, f"{s[:12]}... (JSON-escaped) in {where}"


def test_no_planted_secret_anywhere_in_a_code_run(tmp_path):
    src = tmp_path / "src"
    files = leaky_files("dir")
    for rel, text in files.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_text(text)
    tar = tmp_path / "release.tar.gz"
    with tarfile.open(tar, "w:gz") as tf:
        for rel, text in leaky_files("tarred").items():
            data = text.encode()
            ti = tarfile.TarInfo(rel)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    zpath = tmp_path / "release.zip"
    with zipfile.ZipFile(zpath, "w", zipfile.ZIP_DEFLATED) as zf:
        for rel, text in leaky_files("zipped").items():
            zf.writestr(rel, text)

    out = tmp_path / "out"
    proc = r1data("run", "pipelines/code.yaml", "--input", str(src / "dir"), "--input", str(tar), "--input", str(zpath),
                  "--output", str(out), "--overwrite", "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    assert summary["read"] == 15 and summary["input_errors"] == []
    printed = [("run stdout", proc.stdout), ("run stderr", proc.stderr)]

    kept = pq.read_table(out / "shards").to_pylist()
    rejected = pq.read_table(out / "rejected").to_pylist()
    reasons = sorted((r["path"].split("/")[-1], r["reason"]) for r in rejected)
    # every leaky file of each root is there, kept or rejected for its own reason
    assert reasons == sorted([("config.env", "unknown_language"), ("gen.py", "generated"), ("wide.py", "max_line_length")] * 3), reasons
    assert sorted(r["path"].split("/")[-1] for r in kept) == ["ok.py", "ok.py", "ok.py", "sa.json", "sa.json", "sa.json"]
    for row in kept + rejected:
        counts = json.loads(row["meta"])["redactions"]
        assert counts, row["path"]  # every file held secrets: each row says what was taken out
    ok = next(r for r in kept if r["path"].endswith("ok.py"))
    assert "return '<AWS_ACCESS_KEY_ID>', '<AWS_SECRET_ACCESS_KEY>'" in ok["text"]

    # the CLI's views of the run
    for args in (["head", str(out), "--rejected", "-n", "50", "--chars", "0"], ["head", str(out), "-n", "50", "--chars", "0"],
                 ["head", str(out), "--rejected", "-n", "50", "--jsonl"], ["stats", str(out)]):
        p = r1data(*args)
        assert p.returncode == 0, (args, p.stderr[-2000:])
        printed += [(f"r1data {' '.join(args[:1] + args[2:])}", p.stdout + p.stderr)]
    one_each = {r["path"].split("/")[-1]: r for r in kept + rejected}  # ok.py, sa.json and each rejection reason
    for row in one_each.values():
        p = r1data("show", row["id"], str(out), "--chars", "0")
        assert p.returncode == 0, p.stderr[-2000:]
        printed.append((f"r1data show {row['id']}", p.stdout + p.stderr))
    for where, text in printed:
        grep_secrets(text, where)

    # every byte under the output directory: raw, decompressed, and Parquet decoded
    n = 0
    for f in sorted(out.rglob("*")):
        if not f.is_file():
            continue
        raw = f.read_bytes()
        grep_secrets(raw, str(f))
        if raw[:2] == b"\x1f\x8b":
            grep_secrets(gzip.decompress(raw), f"{f} (gunzipped)")
        if f.suffix == ".parquet":
            grep_secrets(json.dumps(pq.read_table(f).to_pylist(), default=str), f"{f} (decoded)")
        n += 1
    assert n > 5 and any(f.suffix == ".parquet" for f in out.rglob("*"))


def test_redaction_after_a_multi_phase_barrier_reaches_every_row(tmp_path):
    """exact_dedup in its multi form cuts the run in phases: the reader's rejections and the live
    documents are written (rejected/, work/) before secret_redaction runs; the sinks redact them."""
    from r1data.config.spec import Overrides
    from r1data.run.pipeline import execute, load_spec, plan_run

    src = tmp_path / "src"
    for rel, text in leaky_files("repo").items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_text(text)
    (src / "repo" / "copy.py").write_text(leaky_files("repo")["repo/ok.py"])  # an exact duplicate of ok.py
    out = tmp_path / "out"
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"""\
name: code-dedup
inputs: [{src / 'repo'}]
stages:
  - stage: code_reader
  - stage: code_quality
  - stage: exact_dedup
    mode: multi
  - stage: secret_redaction
output:
  path: {out}
""")
    execute(plan_run(load_spec(recipe, Overrides())), overwrite=True)
    rejected = [r for f in sorted((out / "rejected").glob("*.parquet")) for r in pq.read_table(f).to_pylist()]
    reasons = sorted((r["path"], r["reason"]) for r in rejected)
    assert reasons[:2] == [("config.env", "unknown_language"), ("gen.py", "generated")], reasons
    assert reasons[2][1] == "exact_duplicate" and reasons[2][0] in ("copy.py", "ok.py") and reasons[3] == ("wide.py", "max_line_length")
    assert any(f.name.startswith("01-") for f in (out / "rejected").glob("*.parquet"))  # written by the map phase
    for row in rejected:
        assert json.loads(row["meta"])["redactions"], row["path"]
    for f in sorted(out.rglob("*")):
        if f.is_file():
            grep_secrets(f.read_bytes(), str(f))
            if f.suffix == ".parquet":
                grep_secrets(json.dumps(pq.read_table(f).to_pylist(), default=str), f"{f} (decoded)")


def test_code_v1_output_is_unchanged_but_head_and_show_print_no_secret(tmp_path):
    """code-v1 is released: its rejected rows keep their text (and its AWS secrets are found by
    name only). ``head``/``show`` still print what the recipe redacts redacted."""
    src = tmp_path / "repo"
    src.mkdir()
    (src / "config.env").write_text(f"AWS_ACCESS_KEY_ID={AWS_ID}\nGITHUB_TOKEN={GITHUB}\nADMIN={EMAIL}\n")
    (src / "ok.py").write_text(f"def creds():\n    return '{AWS_ID}', '{AWS_SECRET}'\n")
    recipe = tmp_path / "code-v1.yaml"
    recipe.write_text((ROOT / "pipelines" / "code.yaml").read_text().replace("policy: code-v2", "policy: code-v1"))
    out = tmp_path / "out"
    proc = r1data("run", str(recipe), "--input", str(src), "--output", str(out), "--overwrite", "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    [rej] = pq.read_table(out / "rejected").to_pylist()
    [kept] = pq.read_table(out / "shards").to_pylist()
    assert GITHUB in rej["text"] and AWS_ID in rej["text"]  # as released
    assert kept["text"] == "def creds():\n    return '<AWS_ACCESS_KEY_ID>', '" + AWS_SECRET + "'\n"  # as released: found by name only
    for args in (["head", str(out), "--rejected", "--chars", "0"], ["head", str(out), "--rejected", "--jsonl"], ["show", rej["id"], str(out)]):
        p = r1data(*args)
        assert p.returncode == 0, p.stderr[-2000:]
        for s in (AWS_ID, GITHUB, EMAIL):
            assert s not in p.stdout, (args, s)
        assert "<GITHUB_TOKEN>" in p.stdout
