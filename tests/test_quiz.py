"""The end-of-notebook quiz: driven without a browser, through the same widgets a learner clicks."""

import builtins

import pytest

from dit_mini.course import quiz as quiz_module
from dit_mini.course.quiz import WIDGET_VIEW, quiz

OPTIONS = ["it halves", "it quadruples", "it stays the same"]


def ask(answer=1):
    return quiz("Halve the patch: the tokens?", OPTIONS, answer, "L = (H/P)^2.")


def test_a_right_pick_lights_the_bonfire_and_explains():
    q = ask()
    q.choices.value = "it quadruples"
    q.button.click()
    assert "Bonfire lit" in q.feedback.value and "L = (H/P)^2." in q.feedback.value
    assert q.solved and q.wrong_tries == 0


def test_a_wrong_pick_nudges_first_and_reveals_on_the_second_try():
    q = ask()
    q.choices.value = "it halves"
    q.button.click()
    assert "You died" in q.feedback.value
    assert "it quadruples" not in q.feedback.value  # no answer on the first miss
    q.choices.value = "it stays the same"
    q.button.click()
    assert "it quadruples" in q.feedback.value and "L = (H/P)^2." in q.feedback.value
    assert not q.solved and q.wrong_tries == 2
    q.choices.value = "it quadruples"
    q.button.click()
    assert "Bonfire lit" in q.feedback.value and q.solved


def test_the_answer_may_be_given_by_text_or_index():
    assert ask("it quadruples").answer == ask(1).answer == 1


@pytest.mark.parametrize("answer", [3, -1, "it doubles"])
def test_an_answer_that_is_not_an_option_is_refused(answer):
    with pytest.raises(ValueError, match="answer"):
        ask(answer)


def test_one_option_is_not_a_question():
    with pytest.raises(ValueError, match="at least two options"):
        quiz("?", ["yes"], 0, "")


def test_the_widget_holds_question_choices_button_and_feedback():
    q = ask()
    assert list(q.widget.children) == [q.widget.children[0], q.choices, q.button, q.feedback]
    assert "Halve the patch" in q.widget.children[0].value
    assert list(q.choices.options) == OPTIONS


def test_without_ipywidgets_the_question_is_static_html_with_the_answer_folded(monkeypatch):
    real_import = builtins.__import__

    def no_widgets(name, *args, **kwargs):
        if name == "ipywidgets":
            raise ImportError("no ipywidgets here")
        return real_import(name, *args, **kwargs)

    shown = []
    monkeypatch.setattr(builtins, "__import__", no_widgets)
    monkeypatch.setattr("IPython.display.display", lambda obj, raw=False: shown.append(obj))
    q = quiz("Halve the patch: the tokens?", OPTIONS, 1, "L = (H/P)^2.")
    q._ipython_display_()  # what IPython calls when the quiz ends a cell
    assert q.widget is None and q.pick("it quadruples").startswith("Bonfire lit")
    (bundle,) = shown
    assert WIDGET_VIEW not in bundle
    html = bundle["text/html"]
    before, folded = html.split("<details>")
    assert "B. it quadruples" in folded and "L = (H/P)^2." in folded
    assert "L = (H/P)^2." not in before  # the reason stays hidden until unfolded


def test_static_html_escapes_markup():
    html = quiz_module.static_quiz_html("a < b?", ["<x>", "y"], 0, "because")
    assert "<x>" not in html and "&lt;x&gt;" in html


def test_the_quiz_shows_its_widget_and_its_repr_hides_the_answer(monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj, raw=False: shown.append(obj))
    q = ask()
    q._ipython_display_()
    (bundle,) = shown  # the widget's view, and the static question for viewers without widgets
    assert bundle[WIDGET_VIEW]["model_id"] == q.widget.model_id
    assert bundle[WIDGET_VIEW]["version_major"] == 2
    assert "<details>" in bundle["text/html"]
    assert "L = (H/P)^2." not in repr(q) and "answer" not in repr(q)
