"""`badgewatch inspect FILE` on pages saved the ways people save them (``fixtures/saved/``):

* ``complete_write``: a "网页，全部" save (Chrome: ``name.html`` beside ``name_files/``, references
  rewritten to ``./name_files/…``, the ``saved from url`` comment) whose footer script
  ``document.writeln()``s the CONAC embed code, the ICP, 公安 and 标识码 numbers;
* ``complete_innerhtml``: a Firefox-style save (no saved-from comment) whose ``foot.js`` assigns the
  footer, a blue badge among it, to ``innerHTML``;
* ``mirror``: a ``wget -m -H`` mirror (``www.bdmzj.gov.cn/…`` and ``dcs.conac.cn/…`` side by side),
  root-relative and absolute references, a GB18030 footer script, the CONAC badge script saved too;
* ``complete_missing``: a save whose footer script was not saved;
* ``traversal``: crafted references that point outside the saved folder;
* ``render``: a footer whose badge only a browser can build (for ``--render``).

A browser's DOM save usually also holds what the scripts wrote; these saves hold only the scripts (as a
mirror, a "仅 HTML" save with its scripts copied beside it, or a save with scripts off do), the case
where reading the scripts decides. Every page is copied under ``tmp_path`` first, so folder names above
it never look like a mirror's host folder.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from click.testing import CliRunner, Result

import badgewatch
from crawler.flow import RawResponse
from crawler.saved import NOT_SAVED, OUTSIDE, STAND_IN_HOST, LocalFetcher, locate

FIXTURES = Path(__file__).parent / "fixtures" / "saved"
WRITE_PAGE = "保定市人力资源和社会保障局.html"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _copy(tmp_path: Path, name: str) -> Path:
    dest = tmp_path / "saves" / name
    shutil.copytree(FIXTURES / name, dest, symlinks=True)
    return dest


def _run(tmp_path: Path, *args: str, **env: str) -> Result:
    # No nameserver answers and no database exists: inspect FILE must need neither.
    base = {
        "BADGEWATCH_NAMESERVERS": "127.0.0.1:9",
        "BADGEWATCH_DATABASE_URL": f"sqlite:///{tmp_path / 'absent.db'}",
    }
    return CliRunner().invoke(badgewatch.cli, ["inspect", *args], env={**base, **env})


def _json(tmp_path: Path, *args: str, **env: str) -> dict[str, Any]:
    result = _run(tmp_path, *args, "--json", **env)
    assert result.exit_code == 0, result.output
    out: dict[str, Any] = json.loads(result.stdout)
    return out


# --- reading the footer the saved scripts write -------------------------------------------------------


def test_complete_save_reads_footer_written_by_document_write(tmp_path: Path) -> None:
    folder = _copy(tmp_path, "complete_write")
    out = _json(tmp_path, str(folder))  # the folder: its one page is inspected
    badge = out["badge"]
    assert badge["code"] == "CA051060000414687680001"
    assert (badge["shape"], badge["source"]) == ("script_built", "script")
    # The CONAC script itself was not saved: the badge is there, its colour cannot be read offline.
    assert (badge["status"], badge["reason"], badge["kind"]) == ("pass", "badge.displayed", None)
    assert badge["unit_kind"] is None
    assert out["icp"]["number"] == "冀ICP备05003092号-7" and out["icp"]["linked"] == "current"
    assert out["police"]["number"] == "冀公网安备13060202000188号"
    # Nobody said whether this is a 政府网站: the code is reported, the requirement not judged.
    assert (out["site_code"]["status"], out["site_code"]["reason"]) == ("unknown", "site_code.not_judged")
    assert out["site_code"]["value"] == "1306000025"
    assert "http" not in out  # no fetch happened

    judged = _json(tmp_path, str(folder / WRITE_PAGE), "--kind", "党政机关")
    # With a kind to judge against, an unreadable colour is unknown (never a failure).
    assert (judged["badge"]["status"], judged["badge"]["reason"]) == ("unknown", "badge.script_unavailable")
    assert "dcs.conac.cn" in judged["badge"]["detail"]


def test_complete_save_text_output_says_how_the_page_was_read(tmp_path: Path) -> None:
    folder = _copy(tmp_path, "complete_write")
    result = _run(tmp_path, str(folder / WRITE_PAGE))
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "页面地址  http://rsj.baoding.gov.cn/（取自文件开头的 saved from 注释）" in text
    assert "保定市人力资源和社会保障局_files/footer.js" in text.split("已读取", 1)[1].splitlines()[0]
    assert "未能读取  http://dcs.conac.cn/js/05/106/0000/41468768/CA051060000414687680001.js" in text
    assert "单位类别  未指定" in text


def test_innerhtml_footer_and_a_blue_badge_without_kind_is_reported_not_judged(tmp_path: Path) -> None:
    folder = _copy(tmp_path, "complete_innerhtml")
    out = _json(tmp_path, str(folder / "index.html"))
    badge = out["badge"]
    assert (badge["status"], badge["reason"]) == ("pass", "badge.displayed")
    assert badge["kind"] == "事业单位" and badge["kind_from"] == "image"
    assert badge["verify_id"] == "5C1E7A3B9D2F4E6081A2B3C4D5E6F708"
    assert "蓝色" in badge["detail"]
    assert out["icp"]["number"] == "冀ICP备12011234号-1"
    assert out["police"]["number"] == "冀公网安备13060202000456号"

    # Given a kind, the kind is judged: red expected, blue shown.
    red = _json(tmp_path, str(folder / "index.html"), "--kind", "党政机关")
    assert (red["badge"]["status"], red["badge"]["reason"]) == ("fail", "badge.wrong_kind")
    blue = _json(tmp_path, str(folder / "index.html"), "--kind", "事业单位")
    assert (blue["badge"]["status"], blue["badge"]["reason"]) == ("pass", "badge.ok")
    # A 事业单位 site needs no 标识码 (docs/checks.md): that much is decided without a registry.
    assert blue["site_code"]["reason"] == "site_code.not_required"


def test_mirrored_site_maps_root_relative_absolute_and_other_hosts(tmp_path: Path) -> None:
    mirror = _copy(tmp_path, "mirror")
    out = _json(tmp_path, str(mirror / "www.bdmzj.gov.cn"), "--kind", "党政机关")
    badge = out["badge"]
    # footer.js (root-relative, GB18030) wrote the embed; the CONAC script saved under dcs.conac.cn/
    # gave the kind and the verification id.
    assert (badge["status"], badge["reason"]) == ("pass", "badge.ok")
    assert (badge["kind"], badge["kind_from"]) == ("党政机关", "script")
    assert badge["code"] == "CA051060000201805230001"
    assert badge["verify_id"] == "8E4D2A6C1B3F5E7092A4C6E8F1B3D5A7"
    assert out["icp"]["number"] == "冀ICP备08102345号"
    assert out["police"]["number"] == "冀公网安备13060202000311号"
    assert out["site_code"]["value"] == "1306000031"

    text = _run(tmp_path, str(mirror / "www.bdmzj.gov.cn" / "index.html")).stdout
    assert "页面地址  http://www.bdmzj.gov.cn/index.html（取自镜像目录的主机名文件夹）" in text
    read = text.split("已读取", 1)[1].splitlines()[0]
    assert "www.bdmzj.gov.cn/js/common.js" in read  # written as http://www.bdmzj.gov.cn/js/common.js
    assert "dcs.conac.cn/js/05/106/0000/20180523/CA051060000201805230001.js" in read


# --- what could not be loaded is unknown, never missing ----------------------------------------------


def test_missing_script_makes_verdicts_unknown_not_missing(tmp_path: Path) -> None:
    folder = _copy(tmp_path, "complete_missing")
    for kind in ((), ("--kind", "党政机关")):
        out = _json(tmp_path, str(folder / "index.html"), *kind)
        assert (out["badge"]["status"], out["badge"]["reason"]) == ("unknown", "badge.script_unavailable")
        assert "index_files/footer.js" in out["badge"]["detail"]
        for check in ("icp", "police"):
            assert (out[check]["status"], out[check]["reason"]) == ("unknown", f"{check}.unconfirmed")
        assert not any(v["reason"].endswith(".missing") for v in out.values())

    text = _run(tmp_path, str(folder / "index.html")).stdout
    assert f"未能读取  http://www.bdsjj.gov.cn/index_files/footer.js：{NOT_SAVED}" in text


def test_a_missing_frame_is_unknown_not_missing(tmp_path: Path) -> None:
    page = tmp_path / "save" / "index.html"
    page.parent.mkdir(parents=True)
    page.write_text(
        "<!DOCTYPE html>\n<!-- saved from url=(0023)http://www.bdxf.gov.cn/ -->\n"
        "<html><head><meta charset='utf-8'><title>保定市信访局</title></head><body>"
        "<div class='main'><h1>保定市信访局</h1></div>"
        "<div class='footer'><iframe src='./index_files/foot.html' frameborder='0' scrolling='no'></iframe>"
        "</div></body></html>",
        encoding="utf-8",
    )
    out = _json(tmp_path, str(page), "--kind", "党政机关")
    assert (out["badge"]["status"], out["badge"]["reason"]) == ("unknown", "badge.script_unavailable")
    assert "index_files/foot.html" in out["badge"]["detail"]


def test_saved_frame_beside_the_page_is_read(tmp_path: Path) -> None:
    save = tmp_path / "save"
    (save / "index_files").mkdir(parents=True)
    (save / "index.html").write_text(
        "<html><head><meta charset='utf-8'></head><body><div class='footer'>"
        "<iframe src='./index_files/foot.html'></iframe></div></body></html>",
        encoding="utf-8",
    )
    (save / "index_files" / "foot.html").write_text(
        "<html><head><meta charset='utf-8'></head><body><p>"
        "<a href='http://bszs.conac.cn/sitename?method=show&id=0123456789ABCDEF0123456789ABCDEF'>"
        "<img src='http://dcs.conac.cn/image/red.png'></a></p></body></html>",
        encoding="utf-8",
    )
    out = _json(tmp_path, str(save / "index.html"), "--kind", "党政机关")
    assert (out["badge"]["status"], out["badge"]["reason"], out["badge"]["source"]) == (
        "pass",
        "badge.ok",
        "frame",
    )


# --- nothing outside the saved folder is read ---------------------------------------------------------

SECRET_JS = (
    'document.writeln("<p><a href=\\"https://beian.miit.gov.cn/\\">冀ICP备99999999号</a></p>");\n'
    "document.writeln(\"<a href='http://bszs.conac.cn/sitename?method=show&id=FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF'>"
    "<img src='http://dcs.conac.cn/image/red.png'></a>\");\n"
)


def test_path_traversal_is_never_read(tmp_path: Path) -> None:
    folder = _copy(tmp_path, "traversal")
    secret = folder.parent / "secret.js"  # beside the saved folder: outside it
    secret.write_text(SECRET_JS, encoding="utf-8")
    (folder / "page_files" / "link.js").symlink_to(secret)
    out = _json(tmp_path, str(folder / "page.html"), "--kind", "党政机关")
    assert out["badge"]["status"] == "unknown" and out["badge"]["reason"] == "badge.script_unavailable"
    assert out["icp"]["reason"] == "icp.unconfirmed"
    assert "99999999" not in json.dumps(out, ensure_ascii=False)

    text = _run(tmp_path, str(folder / "page.html")).stdout
    refused = [line for line in text.splitlines() if line.startswith("未能读取") and OUTSIDE in line]
    assert len(refused) == 4, text  # %2e%2e twice, ..%2f and the symbolic link
    assert not any(line.startswith("已读取") for line in text.splitlines()), text


@pytest.mark.parametrize(
    "url",
    [
        "http://www.bdtjj.gov.cn/page_files/%2e%2e/%2e%2e/secret.js",
        "http://www.bdtjj.gov.cn/page_files/..%2f..%2fsecret.js",
        "http://www.bdtjj.gov.cn/%2E%2E/secret.js",
        "http://www.bdtjj.gov.cn/page_files/x.js?/../../../secret.js",
        "http://%2e%2e/secret.js",
        "http://www.bdtjj.gov.cn/page_files/link.js",
        "file:///etc/passwd",
    ],
)
def test_local_fetcher_refuses_what_lies_outside(tmp_path: Path, url: str) -> None:
    folder = _copy(tmp_path, "traversal")
    (folder.parent / "secret.js").write_text(SECRET_JS, encoding="utf-8")
    (folder / "page_files" / "link.js").symlink_to(folder.parent / "secret.js")
    (folder / "page_files" / "x.js").write_text("var x = 1;", encoding="utf-8")
    fetcher = LocalFetcher(locate(folder / "page.html"))
    path, _why = fetcher.resolve(url)
    # Nothing outside; the query case falls back to the file without its query (x.js), as wget names it.
    assert path is None or (path.is_relative_to(folder) and path.read_text() == "var x = 1;")


def test_local_fetcher_serves_the_page_and_answers_404(tmp_path: Path) -> None:
    import asyncio

    folder = _copy(tmp_path, "complete_write")
    saved = locate(folder / WRITE_PAGE)
    assert (saved.url, saved.url_from, saved.root) == ("http://rsj.baoding.gov.cn/", "saved_from", folder)
    fetcher = LocalFetcher(saved)

    async def get(url: str) -> RawResponse:
        return await fetcher.get(url, maxsize=1 << 20)

    page = asyncio.run(get("http://rsj.baoding.gov.cn"))  # as a browser asks for it: "/" added
    assert page.status == 200 and page.body == (folder / WRITE_PAGE).read_bytes()
    # As the page's "./保定市…_files/footer.js" resolves: percent-encoded, as a browser sends it.
    footer = asyncio.run(get("http://rsj.baoding.gov.cn/" + quote(WRITE_PAGE[:-5] + "_files/footer.js")))
    assert footer.status == 200 and footer.headers["Content-Type"] == "text/javascript"
    absent = asyncio.run(get("http://rsj.baoding.gov.cn/js/none.js"))
    assert absent.status == 404 and fetcher.missing["http://rsj.baoding.gov.cn/js/none.js"] == NOT_SAVED


def test_page_without_address_gets_a_stand_in_and_root_relative_paths_stay_beside_it(tmp_path: Path) -> None:
    save = tmp_path / "save"
    (save / "js").mkdir(parents=True)
    (save / "首页.html").write_text(
        "<html><head><meta charset='utf-8'></head><body><div id='ft'>"
        "<script src='/js/foot.js'></script></div></body></html>",
        encoding="utf-8",
    )
    (save / "js" / "foot.js").write_text(
        "document.write('<p>冀ICP备05003092号 冀公网安备 13060202000101号</p>');", encoding="utf-8"
    )
    saved = locate(save / "首页.html")
    assert saved.url == f"http://{STAND_IN_HOST}/%E9%A6%96%E9%A1%B5.html" and saved.url_from == "stand_in"
    out = _json(tmp_path, str(save / "首页.html"))
    assert out["icp"]["number"] == "冀ICP备05003092号"
    assert out["police"]["number"] == "冀公网安备13060202000101号"


def test_where_the_address_comes_from(tmp_path: Path) -> None:
    # A browser's save inside a folder named like a host is no mirror: name_files/ beside it says so.
    save = tmp_path / "www.bdxf.gov.cn"
    (save / "page_files").mkdir(parents=True)
    (save / "page.html").write_text("<html><body>保定市信访局</body></html>", encoding="utf-8")
    saved = locate(save / "page.html")
    assert (saved.url_from, saved.root) == ("stand_in", save)
    # The same page alone in that folder is a mirror's page.
    shutil.rmtree(save / "page_files")
    saved = locate(save / "page.html")
    assert (saved.url, saved.url_from, saved.root) == ("http://www.bdxf.gov.cn/page.html", "mirror", tmp_path)
    # An absolute <base href> names the site; --site is used only when the file says nothing.
    other = tmp_path / "other"
    other.mkdir()
    (other / "a.html").write_text('<html><head><base href="http://www.bdly.gov.cn/"></head></html>')
    (other / "b.html").write_text("<html><body></body></html>")
    assert locate(other / "a.html", "http://www.bdly.gov.cn/").url == "http://www.bdly.gov.cn/a.html"
    assert locate(other / "b.html", "http://www.bdly.gov.cn/").url_from == "site"


# --- the target and the registry ----------------------------------------------------------------------


@pytest.mark.parametrize("target", ["missing.html", "saves/page.html", "./page.html", "/nonexistent/x.htm"])
def test_missing_file_is_refused_with_nonzero_exit(tmp_path: Path, target: str) -> None:
    result = _run(tmp_path, target)
    assert result.exit_code != 0
    assert "文件不存在" in result.stderr and not result.stdout


def test_folder_without_a_page_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = _run(tmp_path, str(empty))
    assert result.exit_code != 0 and "目录中没有网页文件" in result.stderr


REGISTRY = (
    "编办代码,机构名称,统一社会信用代码,机构类别,中文域名,英文域名,网站名称,网站地址,ICP备案号,公安备案号,"
    "政府网站标识码,网站标识代码,标识状态,职能审核,域名到期日,联系邮箱,联系手机\n"
    "130600,保定市第一中心医院,121306004017503283,事业单位,保定市第一中心医院.公益,www.bdyzx.org.cn,"
    "保定市第一中心医院,http://www.bdyzx.org.cn/,冀ICP备12011234号-1,冀公网安备 13060202000456号,,,"
    "已通过,是,2028-06-30,xxk@bdyzx.example.cn,13803125976\n"
)
OFFICES = "编办代码,编办名称,上级编办代码,机构数\n130600,保定市编办,,412\n"


def _registry_db(tmp_path: Path) -> dict[str, str]:
    env = {
        "BADGEWATCH_DATABASE_URL": f"sqlite:///{tmp_path / 'registry.db'}",
        "BADGEWATCH_NAMESERVERS": "127.0.0.1:9",
    }
    (tmp_path / "registry.csv").write_text(REGISTRY, encoding="utf-8")
    (tmp_path / "offices.csv").write_text(OFFICES, encoding="utf-8")
    runner = CliRunner()
    for args in (
        ["init"],
        ["registry", "import", str(tmp_path / "registry.csv"), "--offices", str(tmp_path / "offices.csv")],
    ):
        result = runner.invoke(badgewatch.cli, args, env=env)
        assert result.exit_code == 0, result.output
    return env


def test_site_option_judges_against_the_registry_entry(tmp_path: Path) -> None:
    env = _registry_db(tmp_path)
    page = str(_copy(tmp_path, "complete_innerhtml") / "index.html")
    result = _run(tmp_path, page, "--site", "www.bdyzx.org.cn", "--json", **env)
    assert result.exit_code == 0, result.output
    assert "按登记信息判定：保定市第一中心医院（事业单位）" in result.stderr
    out = json.loads(result.stdout)
    # The registry's kind (事业单位) is judged, its numbers compared, its 标识码 requirement applied.
    assert (out["badge"]["reason"], out["badge"]["unit_kind"]) == ("badge.ok", "事业单位")
    assert out["icp"]["reason"] == "icp.ok"
    assert out["police"]["reason"] == "police.ok"
    assert out["site_code"]["reason"] == "site_code.not_required"

    # --kind wins over the registry, and says so.
    red = _run(tmp_path, page, "--site", "https://www.bdyzx.org.cn", "--kind", "党政机关", "--json", **env)
    assert "单位类别按 --kind 判定为党政机关（登记为事业单位）" in red.stderr
    assert json.loads(red.stdout)["badge"]["reason"] == "badge.wrong_kind"


def test_site_option_without_database_or_entry_says_so_and_judges_with_what_was_given(tmp_path: Path) -> None:
    page = str(_copy(tmp_path, "complete_innerhtml") / "index.html")
    result = _run(tmp_path, page, "--site", "http://www.bdyzx.org.cn/", "--json")
    assert result.exit_code == 0, result.output
    assert "未找到数据库" in result.stderr
    assert not (tmp_path / "absent.db").exists()  # looking never creates a database
    out = json.loads(result.stdout)
    assert (out["badge"]["reason"], out["badge"]["kind"]) == ("badge.displayed", "事业单位")
    assert out["icp"]["reason"] == "icp.not_in_registry"

    env = _registry_db(tmp_path)
    other = _run(tmp_path, page, "--site", "http://www.other.gov.cn/", "--kind", "事业单位", "--json", **env)
    assert other.exit_code == 0, other.output
    assert "登记信息中没有网站 http://www.other.gov.cn/" in other.stderr
    assert json.loads(other.stdout)["badge"]["reason"] == "badge.ok"


# --- --render: Chromium, every request served from the saved folder ------------------------------------


def _need_chromium() -> None:
    if shutil.which("chromium") is None and not Path("/usr/bin/chromium").exists():
        message = "Debian's chromium is not installed (scripts/system-deps.sh installs it)"
        if IN_CI:
            pytest.fail(message + "; CI must run the browser tests", pytrace=False)
        pytest.skip(message)


@pytest.mark.browser
def test_render_file_builds_the_badge_only_a_browser_can(tmp_path: Path) -> None:
    _need_chromium()
    folder = _copy(tmp_path, "render")
    static = _json(tmp_path, str(folder / "page.html"), "--kind", "党政机关")
    assert (static["badge"]["status"], static["badge"]["reason"]) == ("unknown", "badge.needs_render")

    result = _run(tmp_path, str(folder / "page.html"), "--kind", "党政机关", "--render")
    assert result.exit_code == 0, result.output
    assert "已渲染    Chromium" in result.stdout
    # The browser asked for the script beside the file and for the CONAC image (not saved: a 404).
    assert "page_files/footer.js" in result.stdout.split("已读取", 1)[1].splitlines()[0]
    assert "未能读取  http://dcs.conac.cn/image/red.png" in result.stdout
    rendered = _json(tmp_path, str(folder / "page.html"), "--kind", "党政机关", "--render")
    badge = rendered["badge"]
    assert (badge["status"], badge["reason"], badge["source"]) == ("pass", "badge.ok", "rendered")
    assert badge["verify_id"] == "1D3F5B7A9C2E40688ACE13579BDF2468"


def test_render_without_chromium_is_refused(tmp_path: Path) -> None:
    folder = _copy(tmp_path, "render")
    result = _run(
        tmp_path, str(folder / "page.html"), "--render", BADGEWATCH_CHROMIUM_PATH=str(tmp_path / "none")
    )
    assert result.exit_code != 0 and "未找到 Chromium" in result.stderr
