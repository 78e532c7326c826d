"""The registry of selection methods: building by name, options, registration, the order methods run in."""

import pytest

from wsnas.core.errors import WsnasError
from wsnas.selection import (
    SELECTORS,
    MagnitudeSelector,
    PTConfig,
    PTSelector,
    Selector,
    check_selections,
    get_selector,
    get_selectors,
    ordered,
    register_selector,
    selection_names,
    unregister_selector,
)
from wsnas.selection.search import SearchConfig, select_all

CALLS: list[str] = []


class Changer(Selector):
    """Changes the supernet; registered before Reader so registration order alone would run it first."""

    name = "changer"
    changes_supernet = True

    def __init__(self, tag: str = "c") -> None:
        self.tag = tag

    def select(self, trainer, data, *, progress=True):
        CALLS.append(self.name)
        return (self.tag, trainer)


class Reader(Selector):
    name = "reader"

    def select(self, trainer, data, *, progress=True):
        CALLS.append(self.name)
        return ("r", trainer)


@pytest.fixture
def fakes():
    register_selector(Changer)
    register_selector(Reader)
    CALLS.clear()
    yield
    unregister_selector("changer")
    unregister_selector("reader")


def test_the_built_in_methods():
    assert selection_names() == ("magnitude", "pt")
    assert SELECTORS == {"magnitude": MagnitudeSelector, "pt": PTSelector}
    assert isinstance(get_selector("magnitude"), MagnitudeSelector)
    pt = get_selector("pt", interval=2, seed=7)
    assert isinstance(pt, PTSelector) and pt.cfg == PTConfig(interval=2, seed=7)
    assert PTSelector.changes_supernet and not MagnitudeSelector.changes_supernet


def test_unknown_names_and_bad_options_are_one_line():
    with pytest.raises(WsnasError, match=r"^unknown selection 'best'; accepted: magnitude, pt$"):
        get_selector("best")
    with pytest.raises(WsnasError, match=r"^unknown selection 'best'; accepted: magnitude, pt$"):
        check_selections(["magnitude", "best"])
    with pytest.raises(WsnasError, match=r"^unknown selection ''"):
        check_selections([])
    with pytest.raises(WsnasError, match=r"^unknown selection 'best'"):
        SearchConfig(select=("pt", "best"))
    with pytest.raises(WsnasError, match=r"^bad option for selection 'pt': .*colour"):
        get_selector("pt", colour="red")
    with pytest.raises(WsnasError, match="non-negative"):
        get_selector("pt", interval=-1)
    with pytest.raises(WsnasError, match=r"^bad option for selection 'magnitude'"):
        get_selectors(["magnitude"], {"magnitude": {"interval": 1}})


def test_registration(fakes):
    assert "changer" in selection_names() and SearchConfig(select=("reader",)).select == ("reader",)
    assert register_selector(Reader) is Reader  # again: nothing changes

    class Impostor(Selector):
        name = "reader"

    with pytest.raises(WsnasError, match="'reader' is already registered"):
        register_selector(Impostor)
    assert SELECTORS["reader"] is Reader
    for bad_name in ("", "a,b", "two words"):
        with pytest.raises(WsnasError, match="needs a name"):
            register_selector(type("Bad", (Selector,), {"name": bad_name}))
    with pytest.raises(WsnasError, match="Selector subclass"):
        register_selector(object)

    @register_selector
    class Decorated(Selector):
        name = "decorated"

    try:
        assert isinstance(get_selector("decorated"), Decorated)
    finally:
        unregister_selector("decorated")
    assert "decorated" not in selection_names()


def test_methods_that_change_the_supernet_run_last_whatever_the_order_given(fakes):
    assert selection_names() == ("magnitude", "reader", "pt", "changer")
    assert ordered(["changer", "pt", "reader", "magnitude", "pt"]) == ["magnitude", "reader", "pt", "changer"]
    selectors = get_selectors(["changer", "reader", "changer"], {"changer": {"tag": "x"}, "pt": {"interval": 9}})
    assert [type(s) for s in selectors] == [Reader, Changer] and selectors[1].tag == "x"
    trainer = object()
    picks = select_all(trainer, None, [Changer(), Reader()], progress=False)
    assert CALLS == ["reader", "changer"]
    assert [(m, a) for m, a, _ in picks] == [("reader", ("r", trainer)), ("changer", ("c", trainer))]
    assert all(sec >= 0 for _, _, sec in picks)
