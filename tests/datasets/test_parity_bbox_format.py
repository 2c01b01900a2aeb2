from minigpt4.tools.parity.families import bbox_format


def test_parity_bbox_format_passes(parity_dir):
    report = bbox_format.check(parity_dir / "functions" / "bbox_format.json")
    assert report.ok, report.line()
    assert report.total > 600
