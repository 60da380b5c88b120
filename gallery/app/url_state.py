"""A page's state in its URL: widgets start from ``st.query_params`` and write their changes back,
so every view is a permalink (``?page=gallery&generator=stylegan2-world``).

The URL is the source of truth. Before a widget is drawn, ``bind`` puts the URL's value into the
widget's session state whenever the URL changed since the widget last read or wrote it (a link
was followed, another page navigated here) or the widget has no state yet (a fresh visit); after
it is drawn, ``write`` puts its value back. A value equal to its default is left out of the URL,
and a value the URL names that the gallery does not have falls back to the default (and leaves
the URL), so a stale or mistyped link still opens.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import streamlit as st

_SYNCED = "_url_synced"  # widget key -> the URL values it last read or wrote


@dataclass(frozen=True)
class Param:
    """One widget's value in the URL: its parameter ``name``, its ``default``, how to read the
    URL's values (``parse``: None when they are invalid) and how to write them (``dump``)."""

    name: str
    default: Any
    parse: Callable[[list[str]], Any]
    dump: Callable[[Any], list[str]]
    valid: Callable[[Any], bool] = lambda value: True  # may the widget keep this value?

    def read(self, values: list[str] | None = None) -> Any:
        """The value the URL (or ``values``) holds, or the default."""
        values = st.query_params.get_all(self.name) if values is None else values
        if not values:
            return self.default
        found = self.parse(values)
        return self.default if found is None else found

    def values(self, value: Any) -> list[str]:
        """What the URL holds for ``value``: nothing at the default."""
        return [] if value == self.default else self.dump(value)


def choice(name: str, options: Sequence, default: Any) -> Param:
    """One of ``options`` (compared as text, so numbers work too)."""
    by_text = {str(o): o for o in options}
    return Param(name, default, lambda values: by_text.get(values[-1]), lambda value: [str(value)],
                 lambda value: str(value) in by_text)


def labelled_choice(name: str, options: Mapping[str, Any], default: Any) -> Param:
    """One of ``options``' values, written as its short key (``sort=newest``)."""
    keys = {value: key for key, value in options.items()}
    return Param(name, default, lambda values: options.get(values[-1]), lambda value: [keys[value]],
                 lambda value: value in keys)


def choices(name: str, options: Sequence[str], default: Sequence[str] = ()) -> Param:
    """Any of ``options`` (the parameter repeated: ``?class=sea&class=forest``); one empty value
    stands for none at all where the default is not empty."""
    allowed = set(options)

    def parse(values: list[str]) -> list[str] | None:
        if values == [""]:
            return []
        found = [v for v in dict.fromkeys(values) if v in allowed]
        return found or None

    return Param(name, list(default), parse, lambda value: list(value) or [""],
                 lambda value: set(value) <= allowed)


def number_range(name: str, low: float, high: float) -> Param:
    """``low <= a <= b <= high`` written ``a,b``; the default is the whole range."""

    def parse(values: list[str]) -> tuple[float, float] | None:
        try:
            a, b = (float(v) for v in values[-1].split(","))
        except ValueError:
            return None
        if not (math.isfinite(a) and math.isfinite(b)) or a > b:
            return None
        return (min(max(a, low), high), min(max(b, low), high))

    return Param(name, (low, high), parse, lambda value: [f"{value[0]:.6g},{value[1]:.6g}"])


def integer(name: str, default: int, low: int = 1) -> Param:
    def parse(values: list[str]) -> int | None:
        try:
            found = int(values[-1])
        except ValueError:
            return None
        return found if found >= low else None

    return Param(name, default, parse, lambda value: [str(int(value))])


def bind(key: str, param: Param) -> None:
    """Before the widget ``key`` is drawn: its value from the URL, when the URL changed since the
    widget last saw it or the widget has no state yet."""
    synced = st.session_state.setdefault(_SYNCED, {})
    url = st.query_params.get_all(param.name)
    if key not in st.session_state or synced.get(key) != url:
        st.session_state[key] = param.read(url)
        synced[key] = url
    elif not param.valid(st.session_state[key]):  # its options changed (another labeller's classes)
        st.session_state[key] = param.default


def write(key: str, param: Param, value: Any) -> None:
    """After the widget ``key`` is drawn: its value into the URL (left out at the default)."""
    wanted = param.values(value)
    if st.query_params.get_all(param.name) != wanted:
        if wanted:
            st.query_params[param.name] = wanted if len(wanted) > 1 else wanted[0]
        elif param.name in st.query_params:
            del st.query_params[param.name]
    st.session_state.setdefault(_SYNCED, {})[key] = wanted


def widget(key: str, param: Param, draw: Callable[..., Any], *args, **kwargs) -> Any:
    """``draw(*args, key=key, **kwargs)`` (a Streamlit widget) bound to ``param`` in the URL."""
    bind(key, param)
    value = draw(*args, key=key, **kwargs)
    write(key, param, value)
    return value


def current(skip: Sequence[str] = ("page",)) -> dict[str, list[str]]:
    """Every query parameter now in the URL (repeated ones as lists), but ``skip``."""
    return {name: st.query_params.get_all(name) for name in st.query_params if name not in skip}


def permalink(page: str, params: Mapping[str, str | Sequence[str]]) -> str:
    """``?page=...&...`` for ``params``, repeated parameters repeated."""
    return "?" + urlencode({"page": page, **params}, doseq=True)
