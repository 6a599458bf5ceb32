"""HeartbeatService: pings within their limits, and the ping key."""

from __future__ import annotations

from watchkeeper.app import Runtime


def _uuid(runtime: Runtime) -> str:
    record = runtime.heartbeats.record("job")
    assert record is not None
    return str(record.uuid)


def _limited(runtime: Runtime, limit: str) -> float:
    return runtime.metrics.pings_rate_limited.labels(limit)._value.get()


async def test_a_ping_by_uuid_is_recorded_with_its_body(runtime: Runtime) -> None:
    heartbeats = runtime.services.heartbeats
    reads = []

    async def body() -> bytes:
        reads.append(1)
        return b"backup done"

    answer = await heartbeats.ping([_uuid(runtime)], "10.0.0.1", body)
    assert (answer.status, answer.text, answer.retry_after) == (200, "OK", None)
    assert reads == [1]
    record = runtime.heartbeats.record("job")
    assert record is not None and record.last_ping_at == runtime.clock.now()


async def test_unknown_keys_and_bad_exit_codes_are_answered_without_reading_the_body(
    runtime: Runtime,
) -> None:
    heartbeats = runtime.services.heartbeats

    async def body() -> bytes:
        raise AssertionError("the body of a refused ping is not read")

    assert (await heartbeats.ping(["nope"], "10.0.0.1", body)).status == 404
    assert (await heartbeats.ping(["job"], "10.0.0.1", body)).text == "not found"  # by name: off
    bad = await heartbeats.ping([_uuid(runtime), "300"], "10.0.0.1", body)
    assert (bad.status, bad.text) == (400, "exit status must be 0-255")


async def test_a_check_pinged_past_its_limit_gets_429_and_the_metric_counts_it(
    runtime: Runtime,
) -> None:
    heartbeats = runtime.services.heartbeats
    uuid = _uuid(runtime)
    for i in range(3):
        assert (await heartbeats.ping([uuid], f"10.0.0.{i}")).status == 200
    refused = await heartbeats.ping([uuid], "10.0.0.9")
    assert (refused.status, refused.text) == (429, "too many pings")
    assert refused.retry_after is not None and refused.retry_after > 0
    assert _limited(runtime, "check") == 1
    assert _limited(runtime, "address") == 0


async def test_an_address_past_its_limit_is_refused_for_unknown_keys_too(
    runtime: Runtime,
) -> None:
    heartbeats = runtime.services.heartbeats
    for _ in range(5):
        assert (await heartbeats.ping(["guess"], "10.9.9.9")).status == 404
    assert (await heartbeats.ping([_uuid(runtime)], "10.9.9.9")).status == 429
    assert _limited(runtime, "address") == 1


async def test_the_ping_key_and_its_url_template(runtime: Runtime) -> None:
    info = runtime.services.heartbeats.ping_key()
    assert info.ping_key == runtime.pings.ping_key and len(info.ping_key) >= 16
    assert info.source == "generated"
    base = runtime.config.server.base_url()
    assert info.ping_url_template == f"{base}/ping/{info.ping_key}/{{name}}"
    assert info.ping_by_name is False
    answer = await runtime.services.heartbeats.ping([info.ping_key, "job"], "10.0.0.1")
    assert answer.status == 200
