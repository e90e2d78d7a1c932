"""The pages and figures run_server.py serves itself: the chat page at /, /dashboard and its assets (all shipped in
the package, nothing fetched from elsewhere), /metrics.json, and the system sensors behind it."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bitnet_gguf.serving import metrics, sensors
from bitnet_gguf.serving.proxy import PAGES, STATIC_DIR

from .conftest import REPO_ROOT
from .server_helpers import Browser, ServerProc, http_json, running_server

openai = pytest.importorskip("openai")


@pytest.fixture(scope="module")
def server(tiny_shakespeare_i2s: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProc]:
    with running_server(tiny_shakespeare_i2s, tmp_path_factory.mktemp("dashboard") / "server.log", "-t", "1") as srv:
        yield srv


def test_assets_are_local_and_shipped() -> None:
    names = {p.name for p in STATIC_DIR.iterdir()}
    assert {"chat.html", "chat.js", "dashboard.html", "dashboard.js", "linechart.js", "common.js", "style.css"} <= names
    for p in STATIC_DIR.iterdir():
        text = p.read_text()
        # no CDN, no web fonts, no internet: every URL a page uses is one of ours
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}/", text, re.I), p.name
    for page in PAGES.values():
        html = (STATIC_DIR / page).read_text()
        refs = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert refs and all(r.startswith("/") for r in refs), refs
        assert all((STATIC_DIR / r.removeprefix("/static/")).is_file() for r in refs if r.startswith("/static/"))
        assert "<script>" not in html and "style=" not in html  # the CSP allows no inline code or style
    # a non-editable install ships them
    assert '"bitnet_gguf.serving" = ["static/*"]' in (REPO_ROOT / "pyproject.toml").read_text()


def test_pages_are_served(server: ServerProc) -> None:
    status, html = http_json(server.url + "/")
    assert status == 200 and "/static/chat.js" in html
    status, html = http_json(server.url + "/dashboard")
    assert status == 200 and "chart-throughput" in html
    status, js = http_json(server.url + "/static/chat.js")
    assert status == 200 and "/v1/chat/completions" in js and "stream: true" in js
    for missing in ("/static/nope.js", "/static/../options.py", "/static/%2e%2e/options.py"):
        status, body = http_json(server.url + missing)
        assert status == 404, missing
        assert json.loads(body)["error"]["message"]


def test_chat_page_streams_an_answer_in_a_browser(server: ServerProc, tmp_path: Path) -> None:
    browser = Browser(tmp_path / "profile")
    try:
        browser.call("Page.navigate", url=server.url + "/?q=Speak%20of%20the%20sea")
        done = browser.wait_for("(() => { const m = document.querySelector('.msg.assistant[data-tokens]');"
                                " return m && {tokens: +m.dataset.tokens, text: m.firstChild.textContent,"
                                " meta: m.querySelector('.meta').textContent}; })()")
        errors = browser.evaluate("document.querySelectorAll('.msg.error').length")
    finally:
        browser.close()
    assert done["tokens"] > 0 and done["text"].strip() and "tokens/s" in done["meta"], done
    assert errors == 0


def test_metrics_json_has_the_figures(server: ServerProc) -> None:
    client: Any = openai.OpenAI(base_url=server.url + "/v1", api_key="-", timeout=60, max_retries=0)
    for i in range(3):
        list(client.chat.completions.create(model="bitnet", messages=[{"role": "user", "content": f"Line {i}"}],
                                            max_tokens=12, stream=True))
    client.completions.create(model="bitnet", prompt="ROMEO:", max_tokens=8)
    time.sleep(2.2)  # two samples later
    status, m = http_json(server.url + "/metrics.json")
    assert status == 200
    assert m["server"]["state"] == "ready" and m["server"]["restarts"] == 0
    assert m["model"]["name"] == "tiny-shakespeare" and m["model"]["n_ctx"] == 512
    assert m["limits"] == {"max_body_bytes": 1 << 20, "max_tokens": 512, "parallel": 4, "api_key_required": False}
    assert m["requests"]["ok"] >= 4 and m["requests"]["server_errors"] == 0
    assert m["tokens_total"]["generation"] >= 3 * 12 + 1 and m["tokens_total"]["prompt"] > 0
    assert m["latency_ms"]["count"] >= 4 and 0 < m["latency_ms"]["p50"] <= m["latency_ms"]["p99"]
    assert m["ttft_ms"]["count"] >= 3
    sysm = m["system"]
    assert sysm["rss_bytes"]["front"] > 0 and sysm["rss_bytes"]["llama_server"] > 0
    assert sysm["cpu_percent"]["machine"] is not None
    for figure in ("temperature_c", "package_power_w"):
        reading = sysm[figure]
        assert set(reading) == {"available", "value", "detail"}
        if not reading["available"]:
            assert reading["value"] is None and reading["detail"].startswith(("not available", "measuring")), reading
    if not list(sensors.THERMAL_ROOT.glob("thermal_zone*/temp")):  # this VM: said honestly, not shown as 0
        assert sysm["temperature_c"]["detail"].startswith("not available")
    h = m["history"]
    assert set(h) == set(metrics.HISTORY_FIELDS) and len({len(v) for v in h.values()}) == 1 and len(h["t"]) >= 3
    assert max(v for v in h["generation_tps"] if v is not None) > 0
    status, lean = http_json(server.url + "/metrics.json?history=0")
    assert status == 200 and "history" not in lean


def test_thermal_zones(tmp_path: Path) -> None:
    assert not sensors.cpu_temperature(tmp_path).value
    for i, (kind, milli) in enumerate([("acpitz", "61000"), ("x86_pkg_temp", "47500"), ("iwlwifi", "70000")]):
        zone = tmp_path / f"thermal_zone{i}"
        zone.mkdir()
        (zone / "type").write_text(kind + "\n")
        (zone / "temp").write_text(milli + "\n")
    r = sensors.cpu_temperature(tmp_path)
    assert r.value == 47.5 and "x86_pkg_temp" in r.detail  # the CPU package zone, not the hotter wifi card


def test_rapl_power(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert sensors.PackagePower(tmp_path).read().detail.startswith("not available")
    pkg = tmp_path / "intel-rapl:0"
    (pkg / "intel-rapl:0:0").mkdir(parents=True)  # a sub-domain (cores): part of the package, not added again
    (pkg / "energy_uj").write_text("1000000")
    (pkg / "max_energy_range_uj").write_text("2000000")
    (pkg / "intel-rapl:0:0" / "energy_uj").write_text("0")
    clock = iter([100.0, 102.0, 104.0])
    monkeypatch.setattr(sensors.time, "monotonic", lambda: next(clock))
    power = sensors.PackagePower(tmp_path)
    assert power.read().value is None  # one reading is no rate
    (pkg / "energy_uj").write_text("1500000")
    assert power.read().value == pytest.approx(0.25)  # 0.5 J in 2 s
    (pkg / "energy_uj").write_text("100000")  # wrapped at 2 J: 0.6 J in 2 s
    assert power.read().value == pytest.approx(0.3)


def test_stream_tally_counts_tokens_across_chunk_boundaries() -> None:
    counted: list[int] = []
    events = [{"choices": [{"delta": {"role": "assistant", "content": None}}]},
              *({"choices": [{"delta": {"content": w}}]} for w in ("To", " be", ",", " or")),
              {"choices": [{"delta": {}, "finish_reason": "length"}], "timings": {"predicted_n": 5}}]
    stream = b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events) + b"data: [DONE]\n\n"
    tally = metrics.StreamTally(0.0, counted.append)
    for i in range(0, len(stream), 7):  # arrives in arbitrary pieces
        tally.feed(stream[i:i + 7])
    assert tally.tokens == 4 and tally.first_token_at is not None
    tally.finish()  # llama-server's own count (5) wins when it is higher
    assert sum(counted) == 5 and tally.tokens == 5


def test_percentile() -> None:
    values = sorted(float(v) for v in range(1, 101))
    assert [metrics.percentile(values, q) for q in (50, 95, 99)] == [50.0, 95.0, 99.0]
    assert metrics.percentile([], 50) is None
