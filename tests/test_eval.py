import json

import numpy as np

from its_mobile.data import espeak
from its_mobile.data.audio import to_model_rate
from its_mobile.evaluate.metrics import edit_distance, speech_distances
from its_mobile.host import describe
from tests.test_cli import cli


def test_edit_distance():
    assert edit_distance([1, 2, 3], [1, 2, 3]) == 0
    assert edit_distance([1, 2, 3], [1, 3]) == 1
    assert edit_distance([], [4, 5]) == 2
    assert edit_distance([1, 2], [2, 1]) == 2


def test_speech_distances_are_zero_for_the_same_audio_and_grow_apart():
    a = to_model_rate(espeak.speak("garden").audio)
    b = to_model_rate(espeak.speak("window").audio)
    assert speech_distances(a, a) == (0.0, 0.0)
    l1, mcd = speech_distances(a, b)
    assert l1 > 0.1 and mcd > 1.0


def test_speech_distances_take_audio_shorter_than_one_window():
    """A model that reads a word as one short phoneme says less than an STFT window; eval scores
    it (as far from the reference) instead of failing."""
    ref = to_model_rate(espeak.speak("reading").audio)
    l1, mcd = speech_distances(np.zeros(300, np.float32), ref)
    assert np.isfinite(l1) and np.isfinite(mcd) and l1 > 0.5


def test_eval_command_writes_every_split(tiny_run, tiny_data, tmp_path):
    out = tmp_path / "eval.json"
    r = cli("eval", "--data", str(tiny_data), "--checkpoint", str(tiny_run["student"]), "--n", "4", "--json-out",
            str(out))
    assert r.returncode == 0, r.stderr
    res = json.loads(out.read_text())
    assert res["machine"] == describe()
    assert [s["split"] for s in res["splits"]] == ["eval_iv_clean", "eval_iv_noisy", "eval_oov_clean",
                                                   "eval_oov_noisy"]
    for s in res["splits"]:
        assert s["n"] == 4 and 0.0 <= s["exact"] <= 1.0 and s["per"] >= 0.0
        assert 0.0 <= s["asr_espeak"] <= 1.0
    assert "exact" in r.stdout.splitlines()[0]
