"""Tests of darec.utils.jsonl: append-only JSON-lines files, resuming after a kill, tolerant reading."""

from __future__ import annotations

import logging

from darec.utils.jsonl import JsonlJournal, dumps_line, last_records, loads_object, replace_jsonl


def test_dumps_line_keeps_unicode_and_ends_in_a_newline():
    assert dumps_line({"text": "Amélie", "n": 1}) == '{"text": "Amélie", "n": 1}\n'


def test_loads_object_rejects_what_is_not_one_complete_object():
    assert loads_object('{"id": 1}') == {"id": 1}
    assert loads_object('{"id": 1, "su') is None
    assert loads_object("[1, 2]") is None
    assert loads_object("12") is None


def test_journal_creates_appends_and_syncs(tmp_path):
    path = tmp_path / "out.jsonl"
    with JsonlJournal.open(path) as journal:
        journal.write({"id": 0})
        journal.sync()
        assert path.read_text() == '{"id": 0}\n'  # on disk before the file is closed
    with JsonlJournal.open(path) as journal:
        journal.write({"id": 1})
    assert path.read_text().splitlines() == ['{"id": 0}', '{"id": 1}']


def test_journal_closes_a_cut_last_line_and_logs_it(tmp_path, caplog):
    path = tmp_path / "out.jsonl"
    path.write_text('{"id": 0}\n{"id": 1, "su')
    logger = logging.getLogger("darec.test_jsonl")
    with caplog.at_level(logging.WARNING, logger="darec.test_jsonl"), JsonlJournal.open(path, logger=logger) as journal:
        journal.write({"id": 1})
    assert path.read_text() == '{"id": 0}\n{"id": 1, "su\n{"id": 1}\n'
    assert [r.name for r in caplog.records] == ["darec.test_jsonl"]
    assert "half-written line" in caplog.records[0].getMessage()


def test_journal_leaves_a_whole_or_empty_file_alone(tmp_path, caplog):
    path = tmp_path / "out.jsonl"
    path.write_text("")
    with caplog.at_level(logging.WARNING), JsonlJournal.open(path) as journal:
        journal.write({"id": 0})
    with caplog.at_level(logging.WARNING), JsonlJournal.open(path) as journal:
        journal.write({"id": 1})
    assert path.read_text() == '{"id": 0}\n{"id": 1}\n'
    assert not caplog.records


def test_replace_jsonl_writes_or_removes(tmp_path):
    path = tmp_path / "sub" / "failed.jsonl"
    replace_jsonl(path, [{"id": 2}, {"id": 5}])
    assert path.read_text() == '{"id": 2}\n{"id": 5}\n'
    replace_jsonl(path, ({"id": 7},))  # any iterable; the old content is replaced
    assert path.read_text() == '{"id": 7}\n'
    replace_jsonl(path, [])
    assert not path.exists()
    replace_jsonl(path, [])  # nothing to remove is fine


def test_last_records_last_line_wins_and_counts_bad_lines():
    text = '{"id": 0, "v": "a"}\n\n   \n{"id": 1, "v": "b"}\nnot json\n{"id": 0, "v": "c"}\n{"id": 2, "v'
    records, bad = last_records(text, loads_object, lambda r: r["id"])
    assert records == {0: {"id": 0, "v": "c"}, 1: {"id": 1, "v": "b"}}
    assert bad == [5, 7]


def test_last_records_filters_with_keep_and_parse():
    text = '{"id": 0, "key": "a"}\n{"id": 0, "key": "b"}\n{"id": 1}\n{"id": -1}\n'

    def parse(line):
        record = loads_object(line)
        return record if record is not None and record["id"] >= 0 else None

    records, bad = last_records(text, parse, lambda r: str(r["id"]), keep=lambda r: r.get("key") == "a")
    assert records == {"0": {"id": 0, "key": "a"}}
    assert bad == [4]
    assert last_records("", loads_object, lambda r: r["id"]) == ({}, [])
