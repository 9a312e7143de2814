"""The letter model that picks the spelling among the greedy reading and its one-column variants."""

from __future__ import annotations

import torch

from its_mobile import checkpoint
from its_mobile.model.dims import SpellingDims
from its_mobile.model.encoder import ctc_collapse
from its_mobile.model.spelling import V, Spelling, fit_letter_model, set_letter_model
from its_mobile.constants import MAX_WORD_LEN, PAD
from tests.test_cli import cli

WORDS = ["burning", "turning", "learning", "running", "morning", "warning", "earning", "churning"]


def _scores(word: str, columns: int = 32, confident: float = 8.0) -> torch.Tensor:
    """Scores of `word`, one letter every other column, blanks between and after."""
    scores = torch.zeros(1, columns, V)
    scores[0, :, 0] = confident
    for i, c in enumerate(word):
        scores[0, 2 * i, 0] = 0.0
        scores[0, 2 * i, ord(c) - ord("a") + 1] = confident
    return scores


def _spell(spelling: Spelling, scores: torch.Tensor) -> str:
    ids, mask = spelling(scores)
    return "".join(chr(ord("a") + i - 1) for i, m in zip(ids[0].tolist(), mask[0].tolist()) if m)


def _fitted(weight: float = 0.6) -> Spelling:
    spelling = Spelling(SpellingDims(classes=4, weight=weight))
    set_letter_model(spelling, *fit_letter_model(WORDS, 4))
    return spelling


def test_the_letter_model_is_a_distribution_in_every_context():
    table, classes = fit_letter_model(WORDS, 4)
    assert table.shape == (4, V, V) and set(classes.tolist()) == {0, 1, 2, 3}
    torch.testing.assert_close(table.exp().sum(-1), torch.ones(4, V))
    # a letter the words never follow "n" with is far less likely there than one they do
    n, g, q = (ord(c) - ord("a") + 1 for c in "ngq")
    assert (table[:, n, g] > table[:, n, q] + 2).all()


def test_a_confident_reading_is_kept_as_greedy_ctc_reads_it():
    scores = _scores("qzxj")  # no word's letters, yet read without doubt
    assert _spell(_fitted(), scores) == "qzxj"
    ids, mask = ctc_collapse(scores, MAX_WORD_LEN, PAD)
    torch.testing.assert_close(_fitted()(scores), (ids, mask))


def test_a_doubtful_letter_becomes_the_one_the_letters_around_it_expect():
    scores = _scores("burnimg")
    m, n = ord("m") - ord("a") + 1, ord("n") - ord("a") + 1
    scores[0, 10, m], scores[0, 10, n] = 4.0, 3.6  # the encoder leans to "m" by a little
    assert _spell(Spelling(SpellingDims(classes=4, weight=0.0, bonus=0.0)), scores) == "burnimg"  # no letter model: greedy
    assert _spell(_fitted(), scores) == "burning"
    scores[0, 10, n] = -4.0  # an "n" the encoder rules out stays out
    assert _spell(_fitted(), scores) == "burnimg"


def test_the_spelling_stage_fits_the_letter_model_and_changes_no_weight(tiny_data, tiny_packed, tmp_path):
    done = cli("train", "--preset", "tiny", "--data", str(tiny_data), "--out", str(tmp_path), "--ternary",
               "--init", str(tiny_packed), "--stage", "spelling")
    assert done.returncode == 0, done.stderr
    before, _ = checkpoint.load_model(tiny_packed)
    after, info = checkpoint.load_model(tmp_path / "ternary-large-base-small" / "packed.safetensors")
    old, new = before.state_dict(), after.state_dict()
    for name in old:
        torch.testing.assert_close(new[name], old[name], rtol=1e-6, atol=1e-7)  # repacking: float32 rounding of scales
    assert info["dims"]["spelling"] == {"classes": 10, "weight": 0.6, "bonus": 0.5, "shifts": [1, -1]}
    assert after.spelling.table.abs().sum() > 0 and info["training"]["spelling_words"] > 0
