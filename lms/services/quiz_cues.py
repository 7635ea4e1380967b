"""Surface cues in a quiz bank: can a member pass without reading the scenario?

A union lawyer's first test of a quiz is to ignore the questions and pick by form: the longest
option, the most hedged one, the one without "only" or "never". This module measures, per version
of a content pack, how well such scenario-blind strategies do under the pack's own draw rules
(draw size, per-topic minimums, pass mark), how often the key is the longest option, and the
reading level of keys against wrong options, and compares the figures with thresholds the pack
sets (``settings.cues`` in quiz.yaml).

The pass rates are exact, not sampled: a first attempt draws each topic's minimum, then the rest at
random from what is left (lms.services.quiz.draw_questions), so the number drawn from each topic is
multivariate hypergeometric and, given that number, the topic's questions are a uniform subset.
Options are shown in a random order per attempt, so a "fixed position" strategy is a random guess.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from math import comb
from statistics import mean, median

from lms.services.content import OptionPack, QuestionPack, VersionPack

#: Defaults for ``settings.cues`` in quiz.yaml (percentages, and grades for the reading level).
DEFAULT_LIMITS: dict[str, float] = {
    "max_blind_pass_rate": 5.0,   # % of first attempts any scenario-blind strategy may pass
    "max_key_longest": 35.0,      # % of single-answer questions whose key is the longest option
    "max_grade_gap": 2.0,         # |mean FK grade of keys - mean FK grade of wrong options|
}

#: Words that soften a claim. An option full of them reads as the careful, "right" answer.
HEDGES = frozenset("""may might can could possibly perhaps probably likely usually generally
    depends depending unless sometimes""".split())
#: Words that make a claim absolute. Test-wise members learn to avoid options that carry them.
ABSOLUTES = frozenset("""only never always fine any anything all every everything none nothing
    nobody must cannot can't automatically whatever regardless entirely completely""".split())

# An option's cue is worth naming to the author when the key stands out by this much.
_STANDOUT = 1.25
_WORD = re.compile(r"[a-z][a-z']*")


def words(text: str) -> list[str]:
    """Lower-case words of a text ("don't" is one word)."""
    return _WORD.findall(text.lower().replace("\u2019", "'"))


def hedge_count(text: str) -> int:
    """How many hedging words (may, can, could...) a text uses."""
    return sum(w in HEDGES for w in words(text))


def absolute_count(text: str) -> int:
    """How many absolute words (only, never, always, fine...) a text uses."""
    return sum(w in ABSOLUTES for w in words(text))


def syllables(word: str) -> int:
    """Syllables of an English word by vowel groups (the usual Flesch heuristic)."""
    word = word.strip("'")
    groups = re.findall(r"[aeiouy]+", word)
    count = len(groups)
    if word.endswith("e") and not word.endswith(("le", "ee")) and count > 1:
        count -= 1
    return max(count, 1)


def reading_grade(text: str) -> float:
    """Flesch-Kincaid grade level of a text."""
    ws = words(text)
    if not ws:
        return 0.0
    sentences = max(len(re.findall(r"[.!?]+(?:\s|$)", text.strip() + " ")), 1)
    return 0.39 * len(ws) / sentences + 11.8 * sum(map(syllables, ws)) / len(ws) - 15.59


def _length(option: OptionPack) -> int:
    return len(" ".join(option.text.split()))


# --- scenario-blind strategies -------------------------------------------------------------------
# Each maps a question to the probability that the strategy answers it right. A single-answer
# question picks among the options that tie on the feature at random; a select-all question ticks
# the set the feature singles out, which is right only if it is exactly the keyed set.

def _pick_extreme(question: QuestionPack, feature: Callable[[OptionPack], float], highest: bool) -> float:
    values = [feature(o) for o in question.options]
    best = max(values) if highest else min(values)
    tied = [o for o, v in zip(question.options, values) if v == best]
    return sum(o.correct for o in tied) / len(tied)


def _tick(question: QuestionPack, chosen: list[bool]) -> float:
    if not any(chosen):
        chosen = [True] * len(question.options)  # nothing singled out: a blind member ticks all
    return float(all(c == o.correct for c, o in zip(chosen, question.options)))


def _longest(q: QuestionPack) -> float:
    if q.kind == "single":
        return _pick_extreme(q, _length, highest=True)
    lengths = [_length(o) for o in q.options]
    return _tick(q, [n > mean(lengths) for n in lengths])


def _shortest(q: QuestionPack) -> float:
    if q.kind == "single":
        return _pick_extreme(q, _length, highest=False)
    lengths = [_length(o) for o in q.options]
    return _tick(q, [n < mean(lengths) for n in lengths])


def _most_hedged(q: QuestionPack) -> float:
    if q.kind == "single":
        return _pick_extreme(q, lambda o: hedge_count(o.text), highest=True)
    return _tick(q, [hedge_count(o.text) > 0 for o in q.options])


def _avoid_absolutes(q: QuestionPack) -> float:
    if q.kind == "single":
        return _pick_extreme(q, lambda o: absolute_count(o.text), highest=False)
    return _tick(q, [absolute_count(o.text) == 0 for o in q.options])


def _fixed_position(q: QuestionPack) -> float:
    # The order is shuffled for each attempt, so any fixed place on the page is a random option;
    # on a select-all question the member ticks that one box alone.
    keys = sum(o.correct for o in q.options)
    return 1 / len(q.options) if keys == 1 else 0.0


def _tick_all(q: QuestionPack) -> float:
    if q.kind == "single":
        return 1 / len(q.options)  # one radio only: a guess
    return _tick(q, [True] * len(q.options))


#: name -> (description, probability of a right answer per question)
STRATEGIES: dict[str, tuple[str, Callable[[QuestionPack], float]]] = {
    "longest": ("pick the longest option (select-all: the longer than average)", _longest),
    "shortest": ("pick the shortest option (select-all: the shorter than average)", _shortest),
    "most-hedged": ("pick the most hedged option (select-all: every hedged one)", _most_hedged),
    "avoid-absolutes": ("pick the option with the fewest absolutes (select-all: every one "
                        "without)", _avoid_absolutes),
    "fixed-position": ("always the same place on the page (options are shuffled, so a guess; "
                       "select-all: that one box)", _fixed_position),
    "tick-all": ("select-all: tick every box (single answer: a guess)", _tick_all),
}


# --- the exact pass rate of a first attempt ------------------------------------------------------

def _topic_distribution(probabilities: tuple[float, ...], k: int) -> list[float]:
    """P(s right) when k of these questions are drawn uniformly, each right with its probability."""
    # poly[j][s]: sum over j-subsets of P(s right within the subset).
    poly = [[0.0] * (k + 1) for _ in range(k + 1)]
    poly[0][0] = 1.0
    for p in probabilities:
        for j in range(k, 0, -1):
            row, below = poly[j], poly[j - 1]
            for s in range(j, -1, -1):
                row[s] += below[s] * (1 - p) + (below[s - 1] * p if s else 0.0)
    total = comb(len(probabilities), k)
    return [x / total for x in poly[k]]


def _convolve(a: list[float], b: list[float]) -> list[float]:
    out = [0.0] * (len(a) + len(b) - 1)
    for i, x in enumerate(a):
        if x:
            for j, y in enumerate(b):
                out[i + j] += x * y
    return out


def _compositions(total: int, limits: list[int]):
    """Every way to split ``total`` into len(limits) parts, part i at most limits[i]."""
    if not limits:
        if total == 0:
            yield ()
        return
    for first in range(min(total, limits[0]) + 1):
        for rest in _compositions(total - first, limits[1:]):
            yield (first, *rest)


def correct_count_distribution(per_topic: dict[str, list[float]], minimum_per_topic: dict[str, int],
                               draw: int) -> list[float]:
    """P(n right) for n = 0..draw on a first attempt, given each question's chance of being right."""
    topics = sorted(per_topic)
    minimums = [min(minimum_per_topic.get(t, 0), len(per_topic[t])) for t in topics]
    spare = [len(per_topic[t]) - m for t, m in zip(topics, minimums)]
    extra = draw - sum(minimums)
    ways = comb(sum(spare), extra)

    @cache
    def within(topic_index: int, k: int) -> tuple[float, ...]:
        return tuple(_topic_distribution(tuple(per_topic[topics[topic_index]]), k))

    result = [0.0] * (draw + 1)
    for split in _compositions(extra, spare):
        weight = 1.0
        for s, e in zip(spare, split):
            weight *= comb(s, e)
        weight /= ways
        dist = [1.0]
        for index, (m, e) in enumerate(zip(minimums, split)):
            dist = _convolve(dist, list(within(index, m + e)))
        for n, p in enumerate(dist):
            result[n] += weight * p
    return result


def needed_to_pass(draw: int, pass_mark: int) -> int:
    """The fewest right answers that pass (the engine scores 100 * right // draw >= pass mark)."""
    return next(n for n in range(draw + 1) if 100 * n // draw >= pass_mark)


# --- the report ----------------------------------------------------------------------------------

@dataclass
class ItemCue:
    """A question whose key stands out by its form."""

    key: str
    line: int
    cue: str


@dataclass
class CueReport:
    """The cue figures of one version and the thresholds they are held to."""

    single_questions: int
    key_longest: int
    key_to_wrong_length: float        # median over single-answer questions of key / mean wrong
    pass_rates: dict[str, float]      # strategy -> % of first attempts passed
    grade_keys: float
    grade_wrong: float
    limits: dict[str, float]
    items: list[ItemCue] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)   # (field, message)

    @property
    def key_longest_percent(self) -> float:
        """The key-longest share of single-answer questions, in percent."""
        return 100 * self.key_longest / self.single_questions if self.single_questions else 0.0

    @property
    def best_strategy(self) -> str:
        """The scenario-blind strategy that passes most often."""
        return max(self.pass_rates, key=lambda topic: self.pass_rates[topic])

    def as_dict(self) -> dict:
        """The ``cues`` member of ``content check --json``."""
        return {
            "method": "exact",
            "key_longest": {"questions": self.key_longest, "of": self.single_questions,
                            "percent": round(self.key_longest_percent, 1)},
            "key_to_wrong_length": round(self.key_to_wrong_length, 2),
            "blind_pass_rate": {name: round(rate, 2) for name, rate in self.pass_rates.items()},
            "best_blind_strategy": self.best_strategy,
            "reading_grade": {"keys": round(self.grade_keys, 1), "wrong": round(self.grade_wrong, 1)},
            "thresholds": self.limits,
            "items": [{"id": i.key, "line": i.line, "cue": i.cue} for i in self.items],
            "passed": not self.failures,
        }


def _item_cues(q: QuestionPack) -> list[str]:
    """What about this question's options points at the key, in words an author can act on."""
    keys = [o for o in q.options if o.correct]
    wrong = [o for o in q.options if not o.correct]
    if not wrong:
        return []
    cues = []
    if q.kind == "single":
        (key,) = keys
        others = max(_length(o) for o in wrong)
        if _length(key) > others and _length(key) >= _STANDOUT * mean(_length(o) for o in wrong):
            cues.append(f"key is the longest option by {_length(key) / mean(map(_length, wrong)):.1f}x")
        if _length(key) < min(_length(o) for o in wrong) and \
                _length(key) * _STANDOUT <= mean(_length(o) for o in wrong):
            cues.append("key is the shortest option by far")
        if hedge_count(key.text) and not any(hedge_count(o.text) for o in wrong):
            cues.append("key is the only hedged option")
        if not absolute_count(key.text) and all(absolute_count(o.text) for o in wrong):
            cues.append("key is the only option without an absolute word")
    else:
        if min(map(_length, keys)) > max(map(_length, wrong)):
            cues.append("every key is longer than every wrong option")
        if all(absolute_count(o.text) for o in wrong) and not any(absolute_count(o.text) for o in keys):
            cues.append("absolute words mark exactly the wrong options")
    return cues


def measure(version: VersionPack, limits: dict[str, float] | None = None) -> CueReport:
    """Measure the surface cues of a version's bank and hold them to the pack's thresholds."""
    limits = {**DEFAULT_LIMITS, **(limits if limits is not None else version.cue_limits)}
    singles = [q for q in version.questions if q.kind == "single"]
    key_longest = 0
    ratios = []
    for q in singles:
        key = next(o for o in q.options if o.correct)
        wrong = [_length(o) for o in q.options if not o.correct]
        if _length(key) > max(wrong, default=0):
            key_longest += 1
        if wrong:
            ratios.append(_length(key) / mean(wrong))
    need = needed_to_pass(version.draw_size, version.pass_mark)
    rates = {}
    for name, (_, strategy) in STRATEGIES.items():
        per_topic: dict[str, list[float]] = {}
        for q in version.questions:
            per_topic.setdefault(q.topic, []).append(strategy(q))
        dist = correct_count_distribution(per_topic, version.minimum_per_topic, version.draw_size)
        rates[name] = 100 * sum(dist[need:])
    key_texts = [o.text for q in version.questions for o in q.options if o.correct]
    wrong_texts = [o.text for q in version.questions for o in q.options if not o.correct]
    report = CueReport(
        single_questions=len(singles), key_longest=key_longest,
        key_to_wrong_length=median(ratios) if ratios else 0.0, pass_rates=rates,
        grade_keys=mean(map(reading_grade, key_texts)) if key_texts else 0.0,
        grade_wrong=mean(map(reading_grade, wrong_texts)) if wrong_texts else 0.0,
        limits=limits)
    for q in version.questions:
        report.items.extend(ItemCue(q.key, q.line, cue) for cue in _item_cues(q))

    worst = report.best_strategy
    if rates[worst] > limits["max_blind_pass_rate"]:
        report.failures.append(("max_blind_pass_rate",
                                f"a member who picks by form ({worst}: {STRATEGIES[worst][0]}) "
                                f"passes {rates[worst]:.1f}% of first attempts, above "
                                f"{limits['max_blind_pass_rate']:g}%"))
    if report.key_longest_percent > limits["max_key_longest"]:
        report.failures.append(("max_key_longest",
                                f"the key is the longest option in {key_longest} of {len(singles)} "
                                f"single-answer questions ({report.key_longest_percent:.0f}%), above "
                                f"{limits['max_key_longest']:g}%"))
    gap = report.grade_keys - report.grade_wrong
    if abs(gap) > limits["max_grade_gap"]:
        report.failures.append(("max_grade_gap",
                                f"keys read at grade {report.grade_keys:.1f} and wrong options at "
                                f"{report.grade_wrong:.1f} (Flesch-Kincaid), {abs(gap):.1f} apart, "
                                f"above {limits['max_grade_gap']:g}"))
    return report


def check_packs(packs) -> tuple[list[str], list[str]]:
    """Cue problems (above the pack's thresholds) and item notes for every version of ``packs``,
    each as "file:line: ..." naming the field or the question."""
    problems, notes = [], []
    for pack in packs:
        for version in pack.versions:
            report = measure(version)
            for name, message in report.failures:
                line = version.cue_lines.get(name)
                where = f"{version.quiz_file}:{line}" if line else version.quiz_file
                problems.append(f"{where}: settings.cues.{name}: {message}")
            for item in report.items:
                notes.append(f"{version.quiz_file}:{item.line} question {item.key}: {item.cue}")
    return problems, notes
