"""The text literals the append function's arrays travel as (read back by PostgreSQL in
tests/integration/test_append_statements.py)."""

from agentlog.infra.postgres.array_literals import bool_array, int_array, text_array


def test_every_text_element_is_quoted_so_null_braces_and_commas_stay_text() -> None:
    assert text_array(["a", "NULL", "{x,y}", " b "]) == '{"a","NULL","{x,y}"," b "}'


def test_backslashes_and_double_quotes_are_escaped() -> None:
    assert text_array(['say "hi"', "a\\b"]) == '{"say \\"hi\\"","a\\\\b"}'


def test_none_is_null_and_an_empty_list_an_empty_array() -> None:
    assert text_array(["a", None]) == '{"a",NULL}'
    assert text_array([]) == "{}"
    assert int_array([1, None, 3]) == "{1,NULL,3}"
    assert int_array([]) == "{}"
    assert bool_array([True, False]) == "{t,f}"
