"""Help page: first steps, what the measures mean, the two target-operation settings, and how to read
the Playground, written for an analyst who has not read the paper (F1 opens it at the current page's part).
"""

from __future__ import annotations

from PySide6.QtWidgets import QSizePolicy, QTextBrowser, QWidget

from app.context import AppContext
from app.pages.base import Page

# anchor of the part F1 opens from each page
SECTION_OF_PAGE = {
    "datasets": "first-steps",
    "train": "settings",
    "runs": "measures",
    "leaderboard": "best-model",
    "playground": "playground",
    "settings": "first-steps",
}

HELP_HTML = """
<h2><a name="first-steps"></a>First steps</h2>
<ol>
<li><b>Get data.</b> On <i>Datasets</i>, press <i>Import…</i> and pick a file: JD or Trivago logs, or any table
(CSV, TSV, Parquet) with a session, an item and an operation column (the wizard shows a preview and asks
which column is which). No data at hand? <i>Generate synthetic…</i> makes a realistic dataset in seconds.</li>
<li><b>Train a model.</b> On <i>Train</i>, choose the dataset and a model (start with <b>EMBSR</b>), keep the
paper's defaults and press <b>Start</b>. The curves show the training loss and, after every epoch, how well
the model ranks the next item on the validation sessions. Pause, Resume and Stop work at any time; a stopped
run keeps a checkpoint and can be resumed from <i>Runs</i>. Press Start again to queue more runs.</li>
<li><b>Compare.</b> On <i>Runs</i>, select runs to see their curves and a table in the paper's layout;
the significance test says whether one model is better than another on the same test sessions, or whether
the difference could be chance. Export the numbers as a CSV for a spreadsheet.</li>
<li><b>Look inside.</b> On <i>Playground</i>, build a session step by step (or draw one from the test set)
and watch what a trained model recommends next, and why.</li>
</ol>

<h2><a name="measures"></a>The measures: H@K, M@K, NDCG@K</h2>
<p>Every measure asks the same question for each held-out session: the model ranks all items; where does the
item the user really chose next land in that ranking? K is the length of the recommendation list (10 or 20).
All measures are shown in <b>percent</b>, averaged over the sessions of a split; higher is better.</p>
<table cellpadding="4">
<tr><td><b>H@K</b><br>(hit rate)</td><td>How often the true next item is among the top K.
<i>H@20 = 45 %</i>: for 45 of 100 sessions, the item the user chose next was in the 20 recommended items.</td></tr>
<tr><td><b>M@K</b><br>(mean reciprocal rank)</td><td>Rewards putting it near the top: a session scores 1 when
the true item is first, 1/2 when second, 1/3 when third … and 0 beyond K. <i>M@20 = 20 %</i> is, roughly,
“on average around rank 5 when it is found”.</td></tr>
<tr><td><b>NDCG@K</b></td><td>Like M@K but gentler with lower ranks: a session scores 1/log<sub>2</sub>(rank + 1)
within the top K, else 0.</td></tr>
</table>
<p><b>Splits.</b> Sessions are split into <i>train</i> (the model learns from them), <i>validation</i> (used
after every epoch to keep the best epoch) and <i>test</i> (touched once, at the end: the honest figure to
report). Compare runs only on the same dataset and split.</p>
<p><b>Significance.</b> The Wilcoxon signed-rank test compares two runs session by session on the same test
sessions. p &lt; 0.05 means a difference this large would rarely arise by chance.</p>

<h2><a name="best-model"></a>Finding the best model for your data (Leaderboard)</h2>
<p><b>Compare all models</b> gives every ticked model the same share of the <i>tuning time</i>. Each model first
trains with its default settings (always to the end, even past its share), then tries other settings — the
learning rates and dropout of the paper and the model's own knobs — judged on the <i>validation</i> sessions,
never on the test ones. The best try of each model is then scored once on the <i>test</i> sessions: that table
is the answer, and every row is an ordinary run you can open on <i>Runs</i> or in the <i>Playground</i>.</p>
<ul>
<li><b>Epochs per try</b> and <b>Stop if no gain</b> bound each try; a large dataset needs fewer epochs, since
each one is longer.</li>
<li><b>Seeds</b> above 1 trains each model's best settings again from other random starts and shows the mean
± spread. When two models differ by less than their spread, the order between them is luck, not a finding.</li>
<li><b>p</b> is the Wilcoxon test of each model against the best one, session by session: below 0.05, the
difference is unlikely to be chance.</li>
<li><b>Stop</b> keeps what is finished; start again with the same settings and the comparison continues.</li>
<li>For one model, <b>Tune…</b> on the Train page runs the same search; <b>Use the best settings</b> then puts
the winner's settings into the Train page's fields, ready to train with.</li>
<li>Under the table, <b>Export table (CSV)</b> saves it for a spreadsheet, <b>Export report</b> writes one web
page on the compared models to send to colleagues, and <b>Show on Runs page</b> selects every run of the table
there (curves, exporting a model, scoring a file with it).</li>
<li>If <b>S-POP</b> (recommending the items already in the session) comes first, your users mostly return to
items they already touched: the <i>revisit rate</i> on the Datasets page says how often sessions do.</li>
</ul>

<h2><a name="settings"></a>“Oracle” and “unknown”: is the next operation known?</h2>
<p>A micro-behavior is an item together with what the user did with it (viewed it, read the comments, added it
to the cart, ordered it…). When predicting the next item, the model can be evaluated in two settings:</p>
<ul>
<li><b>unknown</b> — the model is not told what the user will do next. This is the everyday case:
“what will they look at next?”</li>
<li><b>oracle</b> — the model is told the next operation, e.g. “what will they <i>add to the cart</i> next?”.
The paper reports this setting as its main result; it is usually higher, because the operation narrows the
choice.</li>
</ul>
<p>Every epoch is evaluated in both settings. The Train page's validation plot says which one it shows (switch
it with the box above the plot); the best epoch is chosen in the setting set by “Next operation in
training” on the Training tab. The Runs page and the CSV export name the setting of each figure.</p>

<h2><a name="playground"></a>Reading the Playground</h2>
<ul>
<li><b>Predictions.</b> The top K items for the session, best first. <i>Score</i> is the model's similarity
between the session and the item (only the order matters). <i>Seen ✓</i>: the item is already in the session.
With a test-set session the true next item is highlighted in green. With two runs side by side, items in
<b>bold</b> are recommended by that run only.</li>
<li><b>Next operation.</b> <i>unknown</i>, or a named operation to ask “what will they do <i>that</i> with
next?” (the oracle setting above).</li>
<li><b>Attention.</b> A grid of the session's steps: row <i>i</i> shows how much step <i>i</i> draws on each
step (columns) when the model summarises the session; each row adds up to 1. The last row and column are
the “star” node, a summary of the whole session. Bright cells are the steps that matter. When all cells look
alike the colour bar says so: attention is then spread almost evenly over the steps.</li>
<li><b>Dyadic (op pairs).</b> How much each pair of operations (e.g. a view followed by a cart) pushes the
prediction, per pair of steps: red pushes up, blue pushes down, white is neutral.</li>
<li><b>Gates.</b> <i>β</i> tells how the session summary is mixed: β close to 1 relies on the whole
session, close to 0 on the last item only. The bars show, per step, how much the star node (the session
summary) updates that item's representation.</li>
</ul>

<h2><a name="keys"></a>Keyboard</h2>
<p>Ctrl+1 … Ctrl+7 switch pages, F1 opens this help at the part about the page you are on, Ctrl+Enter starts
a run on the Train page, Ctrl+Shift+T switches between light and dark, Ctrl+/ lists every shortcut.</p>

<p style="color:gray">The model is EMBSR, from “Encoding Micro-Behaviors in Session-based Recommendation”; paper
references appear in the tooltips where a setting follows a particular equation.</p>
"""


class HelpPage(Page):
    page_id = "help"
    title = "Help"
    subtitle = ("First steps, what the measures mean, finding the best model, the two evaluation settings, "
                "reading the Playground.")
    icon_name = "info"

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(context, parent)
        self.browser = QTextBrowser(self)
        self.browser.setObjectName("HelpText")
        self.browser.setOpenExternalLinks(False)
        self.browser.setHtml(HELP_HTML)
        # the text scrolls inside the browser: the page itself fits the window
        self.browser.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Ignored)
        self.browser.setMinimumHeight(300)
        self.body.addWidget(self.browser, 1)

    def show_section(self, anchor: str) -> None:
        """Scroll to a part (``first-steps``, ``measures``, ``settings``, ``playground``, ``keys``)."""
        self.browser.scrollToAnchor(anchor)

    def section_for(self, page_id: str) -> str:
        return SECTION_OF_PAGE.get(page_id, "first-steps")
