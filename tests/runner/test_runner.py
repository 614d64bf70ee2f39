"""The staged runner: skip when current, rerun on change, --force, resume after a kill, atomic stage folders."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from vision3d.errors import InputError
from vision3d.runner import Runner, Stage, load_manifest


@dataclass
class Cfg:
    factor: int = 2


def make_stages(calls: list, cfg=None):
    def read(ctx):
        calls.append("read")
        n = int(ctx.inputs["number"].read_text())
        (ctx.out / "n.txt").write_text(str(n))
        return {"n": n}

    def mul(ctx):
        calls.append("mul")
        n = int((ctx.dep("read") / "n.txt").read_text())
        for i in range(3):
            ctx.progress(i + 1, 3)
        (ctx.out / "m.txt").write_text(str(n * ctx.config.factor))
        return {"m": n * ctx.config.factor}

    return [Stage("read", read, files=["number"], outputs=["n.txt"]),
            Stage("mul", mul, config=cfg or Cfg(), deps=["read"], outputs=["m.txt"])]


@pytest.fixture
def number(tmp_path):
    p = tmp_path / "number.txt"
    p.write_text("21")
    return p


def test_runs_then_skips(tmp_path, number):
    calls, events = [], []
    r = Runner(tmp_path / "run", "test", progress=events.append)
    res = r.run(make_stages(calls), {"number": number})
    assert res.ran == ["read", "mul"] and calls == ["read", "mul"]
    assert (tmp_path / "run/mul/m.txt").read_text() == "42"
    assert [e.done for e in events if e.kind == "progress"] == [1, 2, 3]
    res = r.run(make_stages(calls), {"number": number})
    assert res.skipped == ["read", "mul"] and calls == ["read", "mul"]
    m = load_manifest(tmp_path / "run")
    assert m["metrics"] == {"read.n": 21, "mul.m": 42}
    assert m["stages"]["mul"]["config"] == {"factor": 2}
    assert m["stages"]["mul"]["outputs"] == ["m.txt"]
    assert m["stages"]["read"]["seconds"] >= 0 and "torch" in m["versions"]
    assert m["inputs"]["number"]["sha256"]


def test_config_change_reruns_only_downstream(tmp_path, number):
    calls = []
    r = Runner(tmp_path / "run", "test")
    r.run(make_stages(calls), {"number": number})
    res = r.run(make_stages(calls, Cfg(factor=3)), {"number": number})
    assert res.ran == ["mul"] and res.skipped == ["read"]
    assert (tmp_path / "run/mul/m.txt").read_text() == "63"


def test_a_change_of_what_the_config_resolves_to_reruns(tmp_path, number):
    """A stage whose config names a preset reruns when the preset's values change (``resolved``), not only when
    the config itself does."""
    calls = []
    r = Runner(tmp_path / "run", "test")

    def stages(preset_values):
        read, mul = make_stages(calls)
        mul.resolved = preset_values
        return [read, mul]

    r.run(stages({"iterations": 10}), {"number": number})
    assert r.run(stages({"iterations": 10}), {"number": number}).skipped == ["read", "mul"]
    res = r.run(stages({"iterations": 20}), {"number": number})
    assert res.ran == ["mul"] and res.skipped == ["read"]


def test_input_content_change_reruns_everything(tmp_path, number):
    calls = []
    r = Runner(tmp_path / "run", "test")
    r.run(make_stages(calls), {"number": number})
    number.write_text("5")
    res = r.run(make_stages(calls), {"number": number})
    assert res.ran == ["read", "mul"]
    assert (tmp_path / "run/mul/m.txt").read_text() == "10"


def test_force_recomputes_from_stage(tmp_path, number):
    calls = []
    r = Runner(tmp_path / "run", "test")
    r.run(make_stages(calls), {"number": number})
    assert r.run(make_stages(calls), {"number": number}, force="mul").ran == ["mul"]
    assert r.run(make_stages(calls), {"number": number}, force="read").ran == ["read", "mul"]
    assert r.run(make_stages(calls), {"number": number}, force="all").ran == ["read", "mul"]
    with pytest.raises(InputError, match="unknown stage"):
        r.run(make_stages(calls), {"number": number}, force="nope")


def test_deleted_output_reruns(tmp_path, number):
    calls = []
    r = Runner(tmp_path / "run", "test")
    r.run(make_stages(calls), {"number": number})
    (tmp_path / "run/mul/m.txt").unlink()
    assert r.run(make_stages(calls), {"number": number}).ran == ["mul"]


def test_failed_stage_leaves_no_folder_and_resumes_from_scratch(tmp_path, number):
    """A stage killed halfway keeps its per-item checkpoints in scratch; its folder never appears half-done."""
    state = {"fail_at": 3}
    done_items = []

    def work(ctx):
        for i in range(5):
            ck = ctx.scratch / f"{i}.done"
            if ck.exists():
                continue
            if i == state["fail_at"]:
                raise RuntimeError("killed")
            done_items.append(i)
            ck.write_text("ok")
            (ctx.out / "partial.txt").write_text("x")
        (ctx.out / "all.txt").write_text(",".join(sorted(p.stem for p in ctx.scratch.iterdir())))

    stages = [Stage("work", work, outputs=["all.txt"])]
    r = Runner(tmp_path / "run", "test")
    with pytest.raises(RuntimeError):
        r.run(stages)
    assert not (tmp_path / "run/work").exists()
    assert not [p for p in (tmp_path / "run").iterdir() if p.name.endswith(".tmp")]
    man = json.loads((tmp_path / "run/manifest.json").read_text())
    assert man["stages"]["work"]["status"] == "failed" and "killed" in man["stages"]["work"]["error"]
    state["fail_at"] = -1
    res = r.run(stages)
    assert res.ran == ["work"]
    assert done_items == [0, 1, 2, 3, 4]  # 0..2 were not recomputed after the failure
    assert (tmp_path / "run/work/all.txt").read_text() == "0,1,2,3,4"
    assert not (tmp_path / "run/.partial").exists()


def test_missing_declared_output_fails(tmp_path):
    r = Runner(tmp_path / "run", "test")
    with pytest.raises(RuntimeError, match="did not write"):
        r.run([Stage("s", lambda ctx: None, outputs=["x.txt"])])
    assert not (tmp_path / "run/s").exists()


def test_bad_inputs(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        Runner(tmp_path / "run", "t").run([], {"x": tmp_path / "nope.mp4"})
    (tmp_path / "file").write_text("")
    with pytest.raises(InputError, match="not a folder"):
        Runner(tmp_path / "file", "t")
    with pytest.raises(ValueError, match="depends on"):
        Runner(tmp_path / "run", "t").run([Stage("b", lambda c: None, deps=["a"])])


def test_not_a_run_folder(tmp_path):
    with pytest.raises(InputError, match="not a vision3d run folder"):
        load_manifest(tmp_path)
