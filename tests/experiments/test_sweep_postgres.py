"""Two sweep workers share one Optuna study on a real PostgreSQL server started on loopback.

The server is initialised in a temporary folder (``initdb``) and started with ``pg_ctl`` on a free
127.0.0.1 port, as the ``postgres`` system user when the tests run as root (PostgreSQL refuses to
run as root); it is stopped and removed at teardown. Skipped when the PostgreSQL binaries (Debian
``postgresql``) are absent.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def postgres_url():
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not initdb or not pg_ctl:
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) not installed; apt-get install postgresql")
    prefix: list[str] = []
    root = Path(tempfile.mkdtemp(prefix="tt-pg-"))
    if os.geteuid() == 0:
        import pwd

        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(root, ignore_errors=True)
            pytest.skip("running as root and there is no 'postgres' user to run the server as")
        runuser = shutil.which("runuser")
        if not runuser:
            shutil.rmtree(root, ignore_errors=True)
            pytest.skip("running as root without runuser to drop privileges")
        os.chown(root, user.pw_uid, user.pw_gid)
        prefix = [runuser, "-u", "postgres", "--"]
    data_dir, log = root / "data", root / "server.log"
    port = _free_port()
    subprocess.run([*prefix, initdb, "-D", str(data_dir), "-U", "postgres", "-A", "trust", "-E", "UTF8"],
                   check=True, capture_output=True, timeout=120)
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    started = subprocess.run([*prefix, pg_ctl, "-D", str(data_dir), "-o", options, "-l", str(log), "-w", "-t", "60",
                              "start"], capture_output=True, text=True, timeout=90)
    if started.returncode != 0:
        text = log.read_text() if log.exists() else started.stderr
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(f"pg_ctl start failed: {text[-2000:]}")
    try:
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*prefix, pg_ctl, "-D", str(data_dir), "-m", "immediate", "-w", "stop"],
                       capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


def test_two_workers_share_one_study(postgres_url, tmp_path, exp_data, tiny_encoder_dir):
    import optuna

    from tailtune.data import load_dataset
    from tailtune.experiments.embeddings import get_embeddings

    data = exp_data("multiclass")
    cache = tmp_path / "cache"
    loaded = load_dataset(data)  # warm the embedding cache once, so both workers only train heads
    get_embeddings({k: list(loaded.splits[k]["text"]) for k in ("train", "validation")},
                   model=str(tiny_encoder_dir), cache_dir=cache, show_progress=False)
    space = tmp_path / "space.yaml"
    space.write_text("head.lr: {type: float, low: 0.001, high: 0.01, log: true}\n"
                     "loss.focal.gamma: {type: float, low: 0.0, high: 2.0}\n"
                     "head.max_epochs: [4]\n")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    workers = []
    for i in range(2):
        cmd = [sys.executable, "-m", "tailtune.cli.main", "sweep", "focal", "--objective", "screen",
               "--data", str(data), "--model", str(tiny_encoder_dir), "--cache-dir", str(cache),
               "--space", str(space), "--trials", "1", "--storage", postgres_url, "--study", "shared",
               "--out", str(tmp_path / f"worker-{i}")]
        workers.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env))
    outputs = [w.communicate(timeout=300)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    study = optuna.load_study(study_name="shared", storage=postgres_url)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(study.trials) == 2 and len(complete) == 2
    assert {t.number for t in complete} == {0, 1}
