"""The Ray head the remote tests run against is real, local and on loopback only."""

from __future__ import annotations

import json
import urllib.request

import pytest

pytestmark = pytest.mark.ray


def test_head_answers_on_loopback(ray_head):
    with urllib.request.urlopen(f"{ray_head.dashboard_url}/api/version", timeout=10) as reply:
        assert json.load(reply)["ray_version"]
    assert ray_head.address.startswith("127.0.0.1:")


def test_driver_runs_a_task_on_the_head(ray_head):
    import ray

    ray.init(address=ray_head.address, ignore_reinit_error=True, log_to_driver=False)

    @ray.remote(num_cpus=0.5)
    def square(x):
        return x * x

    assert ray.get([square.remote(i) for i in range(4)]) == [0, 1, 4, 9]
