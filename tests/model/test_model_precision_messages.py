"""What "auto" precision tells the user: one plain sentence with the measured speed, and a
timing that stops as soon as emulated bfloat16 is clearly slower."""

from __future__ import annotations

import logging

import torch


def test_slow_bf16_is_reported_in_words_after_one_timed_run(monkeypatch, caplog):
    import axonseg.model.predict as predict_module

    monkeypatch.setattr(predict_module, "_CPU_BF16_FAST", {})
    monkeypatch.setattr(predict_module, "_cpu_flags", lambda: {"avx2"})
    monkeypatch.setattr(predict_module.torch.nn, "Conv3d", lambda *args, **kwargs: torch.nn.Identity())
    # float32 "takes" 1 s and bfloat16 20 s in the warm-up run
    ticks = iter([0.0, 1.0, 1.0, 21.0] + [21.0 + i for i in range(100)])
    calls = []

    def perf_counter() -> float:
        calls.append(1)
        return next(ticks)

    monkeypatch.setattr(predict_module.time, "perf_counter", perf_counter)
    with caplog.at_level(logging.INFO, logger="axonseg.model.predict"):
        assert predict_module.cpu_bf16_is_fast(1) is False
    assert len(calls) == 4  # the warm-up alone decides: 20x slower cannot become 1.3x faster
    messages = [record.getMessage() for record in caplog.records]
    assert messages[0].startswith("bfloat16: timing bfloat16 against float32")
    assert messages[-1] == ("bfloat16: convolutions run 0.05x as fast as float32 on this CPU "
                            "(no AVX512-BF16 or AMX): using float32")
    assert not any("bf16 conv" in message for message in messages)


def test_a_slow_timed_run_stops_the_timing(monkeypatch):
    """bf16 5x slower: not enough for the warm-up to decide (primitive creation may cost), but
    the first timed run does."""
    import axonseg.model.predict as predict_module

    monkeypatch.setattr(predict_module, "_CPU_BF16_FAST", {})
    monkeypatch.setattr(predict_module, "_cpu_flags", lambda: {"avx2"})
    monkeypatch.setattr(predict_module.torch.nn, "Conv3d", lambda *args, **kwargs: torch.nn.Identity())
    durations = iter([1.0, 5.0] * 10)  # float32 1 s, bfloat16 5 s, every run
    clock = [0.0]
    calls = []

    def perf_counter() -> float:
        calls.append(1)
        if len(calls) % 2 == 0:  # an end reading: the run took its duration
            clock[0] += next(durations)
        return clock[0]

    monkeypatch.setattr(predict_module.time, "perf_counter", perf_counter)
    assert predict_module.cpu_bf16_is_fast(1) is False
    assert len(calls) == 8  # warm-up and one timed run of each precision


def test_close_timings_are_measured_five_times(monkeypatch):
    import axonseg.model.predict as predict_module

    monkeypatch.setattr(predict_module, "_CPU_BF16_FAST", {})
    monkeypatch.setattr(predict_module, "_cpu_flags", lambda: set())
    monkeypatch.setattr(predict_module.torch.nn, "Conv3d", lambda *args, **kwargs: torch.nn.Identity())
    ticks = iter(float(i) for i in range(100))  # every run "takes" 1 s: not 1.3x faster, not hopeless
    calls = []

    def perf_counter() -> float:
        calls.append(1)
        return next(ticks)

    monkeypatch.setattr(predict_module.time, "perf_counter", perf_counter)
    assert predict_module.cpu_bf16_is_fast(1) is False
    assert len(calls) == 24  # a warm-up and five interleaved runs of each precision
