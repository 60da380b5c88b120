"""The Ray executor on a local Ray cluster (loopback, 2 CPUs, started once for this module):
the same artworks and labels as the local executor, results through shared storage, and a
worker killed by PID mid-campaign with nothing lost or duplicated."""

from __future__ import annotations

import os
import re
import signal
import threading
import time

import pytest
from test_campaign import check_gallery, models, raw_config  # noqa: F401  (models: a fixture)
from test_executors import gallery_contents

from gallery.campaign import run_campaign
from gallery.config import parse_config
from gallery.executor import LocalExecutor
from gallery.planning import plan_jobs
from gallery.store import Store

ray = pytest.importorskip("ray", reason='the Ray extra is not installed (pip install -e ".[ray]")')
pytestmark = pytest.mark.slow  # about 100 s in all here (2 busy cores): Ray's start, workers, a restart


@pytest.fixture(scope="module")
def cluster():
    """A Ray instance on this machine only, for the whole module."""
    if ray.is_initialized():
        ray.shutdown()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False,
             runtime_env={"env_vars": {"ARTBIAS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}})
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def config(models):  # noqa: F811
    return parse_config(raw_config(models, seeds=3))  # 12 jobs


@pytest.fixture(scope="module")
def local_gallery(config, tmp_path_factory):
    gallery = tmp_path_factory.mktemp("local") / "gallery"
    run_campaign(config, gallery, executor=LocalExecutor(), progress=False)
    return gallery_contents(gallery)


def test_ray_workers_give_the_local_executors_artworks_and_labels(cluster, config, local_gallery, tmp_path):
    from gallery.ray_executor import RayExecutor

    summary = run_campaign(config, tmp_path / "ray", executor=RayExecutor(2), progress=False)
    assert (summary.done, summary.failed) == (len(plan_jobs(config)), 0)
    check_gallery(Store(tmp_path / "ray"), config, complete=True)
    assert gallery_contents(tmp_path / "ray") == local_gallery
    again = run_campaign(config, tmp_path / "ray", executor=RayExecutor(2), progress=False)
    assert (again.done, again.skipped) == (0, summary.done)  # finished jobs are skipped on rerun


def test_results_through_a_spool_are_ingested_once(cluster, config, local_gallery, tmp_path):
    from gallery.ray_executor import RayExecutor
    from gallery.spool import write_result

    spool = tmp_path / "spool"
    # A driver killed after a worker spooled a result but before it was recorded: the next
    # run ingests that shard instead of running the job again.
    first = plan_jobs(config)[0]
    left_behind = LocalExecutor().map([first])
    write_result(spool, next(left_behind))
    summary = run_campaign(config, tmp_path / "ray", executor=RayExecutor(2, spool=spool), progress=False)
    assert (summary.done, summary.failed) == (len(plan_jobs(config)), 0)
    assert gallery_contents(tmp_path / "ray") == local_gallery
    check_gallery(Store(tmp_path / "ray"), config, complete=True)
    assert not [p for p in spool.rglob("*") if p.is_file()]  # every shard ingested, every PNG gone


def test_a_ray_worker_killed_mid_campaign_loses_nothing(cluster, config, local_gallery, tmp_path):
    from gallery.ray_executor import RayExecutor

    gallery = tmp_path / "ray"
    executor = RayExecutor(2)
    store = Store(gallery)
    outcome: dict = {}
    runner = threading.Thread(target=lambda: outcome.update(
        summary=run_campaign(config, gallery, executor=executor, progress=False)))
    runner.start()
    deadline = time.monotonic() + 120
    while runner.is_alive() and time.monotonic() < deadline:  # the first result is recorded...
        if store.exists and int(store.read("SELECT count(*) AS n FROM runs")["n"].iloc[0]) > 0:
            break
        time.sleep(0.02)
    pids = executor.worker_pids()
    os.kill(pids[0], signal.SIGKILL)  # ...then a worker dies with jobs in hand
    runner.join(timeout=300)
    summary = outcome["summary"]
    assert (summary.done, summary.failed) == (len(plan_jobs(config)), 0), summary.failures
    ran_on = {int(re.search(r":(\d+)\)", line).group(1)) for line in summary.workers}
    assert ran_on - set(pids), f"the restarted worker ran no job: {summary.workers}"  # Ray retried its jobs
    check_gallery(store, config, complete=True)  # each artwork once, no orphan PNG, no stray row
    assert gallery_contents(gallery) == local_gallery
