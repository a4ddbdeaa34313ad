"""The holdout stage: a stable side per key, so variants of a page or document never straddle the split."""

from datatrove.data import Document

from r1data.stages.holdout import Holdout, HoldoutConfig, holdout_key, in_holdout


def doc(i, url=None, root=None):
    md = {}
    if url:
        md["url"] = url
    if root:
        md["augmented_root"] = root
    return Document(text="x", id=i, metadata=md)


def test_keys_follow_url_path_and_original():
    assert holdout_key(doc("a", url="https://example.com/p/q?utm=1")) == "/p/q"
    # a mirror on another host with another query has the same key
    assert holdout_key(doc("b", url="http://mirror.example.org/p/q?x=2")) == "/p/q"
    assert holdout_key(doc("c", url="https://example.com")) == "/"
    assert holdout_key(doc("v1", root="orig-7")) == "orig-7"
    assert holdout_key(doc("plain")) == "plain"
    assert holdout_key(doc("d", url="https://example.com/p"), key="id") == "d"


def test_side_is_stable_and_fraction_is_respected():
    keys = [f"doc-{i}" for i in range(20_000)]
    held = [k for k in keys if in_holdout(k, 0.05, seed=0)]
    assert 0.04 < len(held) / len(keys) < 0.06
    # the same key and seed always land on the same side; non-ASCII keys hash too
    assert held == [k for k in keys if in_holdout(k, 0.05, seed=0)]
    assert in_holdout("ünïcødé/路径", 1.0, 0) and not in_holdout("ünïcødé/路径", 0.0, 0)
    assert [k for k in keys if in_holdout(k, 0.05, seed=1)] != held


def test_stage_drops_every_variant_of_a_held_out_page_together():
    stage = Holdout(HoldoutConfig(fraction=0.5, seed=3))
    pages = [doc(f"p{i}", url=f"https://a.example/{i}") for i in range(200)]
    mirrors = [doc(f"m{i}", url=f"https://b.example/{i}?ref=x") for i in range(200)]
    sides = [stage.keep(d) for d in pages]
    assert sides == [stage.keep(d) for d in mirrors]
    assert {s if s is True else s[1] for s in sides} == {True, "held_out"}
