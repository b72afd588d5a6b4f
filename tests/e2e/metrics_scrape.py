"""Scraping `/metrics` over HTTP and reading the exposition text, for the metrics tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import aiohttp
import attrs
from prometheus_client.parser import text_string_to_metric_families


@attrs.frozen
class Scrape:
    """One scrape: every sample's value by name and labels."""

    values: dict[tuple[str, frozenset[tuple[str, str]]], float]

    def value(self, name: str, **labels: str) -> float:
        """The sample's value; 0 when the scrape has no such series (a counter not yet touched)."""
        return self.values.get((name, frozenset(labels.items())), 0.0)

    def series(self, name: str) -> dict[frozenset[tuple[str, str]], float]:
        """Every series of one sample name, by labels."""
        return {labels: value for (sample, labels), value in self.values.items() if sample == name}


async def scrape(url: str) -> Scrape:
    """GET the metrics and parse them with prometheus_client's own parser."""
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        assert response.status == 200, response.status
        assert response.headers["Content-Type"].startswith("text/plain"), response.headers["Content-Type"]
        text = await response.text()
    values = {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    return Scrape(values)


async def scrape_when(url: str, settled: Callable[[Scrape], bool], timeout: float = 20.0) -> Scrape:  # noqa: ASYNC109
    """Scrape until `settled` holds (an update is counted once its handler returns, just after its reply is shown)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        current = await scrape(url)
        if settled(current):
            return current
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"the metrics at {url} never settled; last scrape: {current.values}")
        await asyncio.sleep(0.1)


def delta(before: Scrape, after: Scrape, name: str, **labels: str) -> float:
    """How much one series grew between two scrapes."""
    return after.value(name, **labels) - before.value(name, **labels)
