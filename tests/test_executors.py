"""Executors: the same results whatever runs the jobs, a process pool that outlives a killed
worker, the spool's round trip, and what --executor says when Ray is absent."""

from __future__ import annotations

import json
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from test_campaign import check_gallery, models, raw_config  # noqa: F401  (models: a fixture)

from data.errors import ConfigError
from gallery.campaign import run_campaign
from gallery.config import parse_config
from gallery.executor import LocalExecutor, ProcessExecutor, make_executor, run_safely
from gallery.planning import plan_jobs
from gallery.store import Store


def gallery_contents(gallery: Path) -> dict:
    """What a campaign made, without the when and the who: artworks, latents, labels, run facts."""
    store = Store(gallery)
    artworks = store.read("SELECT artwork_id, role, rank, image_sha256, similarity, realism, latent_json "
                          "FROM artworks ORDER BY artwork_id")
    labels = store.read("SELECT artwork_id, labeller, predicted, confidence, probabilities_json "
                        "FROM labels ORDER BY artwork_id, labeller")
    runs = store.read("SELECT run_id, status, evaluations, history_json, versions_json FROM runs ORDER BY run_id")
    versions = [json.loads(v) for v in runs.pop("versions_json")]
    return {"artworks": records(artworks), "labels": records(labels), "runs": records(runs),
            "threads": {v.get("torch_threads") for v in versions}}


def records(frame) -> list[dict]:
    """Rows as dicts, missing values as None (NaN would never equal itself)."""
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


@pytest.mark.slow
def test_one_or_two_workers_give_identical_images_latents_and_labels(models, tmp_path):  # noqa: F811
    config = parse_config(raw_config(models, prompts=["a beautiful landscape"]))  # 8 jobs
    run_campaign(config, tmp_path / "one", executor=make_executor(1), progress=False)
    summary = run_campaign(config, tmp_path / "two", executor=make_executor(2), progress=False)
    assert summary.done == len(plan_jobs(config)) and summary.failed == 0
    one, two = gallery_contents(tmp_path / "one"), gallery_contents(tmp_path / "two")
    assert one["artworks"] and one == two  # PNG hashes bit for bit, latents, labels, histories
    assert one["threads"] == {1}  # each run records the thread count it ran on
    assert len(summary.workers) == 2 and all("jobs" in line for line in summary.workers)


def test_a_job_runs_on_the_thread_count_asked_and_the_caller_keeps_its_own():
    before = torch.get_num_threads()

    @dataclass
    class Threads:
        def run(self):
            return torch.get_num_threads()

        def failure(self, message):
            return message

    assert list(LocalExecutor(threads=1).map([Threads()])) == [1]
    assert run_safely(Threads(), 2) == 2
    assert torch.get_num_threads() == before


@dataclass(frozen=True)
class KillsItsWorkerOnce:
    """A job whose first attempt kills the process running it (as the OOM killer would)."""

    index: int
    marker: str

    def run(self):
        if self.index == 3 and not os.path.exists(self.marker):
            Path(self.marker).touch()
            os.kill(os.getpid(), signal.SIGKILL)
        return ("done", self.index)

    def failure(self, message):
        return ("failed", self.index)


@pytest.mark.slow
def test_the_process_pool_reruns_the_jobs_of_a_worker_that_died(tmp_path):
    jobs = [KillsItsWorkerOnce(i, str(tmp_path / "killed")) for i in range(5)]
    results = list(ProcessExecutor(2).map(jobs))
    assert (tmp_path / "killed").exists()  # a worker did die
    assert sorted(results) == [("done", i) for i in range(5)]  # each job once, none failed


def test_executor_choices_and_ray_without_ray(monkeypatch):
    assert isinstance(make_executor(1), LocalExecutor) and isinstance(make_executor(2), ProcessExecutor)
    assert isinstance(make_executor(3, kind="local"), LocalExecutor)
    assert isinstance(make_executor(1, kind="process"), ProcessExecutor)
    with pytest.raises(ConfigError, match="options of --executor ray"):
        make_executor(2, address="auto")
    with pytest.raises(ConfigError, match="threads per job"):
        make_executor(1, threads=0)
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now fails, as when it is not installed
    with pytest.raises(ConfigError, match=r'pip install -e "\.\[ray\]"'):
        make_executor(2, kind="ray")


def test_the_command_says_how_to_install_ray(models, tmp_path, monkeypatch, capsys):  # noqa: F811
    from test_campaign import to_toml

    from gallery.cli import main

    monkeypatch.setitem(sys.modules, "ray", None)
    path = tmp_path / "campaign.toml"
    path.write_text(to_toml(raw_config(models)))
    assert main(["campaign", "run", str(path), "--gallery", str(tmp_path / "g"), "--executor", "ray"]) == 2
    assert 'pip install -e ".[ray]"' in capsys.readouterr().err
    assert not (tmp_path / "g").exists()


def test_a_spooled_result_reads_back_as_it_was_written(models, tmp_path):  # noqa: F811
    from gallery.spool import read_result, spooled_run_ids, sweep, write_result

    config = parse_config(raw_config(models, prompts=["a calm sea"], seeds=1, generators=[models["a"]]))
    for job in plan_jobs(config)[-1:] + plan_jobs(config)[:1]:  # a search, then a baseline chunk
        result = run_safely(job)
        assert result.status == "done"
        ticket = write_result(tmp_path / "spool", result)
        assert spooled_run_ids(tmp_path / "spool", job.campaign_id) >= {job.run_id} and ticket.status == "done"
        back = read_result(tmp_path / "spool", job.campaign_id, job.run_id)
        assert back.job == job and back.job.run_id == job.run_id
        assert back.run_record() == result.run_record()
        created = result.started_at
        assert back.artwork_records(created) == result.artwork_records(created)
        assert back.label_records() == result.label_records()
        assert back.labellers == result.labellers
        assert [a.png for a in back.artworks] == [a.png for a in result.artworks]
    assert sweep(tmp_path / "spool") == 0  # every PNG is referenced by a shard
    for path in (tmp_path / "spool" / "shards").rglob("*.parquet"):
        path.unlink()
    assert sweep(tmp_path / "spool") > 0 and not list((tmp_path / "spool" / "images").rglob("*.png"))

