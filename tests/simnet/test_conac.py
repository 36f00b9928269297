"""The CONAC services: badge scripts, images and verification pages agree with the registry and truth."""

from __future__ import annotations

import csv
import re
import struct

from simnet.ident import badge_script_path
from simnet.probe import fetch
from simnet.runtime import SimNet

IMAGE_RE = re.compile(r"//dcs\.conac\.cn/image/((?:red|blue)(?:_error)?)\.png")


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    w, h = struct.unpack(">II", data[16:24])
    return int(w), int(h)


def test_badge_images_are_80x80_pngs(simnet: SimNet) -> None:
    bodies = {}
    for name in ("red", "blue", "red_error", "blue_error"):
        got = fetch(simnet, f"http://dcs.conac.cn/image/{name}.png")
        assert got.reason == "http.ok" and got.headers["content-type"] == "image/png"
        assert _png_size(got.body) == (80, 80)
        bodies[name] = got.body
    assert len(set(bodies.values())) == 4


def test_badge_scripts_and_verification_pages(simnet: SimNet) -> None:
    with open(simnet.registry_path, encoding="utf-8-sig") as f:
        rows = {r["网站地址"]: r for r in csv.DictReader(f)}
    checked_scripts = checked_pages = 0
    for site in simnet.ground_truth["sites"]:
        badge = site["checks"]["badge"]
        row = rows[site["url"]]
        if "registered_code" in badge:
            assert row["网站标识代码"] == (badge["registered_code"] or "")
        if badge.get("code"):
            script = fetch(simnet, "http://dcs.conac.cn" + badge_script_path(badge["code"]))
            assert script.reason == "http.ok", site["scenario"]
            js = script.text()
            assert badge["verify_id"] in js
            image = IMAGE_RE.search(js)
            assert image is not None
            colour = "red" if badge["kind"] == "党政机关" else "blue"
            expected = colour + ("_error" if badge["reason"] == "badge.error_image" else "")
            assert image.group(1) == expected, site["scenario"]
            assert "_ideConac" in js and "innerHTML" in js
            if badge["reason"] == "badge.ok":
                assert badge["code"] == row["网站标识代码"], site["scenario"]
            checked_scripts += 1
        vid = badge.get("verify_id") or (badge.get("rendered") or {}).get("verify_id")
        if vid:
            page = fetch(simnet, f"http://bszs.conac.cn/sitename?method=show&id={vid}")
            assert page.reason == "http.ok"
            text = page.text()
            fields = dict(re.findall(r'data-field="([^"]+)">([^<]*)<', text))
            assert fields["机构类型"] == (badge.get("kind") or badge["rendered"]["kind"])
            own = fields["单位名称"] == site["unit"]["name"]
            others = ("badge.code_mismatch", "badge.id_mismatch")
            renamed = site["scenario"] == "badge.outdated_unit_name"  # issued under the former name
            assert own == (badge["reason"] not in others and not renamed), site["scenario"]
            if own or renamed:
                assert fields["网站名称"] == (site["site_name"] if own else fields["单位名称"] + "网")
                assert fields["证书编号"] == row["网站标识代码"], site["scenario"]
                moved = site["scenario"] == "badge.outdated_domain"  # lists the site's former host
                for d in site["domains"]:
                    assert (d in fields["网站域名"]) != moved, site["scenario"]
            checked_pages += 1
    assert checked_scripts > 30 and checked_pages > 40


def test_local_image_copy_has_the_same_bytes(simnet: SimNet) -> None:
    site = next(s for s in simnet.ground_truth["sites"] if s["scenario"] == "badge.local_image_copy")
    page = fetch(simnet, site["url"]).text()
    src = re.search(r'<img id="imgConac"[^>]*src="(/images/conac/\w+\.png)"', page)
    assert src is not None
    local = fetch(simnet, site["url"].rstrip("/") + src.group(1))
    official = fetch(simnet, "http://dcs.conac.cn/image/" + src.group(1).rsplit("/", 1)[1])
    assert local.body == official.body and _png_size(local.body) == (80, 80)


def test_unknown_verification_id_is_not_found(simnet: SimNet) -> None:
    got = fetch(simnet, "http://bszs.conac.cn/sitename?method=show&id=" + "0" * 32)
    assert got.status == 404


def test_badge_shapes_in_page(simnet: SimNet) -> None:
    """Spot checks of shapes a regex would get wrong: commented-out, class=, async, iframe, jquery."""
    by = {s["scenario"]: s for s in simnet.ground_truth["sites"]}
    page = fetch(simnet, by["badge.commented_out"]["url"]).text()
    assert "_ideConac" in page and re.sub(r"<!--.*?-->", "", page, flags=re.S).count("_ideConac") == 0
    page = fetch(simnet, by["badge.class_quirk"]["url"]).text()
    assert 'class="_ideConac"' in page and 'id="_ideConac"' not in page
    page = fetch(simnet, by["badge.async_wrapper"]["url"]).text()
    assert re.search(r"<script[^>]*\basync\b[^>]*src=\"(/js/[^\"]+)\"", page)
    page = fetch(simnet, by["badge.jquery_append"]["url"]).text()
    assert "conac.cn" not in page and "jquery" in page
    iframe = by["badge.iframe"]
    page = fetch(simnet, iframe["url"]).text()
    src = re.search(r'<iframe src="([^"]+)"', page)
    assert src and "conac" not in re.sub(r"<iframe[^>]*>", "", page)
    inner = fetch(simnet, iframe["url"].rstrip("/") + src.group(1)).text()
    assert badge_script_path(iframe["checks"]["badge"]["code"]) in inner
    page = fetch(simnet, by["badge.rendered_dom"]["url"]).text()
    assert page.count('id="_ideConac"') == 2 and "%3Cspan id='_ideConac'" in page
