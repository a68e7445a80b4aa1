"""One RabbitMQ node of their own for the fault tests of this package (starting one takes 10-20 s)."""

from __future__ import annotations

import shutil

import pytest

from .harness import OwnRabbit, rabbitmq_missing, shared_folder


@pytest.fixture(scope="package")
def rabbit_node():
    missing = rabbitmq_missing()
    if missing:
        pytest.skip(missing)
    folder = shared_folder("nexus-rabbit-")  # the server runs as the rabbitmq user
    node = OwnRabbit(folder / "node")
    try:
        node.start()
        yield node
    finally:
        if node.running:
            node.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def rabbit(rabbit_node):
    """The package's node, running, with an empty default queue (a test that failed may have left it stopped)."""
    if not rabbit_node.running:
        rabbit_node.start()
    rabbit_node.purge()
    return rabbit_node
