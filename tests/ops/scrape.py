"""Reading a worker's health server in tests: GET a route, parse a Prometheus scrape."""

from __future__ import annotations

import aiohttp
from prometheus_client.parser import text_string_to_metric_families


async def get(url: str) -> tuple[int, str]:
    """Status and body of ``GET url`` (bounded)."""
    async with aiohttp.ClientSession() as http, http.get(url, timeout=aiohttp.ClientTimeout(total=10)) as response:
        return response.status, await response.text()


def value(text: str, name: str, **labels: str) -> float:
    """The value of sample `name` with exactly `labels` in a scrape; 0 when absent (a counter never incremented)."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return 0.0
