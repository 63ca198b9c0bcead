"""`kanal submit`'s side of the bargain: every record reaches the server as written (numbers
never pass through a float), a record it cannot carry exactly is refused with its line, and
progress off a terminal is plain lines."""

from __future__ import annotations

import io
import json
from decimal import Decimal

import pytest

from server.client import read_text
from server.jobs.cli.lines import (
    RecordLines,
    RecordRefused,
    exact_json,
    parse_record,
    records,
)
from server.jobs.cli.submit import Progress


@pytest.mark.parametrize("literal", ["99999999999999999999.99", "0.10", "-0.0", "1e400",
                                     "1E-7", "123456789012345678901234567890", "2.50"])
def test_numbers_keep_their_digits(literal):
    carried = exact_json(parse_record(f'{{"amount": {literal}, "list": [{literal}]}}'))
    assert carried == f'{{"amount":{literal},"list":[{literal}]}}'
    assert json.loads(carried, parse_float=Decimal)["amount"] == json.loads(
        literal, parse_float=Decimal)
    # what the old client did: a float cannot hold this
    if literal == "99999999999999999999.99":
        assert json.dumps(json.loads(literal)) == "1e+20"


def test_strings_and_structure_survive():
    line = '{"name": "Åse Ødegård \\"Q\\" \\u2212 ©", "x": [true, false, null, {}], "e": ""}'
    assert json.loads(exact_json(parse_record(line))) == json.loads(line)
    lone = '{"s": "\\ud800x"}'  # a lone surrogate has no UTF-8: its escape goes as written
    carried = exact_json(parse_record(lone))
    assert carried == '{"s":"\\ud800x"}' and carried.encode("utf-8")


@pytest.mark.parametrize("line, why", [
    ('{"amount": 1, "amount": 2}', "appears twice"),
    ('{"amount": NaN}', "NaN is not a JSON number"),
    ('{"amount": Infinity}', "Infinity is not a JSON number"),
    ('{"amount": 1,}', "not JSON"),
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
])
def test_what_cannot_be_carried_exactly_is_refused(line, why):
    with pytest.raises(RecordRefused, match=why):
        exact_json(parse_record(line))


def test_records_name_the_line_and_take_keys_or_line_numbers(tmp_path):
    path = tmp_path / "records.jsonl"
    path.write_text('{"record_key": "a", "data": {"amount": 1.10}}\n\n{"amount": 2.20}\n'
                    '{"x": 1, "x": 2}\n', encoding="utf-8")
    read = records(path)
    assert next(read) == ("a", '{"amount":1.10}')
    assert next(read) == ("3", '{"amount":2.20}')
    with pytest.raises(RecordRefused, match=r'records.jsonl line 4: key "x" appears twice'):
        next(read)
    path.write_bytes(b'{"a": 1}\n{"b": "\xff"}\n')
    with pytest.raises(RecordRefused, match="line 2: not UTF-8"):
        list(records(path))


def test_progress_off_a_terminal_is_plain_lines_without_carriage_returns():
    stream = io.StringIO()
    progress = Progress(stream)
    for n in range(100):
        progress.show(f"sending: {n} records")
    progress.show("done", final=True)
    assert "\r" not in stream.getvalue()
    assert stream.getvalue().splitlines() == ["done"]  # the rest came too fast to matter


def test_progress_on_a_terminal_redraws_one_line():
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Terminal()
    progress = Progress(stream)
    progress.show("1/2")
    progress.show("2/2", final=True)
    assert stream.getvalue() == "\r1/2   \r2/2   \n"


@pytest.mark.parametrize("key, why", [
    ("k" * 201, 'record_key "' + "k" * 40 + '…" is 201 characters long; at most 200 are '
                'allowed'),
    ("", 'record_key "" is empty'),
    ("r\n1", 'record_key "r\\n1" holds the control character U+000A'),
])
def test_a_record_key_the_server_would_refuse_is_refused_with_its_line(tmp_path, key, why):
    # was sent: the server refused `record.record_key` (no index) and the command printed
    # "... (after 2 records)", so which line of a 100,000-line file was left to guess
    path = tmp_path / "records.jsonl"
    path.write_text('{"record_key": "a", "data": {}}\n\n'
                    + json.dumps({"record_key": key, "data": {}}) + "\n", encoding="utf-8")
    read = records(path)
    assert next(read) == ("a", "{}")
    with pytest.raises(RecordRefused) as refused:
        next(read)
    assert str(refused.value) == f"{path} line 3: {why}"


def test_record_lines_give_the_line_of_the_server_s_records_n(tmp_path):
    path = tmp_path / "records.jsonl"
    path.write_text('{"a": 1}\n\n\n{"a": 2}\n{"a": 3}\n  \n{"a": 4}\n{"a": 5}\n',
                    encoding="utf-8")
    lines = RecordLines()
    assert [key for key, _ in records(path, lines)] == ["1", "4", "5", "7", "8"]
    assert [lines.line(n) for n in range(5)] == [1, 4, 5, 7, 8]
    assert lines._gaps == [(1, 2), (3, 3)]  # two gaps noted, not a number per record


def test_a_byte_order_mark_at_the_start_of_the_file_is_dropped(tmp_path):
    # was: line 1 refused 'not JSON: Unexpected UTF-8 BOM' (QA): files exported on Windows
    # often start with one
    path = tmp_path / "windows.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"record_key": "a", "data": {"amount": 1.10}}\r\n'
                     b'{"amount": 2.20}\r\n')
    assert list(records(path)) == [("a", '{"amount":1.10}'), ("2", '{"amount":2.20}')]
    # only at the start of the file: one inside is no JSON text, named by its line
    path.write_bytes(b'{"amount": 1}\n\xef\xbb\xbf{"amount": 2}\n')
    with pytest.raises(RecordRefused, match="line 2: not JSON"):
        list(records(path))


def test_a_data_file_with_a_byte_order_mark_is_read_without_it(tmp_path):
    # `kanal compose --data` and `kanal render --data` read the file with read_text
    path = tmp_path / "invoice.json"
    path.write_bytes(b'\xef\xbb\xbf{"name": "\xc3\x85se"}\r\n')
    assert read_text(path) == '{"name": "Åse"}\r\n'
    path.write_bytes(b'{"name": "\xef\xbb\xbf"}')  # a U+FEFF inside the text is the data's
    assert read_text(path) == '{"name": "\ufeff"}'


@pytest.mark.parametrize("literal, why", [
    ("null", "null"), ("true", "a boolean"), ('{"a": 1}', "an object"), ("[1]", "an array")])
def test_a_record_key_that_is_no_string_or_number_is_refused_with_its_line(tmp_path, literal,
                                                                           why):
    # was sent as str() of the Python value: null became the record key "None", true "True",
    # {"a": 1} "{'a': 1}"
    path = tmp_path / "records.jsonl"
    path.write_text(f'{{"record_key": {literal}, "data": {{}}}}\n', encoding="utf-8")
    with pytest.raises(RecordRefused) as refused:
        list(records(path))
    assert str(refused.value) == (f"{path} line 1: record_key must be a string or a number, "
                                  f"not {why}")


def test_a_numeric_record_key_is_sent_as_its_digits(tmp_path):
    path = tmp_path / "records.jsonl"
    path.write_text('{"record_key": 7, "data": {}}\n{"record_key": 0.50, "data": {}}\n',
                    encoding="utf-8")
    assert [key for key, _ in records(path)] == ["7", "0.50"]


def test_a_record_key_without_data_is_refused_with_its_line(tmp_path):
    # was sent as the record's data: the job failed it with "record_key" unexpected and every
    # required property of the layout missing
    path = tmp_path / "records.jsonl"
    path.write_text('{"record_key": "a", "data": {}}\n{"record_key": "b"}\n', encoding="utf-8")
    with pytest.raises(RecordRefused) as refused:
        list(records(path))
    assert str(refused.value) == (f'{path} line 2: has "record_key" but no "data": a record is '
                                  '{"record_key": ..., "data": {...}} or only the data')
