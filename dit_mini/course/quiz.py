"""Self-checking quiz questions for the end of every course notebook.

`quiz(question, options, answer, why)` shows the question as ipywidgets radio buttons with a
Check button: a right pick answers "Bonfire lit" and explains why; a wrong pick answers "You died"
with a nudge, and a second wrong pick reveals the answer and the reason. Only widget APIs that
exist in both ipywidgets 7.7.1 (Colab's) and ipywidgets 8 are used (`RadioButtons`, `Button` with
`on_click` and `click`, `HTML`, `VBox`, `Layout`). Where ipywidgets is missing, the question is
shown as static HTML whose answer hides in a collapsed `<details>` block, so that a notebook read
on GitHub or in a viewer without widgets still quizzes its reader.

A notebook shows a quiz by leaving it as the last expression of a cell (or with `display(q)`):
the returned `Quiz` draws itself through IPython's `_ipython_display_` hook, so its answer never
appears as a printed repr. Every notebook 00 to 13 ends with three of these, one per cell.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["WIDGET_VIEW", "Quiz", "quiz", "static_quiz_html"]

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"  # the MIME type of a widget output
RIGHT = "Bonfire lit: right."
WRONG = "You died: not that one."
REVEAL_AFTER = 2  # wrong tries before the answer is shown


def _answer_index(options: Sequence[str], answer: int | str) -> int:
    """The index of the right option, given as an index or as the option's text."""
    if isinstance(answer, str):
        if answer not in options:
            raise ValueError(f"quiz answer {answer!r} is not one of the options; pass one of them")
        return list(options).index(answer)
    if not 0 <= answer < len(options):
        raise ValueError(f"quiz answer index {answer} is outside 0..{len(options) - 1}")
    return answer


@dataclass
class Quiz:
    """One question's state: what was asked, which option is right, and the tries so far.

    `pick(option)` grades a choice and returns the feedback text; the widget's Check button calls
    it with the selected option, so tests and the widget share one code path.
    """

    question: str
    options: list[str]
    answer: int = field(repr=False)
    why: str = field(repr=False)
    wrong_tries: int = 0
    solved: bool = False
    widget: object | None = field(default=None, repr=False)
    choices: object | None = field(default=None, repr=False)
    button: object | None = field(default=None, repr=False)
    feedback: object | None = field(default=None, repr=False)

    def pick(self, option: str | None) -> str:
        """Grade one choice (an option's text, or None for no choice) and return the feedback."""
        if option is None:
            return "Pick one of the options first, then press Check."
        if option not in self.options:
            raise ValueError(f"{option!r} is not one of this question's options")
        if self.options.index(option) == self.answer:
            self.solved = True
            return f"{RIGHT} {self.why}"
        self.wrong_tries += 1
        if self.wrong_tries >= REVEAL_AFTER:
            return f"{WRONG} The answer is {self.options[self.answer]!r}: {self.why}"
        return f"{WRONG} Read the options again and try once more."

    def _ipython_display_(self) -> None:
        """Show the widget, with the static HTML beside it for viewers without a widget manager
        (a notebook read without a kernel, the course website); only the HTML where ipywidgets
        is missing."""
        from IPython.display import display  # deferred: IPython comes with notebooks only

        static = static_quiz_html(self.question, self.options, self.answer, self.why)
        bundle = {"text/plain": self.question, "text/html": static}
        if self.widget is not None:  # the same view data as ipywidgets 7.7.1 and 8 publish
            view = {"version_major": 2, "version_minor": 0, "model_id": self.widget.model_id}
            bundle[WIDGET_VIEW] = view
        display(bundle, raw=True)

    def _on_check(self, _button=None) -> None:
        text = self.pick(self.choices.value)
        colour = "#2e7d32" if text.startswith(RIGHT) else "#b71c1c"
        self.feedback.value = f'<span style="color:{colour}">{html.escape(text)}</span>'


def static_quiz_html(question: str, options: Sequence[str], answer: int, why: str) -> str:
    """The question as HTML with the options lettered and the answer folded away."""
    letters = "ABCDEFGH"
    items = "".join(
        f"<li>{letters[i]}. {html.escape(option)}</li>" for i, option in enumerate(options)
    )
    return (
        f"<p><b>{html.escape(question)}</b></p><ul style='list-style:none'>{items}</ul>"
        f"<details><summary>show the answer</summary>{letters[answer]}. "
        f"{html.escape(options[answer])}: {html.escape(why)}</details>"
    )


def quiz(question: str, options: Sequence[str], answer: int | str, why: str) -> Quiz:
    """One multiple-choice question; returns the Quiz, which shows itself as a cell's result.

    `answer` is the right option's index or text; `why` explains it. The widget's parts are
    attributes (`choices`, `button`, `feedback`), so tests drive it without a browser.
    """
    options = [str(option) for option in options]
    if len(options) < 2:
        raise ValueError(f"a quiz needs at least two options, got {len(options)}")
    q = Quiz(question, options, _answer_index(options, answer), why)
    try:
        import ipywidgets as widgets  # deferred: the optional `notebooks` extra
    except ImportError:  # no widgets: _ipython_display_ shows static HTML instead
        return q
    q.choices = widgets.RadioButtons(options=options, layout=widgets.Layout(width="auto"))
    q.button = widgets.Button(description="Check")
    q.feedback = widgets.HTML(value="")
    q.button.on_click(q._on_check)
    title = widgets.HTML(value=f"<b>{html.escape(question)}</b>")
    q.widget = widgets.VBox([title, q.choices, q.button, q.feedback])
    return q
