"""The text literals the append function's arrays travel as (each read back by PostgreSQL in
tests/integration/test_append_statements.py)."""

from agentlog.infra.postgres.array_literals import bool_array, int_array, text_array


def test_every_text_element_is_quoted_so_null_braces_and_commas_stay_text() -> None:
    assert text_array(["a", "NULL", "{x,y}", " b "]) == '{"a","NULL","{x,y}"," b "}'


def test_backslashes_and_double_quotes_are_escaped_as_array_in_reads_them() -> None:
    assert text_array(['say "hi"', "a\\b", None]) == '{"say \\"hi\\"","a\\\\b",NULL}'


def test_control_characters_are_sent_as_they_are_not_as_json_escapes() -> None:
    assert text_array(["line\nbreak", "tab\t"]) == '{"line\nbreak","tab\t"}'


def test_none_is_null_and_an_empty_list_an_empty_array() -> None:
    assert text_array(["a", None]) == '{"a",null}'
    assert text_array([]) == "{}"
    assert int_array([1, None, 3]) == "{1,null,3}"
    assert int_array([]) == "{}"
    assert bool_array([True, False]) == "{true,false}"
