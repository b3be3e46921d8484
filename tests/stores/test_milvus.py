"""The Milvus store passes the vector-store conformance suite on Milvus Lite, both as a local database
(in this process) and through its gRPC server as a remote one; commits, tombstones and the alias too."""
from __future__ import annotations

import itertools
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

pytest.importorskip("pymilvus")
pytest.importorskip("milvus_lite")

from rag.stores.milvus import MilvusStore, client

from conformance import DIMENSION, IDS, VectorStoreConformance, hits, unit_vectors

_names = itertools.count()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def lite_uri(tmp_path_factory) -> str:
    """A Milvus Lite database file, opened in this process (one per module)."""
    return str(tmp_path_factory.mktemp("milvus") / "lite.db")


@pytest.fixture(scope="module")
def server_uri(tmp_path_factory):
    """A Milvus Lite gRPC server in its own process on a free loopback port, stopped after the module."""
    port = free_port()
    data = tmp_path_factory.mktemp("milvus-server")
    process = subprocess.Popen([sys.executable, "-m", "milvus_lite", "server", "--data-dir", str(data),
                                "--host", "127.0.0.1", "--port", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"the Milvus Lite server did not start on port {port}")
            time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    process.wait(timeout=10)


class TestMilvusLite(VectorStoreConformance):
    @pytest.fixture
    def make_store(self, lite_uri):
        return lambda dimension: MilvusStore.create(dimension, uri=lite_uri, alias=f"lite_{next(_names)}")


@pytest.mark.slow  # its server is a subprocess
class TestMilvusServer(VectorStoreConformance):
    @pytest.fixture
    def make_store(self, server_uri):
        return lambda dimension: MilvusStore.create(dimension, uri=server_uri, alias=f"remote_{next(_names)}")


class TestStagedUntilSaved(VectorStoreConformance):
    """Without a URI a store keeps its vectors in memory until saved into an index folder, then moves them
    to the Milvus Lite database there."""

    @pytest.fixture
    def make_store(self):
        return MilvusStore.create


def test_an_unreachable_server_fails_before_anything_is_embedded():
    from rag import Settings
    from rag.errors import IndexAccessError

    settings = Settings(vector_store="milvus", milvus_uri=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(IndexAccessError, match="Cannot reach Milvus at http://127.0.0.1:.*RAG_MILVUS_URI"):
        MilvusStore.configured(settings, DIMENSION)


def test_a_lite_database_held_by_another_process_is_named(tmp_path):
    import fcntl

    from rag.errors import IndexAccessError

    database = tmp_path / "held.db"
    database.mkdir()
    with open(database / "LOCK", "w") as held:  # what a second process holding it looks like (flock)
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(IndexAccessError, match="another process has it open.*RAG_MILVUS_URI"):
            client(str(database))


def test_searches_see_only_committed_rows_and_a_writer_tidies_up(tmp_path, lite_uri):
    """A reader of the last commit never sees a writer's rows; the next writer deletes a dead one's rows."""
    store = MilvusStore.create(DIMENSION, uri=lite_uri, alias=f"commits_{next(_names)}")
    store.add(IDS[:4], unit_vectors(8)[:4])
    store.save(tmp_path)
    writer, reader = MilvusStore.load(tmp_path), MilvusStore.load(tmp_path)
    writer.add(IDS[4:], unit_vectors(8)[4:])
    writer.remove(IDS[:1])
    assert reader.count() == 4 and sorted(reader.ids().tolist()) == sorted(IDS[:4].tolist())
    assert set(hits(reader.search(unit_vectors(8), 8)[1][4])) == set(IDS[:4].tolist())
    # The writer dies here (never saved): the next one starts from the commit and deletes its rows.
    survivor = MilvusStore.load(tmp_path)
    survivor.add(np.array([1000], dtype=np.int64), unit_vectors(1, seed=3))
    rows = client(lite_uri).query(survivor._collection, filter="gen >= 0", output_fields=["vid"])
    assert sorted(r["vid"] for r in rows) == sorted([*IDS[:4].tolist(), 1000])
