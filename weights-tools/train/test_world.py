"""The world's rules and the evaluator's accuracy on exact renders (they must agree 100%).

    weights-tools/.venv/bin/python -m pytest weights-tools/train/test_world.py
"""
import random

import pytest

from evaluate import parse, score, summarize
from world import HELD_OUT, RELATIONS, relation_holds, render, sample_scene


@pytest.mark.parametrize("canvas", [64, 128])
def test_evaluator_scores_ground_truth_renders_perfectly(canvas):
    rng = random.Random(canvas)
    scores = []
    for _ in range(300):
        scene = sample_scene(rng, canvas, held_out=rng.random() < 0.6)
        scores.append(score(scene["caption"], render(scene, canvas)))
    bad = [s for s in scores if not s["correct"]]
    assert not bad, bad[:5]
    summary = summarize(scores)
    assert summary["single"]["n"] > 50 and summary["two_object"]["n"] > 50 and summary["held_out"]["n"] > 10


def test_training_scenes_never_show_held_out_combinations():
    rng = random.Random(1)
    for _ in range(2000):
        scene = sample_scene(rng, 64)
        for o in scene["objects"]:
            assert (o["color"], o["shape"]) not in HELD_OUT


def test_relations_hold_and_captions_parse():
    rng = random.Random(2)
    for _ in range(500):
        scene = sample_scene(rng, 64, two_objects=True)
        a, b = scene["objects"]
        assert relation_holds(a, b, scene["relation"])
        wants, rel = parse(scene["caption"])
        assert rel == scene["relation"] and [w["color"] for w in wants] == [a["color"], b["color"]]


def test_articles_and_wrong_images():
    assert parse("an orange square")[0][0]["color"] == "orange"
    assert parse("a large blue circle to the left of a red square")[1] == "to the left of"
    with pytest.raises(ValueError):
        parse("a cat")
    rng = random.Random(3)
    scene = sample_scene(rng, 64, two_objects=False)
    other = dict(scene["objects"][0])
    other["color"] = "green" if other["color"] != "green" else "red"
    assert not score(f"a {other['color']} {other['shape']}", render(scene, 64))["correct"]


def test_contrastive_targets_mark_exactly_the_true_captions():
    """train.truth (vectorised, used for CLIP's targets) against a direct reading of the world's rules."""
    import torch
    from evaluate import matches
    from train import CHUNK, SEED, make_chunk, truth
    images, scenes, specs, relations, captions = make_chunk(0)
    n = 300
    t = truth(*(torch.from_numpy(a[:n]) for a in (scenes, specs, relations))).numpy()
    assert t.diagonal().all()                         # every caption is true of its own image
    rng = random.Random(0)
    gen = random.Random(f"{SEED}-pool-0")             # make_chunk(0)'s generator: the same scenes, read directly
    objs = [sample_scene(gen, 64)["objects"] for _ in range(n)]
    for _ in range(4000):
        i, j = rng.randrange(n), rng.randrange(n)
        wants, relation = parse(captions[j])
        if relation is None:
            want = len(objs[i]) == 1 and matches(objs[i][0], wants[0])
        else:
            a, b = (objs[i] + [None])[:2]
            want = len(objs[i]) == 2 and any(
                matches(x, wants[0]) and matches(y, wants[1]) and relation_holds(x, y, relation)
                for x, y in ((a, b), (b, a)))
        assert t[i, j] == want, (captions[j], objs[i])
    assert 0 < t.sum() - n                            # some captions are true of other images too
    assert CHUNK >= n
