"""Hypothesis strategies for what a hostile caller may send to an entry point: any option value,
any text (NUL, lone surrogates, control characters), integers past 64 bits, NaN, deep values."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

#: Text of every kind, including what no store can hold.
texts = st.text(max_size=12) | st.text(
    alphabet=st.sampled_from("a/\x00\x07\ud800\udfff☃ "), max_size=6
)

#: A JSON-like value, possibly one no store can hold (NaN, huge integers, bad text).
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8,
)

#: Any value an option might be given.
anything = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | texts
    | st.lists(st.integers(), max_size=2)
)

#: Job arguments: usually a dict, sometimes not.
arguments = st.dictionaries(texts, json_values, max_size=4) | json_values

#: Job options, each present or not, of any type.
options: st.SearchStrategy[dict[str, Any]] = st.fixed_dictionaries(
    {},
    optional={
        "priority": anything,
        "max_attempts": anything,
        "timeout": anything,
        "delay": anything,
        "queue": anything,
        "unique_key": anything,
        "metadata": st.dictionaries(texts, texts, max_size=2) | anything,
    },
)
