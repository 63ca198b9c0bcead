"""An insert rule the print line cannot follow (QA H1), on a real KanalServer (embedded
SeaweedFS, SQLite index, job worker processes):

- a rule naming an insert outside the catalogue (in the settings or a layout's manifest)
  stops the server at start, naming the rule and the insert, like an insert on a feeder the
  profile lacks always did;
- a piece that still cannot be made at run time (a job prints on a profile where the rule's
  insert has no feeder) fails its document with the rule, insert and profile named, before
  anything is stored: no object under COMPLIANCE lock without an index row, no index row.
"""

from __future__ import annotations

import json
import shutil

import pytest
from sqlalchemy import func, select

from archive.tables import documents as index_documents
from kanal.v1 import common_pb2, documents_pb2, documents_pb2_grpc, jobs_pb2, jobs_pb2_grpc
from server.app import KanalServer
from server.compose.layouts import DEFAULT_LAYOUTS_DIR
from server.config import ConfigError, Settings
from server.jobs.worker import document_id_for
from server.printing.queue import print_pieces
from tests.client import Keys, channel
from tests.integration.delivery_fixtures import queued_pieces

pytestmark = pytest.mark.integration

KEYS = Keys(("nordkort", "producer"))
SAMPLE = json.loads((DEFAULT_LAYOUTS_DIR / "card-invoice/2.0.0/sample.json").read_text())
RULE = {"id": "private-terms", "tenant": "nordkort", "when": {"segment": "private"},
        "insert": "terms-2027"}
# nordkort prints on pb-di-negative, the only profile with a feeder for the insert
PRINTING = {"tenants": {"nordkort": {"printshop": "acme-print", "profile": "pb-di-negative"}},
            "inserts": {"terms-2027": {"feeders": {"pb-di-negative": 3}}},
            "rules": [RULE]}


def _layouts(tmp_path_factory: pytest.TempPathFactory):
    layouts = tmp_path_factory.mktemp("layouts")
    for name in ("card-invoice", "_shared"):
        (layouts / name).symlink_to(DEFAULT_LAYOUTS_DIR / name)
    return layouts


@pytest.fixture(scope="module")
def kanal(tmp_path_factory: pytest.TempPathFactory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KANAL_JOB_WORKERS", "1")
        with KanalServer(Settings(listen="127.0.0.1:0",
                                  state_dir=tmp_path_factory.mktemp("kanal-rules"),
                                  layouts_dir=_layouts(tmp_path_factory),
                                  api_keys=KEYS.api_keys, printing=PRINTING)) as server:
            yield server


def test_a_rule_naming_an_insert_outside_the_catalogue_stops_the_server(tmp_path_factory):
    ghost = {"id": "ghost", "tenant": "demo", "when": {"segment": "private"},
             "insert": "not-in-catalogue"}
    settings = Settings(listen="127.0.0.1:0", state_dir=tmp_path_factory.mktemp("kanal-ghost"),
                        layouts_dir=_layouts(tmp_path_factory), api_keys=KEYS.api_keys,
                        printing={**PRINTING, "rules": [RULE, ghost]})
    with pytest.raises(ConfigError) as refused, KanalServer(settings):
        pass
    assert str(refused.value).startswith(
        "printing.rules[1] (id 'ghost'): insert 'not-in-catalogue' is not in the insert "
        "catalogue")


def test_a_layout_rule_naming_an_insert_outside_the_catalogue_stops_the_server(
        tmp_path_factory):
    layouts = tmp_path_factory.mktemp("layouts-with-rule")
    (layouts / "_shared").symlink_to(DEFAULT_LAYOUTS_DIR / "_shared")
    version = layouts / "card-invoice" / "2.0.0"
    shutil.copytree(DEFAULT_LAYOUTS_DIR / "card-invoice" / "2.0.0", version)
    with (version / "manifest.toml").open("a", encoding="utf-8") as manifest:
        manifest.write('\n[[rules]]\nid = "leaflet"\nwhen = { segment = "gold" }\n'
                       'insert = "gold-leaflet"\n')
    settings = Settings(listen="127.0.0.1:0", api_keys=KEYS.api_keys, printing=PRINTING,
                        state_dir=tmp_path_factory.mktemp("kanal-layout-rule"),
                        layouts_dir=layouts)
    with pytest.raises(ConfigError) as refused, KanalServer(settings):
        pass
    assert str(refused.value).startswith(
        "card-invoice@2.0.0 manifest rules[0] (id 'leaflet'): insert 'gold-leaflet' is not "
        "in the insert catalogue")


def test_a_piece_without_a_feeder_fails_before_anything_is_archived(kanal):
    with channel(kanal.address, KEYS["nordkort", "producer"]) as ch:
        # the tenant's own profile holds the insert: printed, queued with it
        composed = documents_pb2_grpc.DocumentsStub(ch).Compose(documents_pb2.ComposeRequest(
            layout_id="card-invoice", data_json=json.dumps(SAMPLE),
            channels=[common_pb2.CHANNEL_PRINT]))
        # a job printing on "default", where no feeder holds it: each record fails alone
        jobs = jobs_pb2_grpc.JobsStub(ch)

        def messages():
            yield jobs_pb2.SubmitBatchRequest(header=jobs_pb2.JobHeader(
                layout_id="card-invoice", channels=[common_pb2.CHANNEL_PRINT],
                print_profile="default"))
            for n in range(2):
                data = {**SAMPLE, "customer": {**SAMPLE["customer"],
                                               "customer_id": f"5500{n}"}}
                yield jobs_pb2.SubmitBatchRequest(record=jobs_pb2.JobRecord(
                    record_key=f"r{n}", data_json=json.dumps(data)))
        job_id = jobs.SubmitBatch(messages()).job_id
        *_, last = jobs.WatchJob(jobs_pb2.GetJobRequest(job_id=job_id), timeout=120)
        errors = jobs.GetJobErrors(jobs_pb2.GetJobErrorsRequest(job_id=job_id)).errors
    queued_pieces(kanal.index.engine, [composed.document_id], 1)
    with kanal.index.engine.connect() as conn:
        queued = conn.execute(select(print_pieces.c.inserts, print_pieces.c.profile).where(
            print_pieces.c.document_id == composed.document_id)).one()
    assert tuple(queued) == ("terms-2027", "pb-di-negative")

    assert last.job.state == "completed_with_errors" and last.job.counts.failed == 2
    assert [e.record_key for e in errors] == ["r0", "r1"]
    assert all(e.message == ("rule 'private-terms' chose insert 'terms-2027', which has no "
                             "feeder on print profile 'default': the print settings "
                             "([printing.rules], [printing.inserts]) must be fixed")
               for e in errors)
    created = kanal.jobs.get(job_id).created_at
    ids = {document_id_for(job_id, created, f"r{n}") for n in range(2)}
    stored = [o.key for o in kanal.store.iter_objects()]
    assert any(composed.document_id in key for key in stored)  # the listing sees objects
    assert not [key for key in stored if any(i in key for i in ids)]
    with kanal.index.engine.connect() as conn:
        indexed = conn.execute(select(func.count()).select_from(index_documents).where(
            index_documents.c.document_id.in_(ids))).scalar()
    assert indexed == 0
