"""Generated blocks in Markdown files are replaced in place or appended."""

from vision3d.io.markdown import replace_marked_block


def test_replace_and_append(tmp_path):
    p = tmp_path / "r.md"
    p.write_text("# R\n\n<!-- t:start -->\nold \\1 text\n<!-- t:end -->\n\ntail\n")
    replace_marked_block(p, "t", "new | a \\1 b")
    text = p.read_text()
    assert "new | a \\1 b" in text and "old" not in text and text.endswith("tail\n")
    replace_marked_block(p, "u", "block u", heading="## U")
    assert p.read_text().rstrip().endswith("<!-- u:end -->") and "## U" in p.read_text()
