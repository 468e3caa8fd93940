"""`assistant bench soak`: the verdict's arithmetic on known samples (fast) and a
short real run of the command against `assistant serve` on the test index (slow)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from assistant.config import Settings
from evals.bench.soak import Sample, SoakRun, run_soak, soak_questions, verdict


def _run(rss: list[float], latencies: list[tuple[float, float]], warmup_s: float = 60.0) -> SoakRun:
    run = SoakRun(clients=2, minutes=len(rss) * 0.5, interval_s=30, warmup_s=warmup_s, history_share=0.3)
    run.samples = [Sample(t_s=30.0 * (i + 1), rss_mib=r, open_files=40, threads=20, requests=10, errors=0,
                          p50_ms=10.0, p95_ms=20.0) for i, r in enumerate(rss)]
    run.done = [(t, ms, False) for t, ms in latencies]
    return run


def test_verdict_reads_growth_and_slope_after_warm_up_only() -> None:
    # 30 s samples; warm-up 60 s: 900 is before it, then +2 MiB per sample = 4 MiB/min
    run = _run([900, 1000, 1002, 1004, 1006, 1008], [(t, 100.0) for t in range(60, 181)])
    figures = verdict(run)
    assert figures["rss_after_warmup_mib"] == 1000 and figures["rss_end_mib"] == 1008
    assert figures["rss_growth_after_warmup_mib"] == 8.0 and figures["rss_slope_mib_per_min"] == 4.0
    assert figures["targets"] == {"errors == 0": True, "growth <= 50 MiB": True, "p95 last/first <= 1.2": True}


def test_verdict_flags_growth_p95_drift_and_errors() -> None:
    first = [(60.0 + i * 0.1, 100.0) for i in range(500)]  # the first window after warm-up: p95 100 ms
    last = [(125.0 + i * 0.05, 150.0) for i in range(1000)]  # the last: 150 ms
    run = _run([400, 500, 600, 700, 800, 900], first + last)  # samples every 30 s up to 180 s: windows of 60 s
    run.done.append((150.0, 5.0, True))
    figures = verdict(run)
    assert figures["rss_growth_after_warmup_mib"] == 400.0
    assert figures["p95_first_ms"] == 100.0 and figures["p95_last_ms"] == 150.0 and figures["p95_ratio"] == 1.5
    assert figures["errors"] == 1 and not any(figures["targets"].values())


def test_questions_come_from_every_set_once() -> None:
    questions = soak_questions()
    assert len(questions) == len(set(questions)) >= 300
    assert questions == soak_questions(), "the same order every run"


def test_bounds_are_enforced() -> None:
    for kwargs in ({"clients": 0}, {"clients": 1000}, {"minutes": 0}, {"minutes": 10**6},
                   {"minutes": 1, "warmup_s": 60}, {"interval_s": 0}, {"history_share": 1.5}):
        with pytest.raises(ValueError):
            run_soak(**kwargs)


@pytest.mark.slow
def test_soak_command_writes_figures_json_and_plot(full_index: Settings, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A tiny soak through the real command: every answer is the contract, follow-ups
    carry history, the server is sampled each interval, JSON and PNG are written."""
    from evals.cli import bench

    monkeypatch.setenv("ASSISTANT_INDEX_DIR", str(full_index.index_dir))
    monkeypatch.setenv("ASSISTANT_COLLECTION_PREFIX", full_index.collection_prefix)
    result = CliRunner().invoke(bench, ["soak", "--clients", "2", "--minutes", "0.5", "--interval", "5",
                                        "--warmup", "10", "--out", str(tmp_path), "--name", "smoke",
                                        "--server-env", "ASSISTANT_MALLOC_TRIM_INTERVAL=0"])
    print("\n" + result.output)
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "smoke.json").read_text())
    assert (tmp_path / "smoke.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data["samples"]) == 6 and all(s["rss_mib"] > 100 and s["open_files"] > 0 for s in data["samples"])
    figures = data["verdict"]
    assert figures["errors"] == 0 and figures["requests"] >= 4 and data["follow_ups"] >= 1
    assert "RSS MiB" in result.output and "verdict:" in result.output
    assert data["server_env"] == {"ASSISTANT_MALLOC_TRIM_INTERVAL": "0"}
    assert "server ASSISTANT_MALLOC_TRIM_INTERVAL=0" in result.output


def test_server_env_takes_only_assistant_settings() -> None:
    from evals.cli import bench

    result = CliRunner().invoke(bench, ["soak", "--minutes", "0.5", "--server-env", "LD_PRELOAD=x.so"])
    assert result.exit_code == 2
    assert "--server-env takes ASSISTANT_SETTING=value, not 'LD_PRELOAD=x.so'" in " ".join(result.output.split())
