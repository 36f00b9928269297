"""Static evaluation of footer-writing JavaScript: each construct of domain.md §3.6; what stays dynamic."""

from __future__ import annotations

import pytest

from checks.badge_js import inserted_markup, string_value, unescape

A = '<a href="//bszs.conac.cn/sitename?method=show&id=X">'


@pytest.mark.parametrize(
    ("source", "markup"),
    [
        # document.write / writeln, several arguments, both quote kinds
        (f"document.write('{A}');", A),
        ("document.writeln(\"<p>a</p>\", '<p>b</p>');", "<p>a</p><p>b</p>"),
        # unescape with %XX and %uXXXX; decodeURIComponent
        (
            "document.write(unescape(\"%3Cspan id='_ideConac'%3E%u515A%3C/span%3E\"));",
            "<span id='_ideConac'>党</span>",
        ),
        ("document.write(decodeURIComponent('%3Cb%3E%E4%B8%AD%3C/b%3E'))", "<b>中</b>"),
        # escapes inside literals: \x, \u, \u{…}, octal-free \', \/ and line continuation
        ("document.write('\\x3Ca href=\\'x\\'\\u003E\\u{4E2D}<\\/a>')", "<a href='x'>中</a>"),
        ("document.write('<p>\\\n</p>')", "<p></p>"),
        # + concatenation, parentheses, numbers
        (
            "document.write('<img src=\"' + ('/a' + '.png') + '\" width=' + 80 + '>')",
            '<img src="/a.png" width=80>',
        ),
        # variables: var/let/const, comma declarations, += accumulation
        ("var s = '', t = '<i>'; s += t; s += '</i>'; document.write(s);", "<i></i>"),
        ("let h = '<u>'; h = h + 'x</u>'; el.innerHTML = h;", "<u>x</u>"),
        # innerHTML / outerHTML assignment and +=
        ("document.getElementById('f').innerHTML += '<em>1</em>';", "<em>1</em>"),
        # jQuery sinks and $('<markup>')
        (
            "$('#f').append('<b>1</b>').after(\"<b>2</b>\"); jQuery('#g').html('<b>3</b>');",
            "<b>1</b><b>2</b><b>3</b>",
        ),
        ("$('<a href=\"/x\">x</a>').appendTo('#f');", '<a href="/x">x</a>'),
        # insertAdjacentHTML
        ("el.insertAdjacentHTML('beforeend', '<s>1</s>');", "<s>1</s>"),
        # template literal without substitutions; [..].join
        ("document.write(`<q>1</q>`)", "<q>1</q>"),
        ("document.write(['<a>', 'b', '</a>'].join(''))", "<a>b</a>"),
        ("document.write(String.fromCharCode(60, 98, 62))", "<b>"),
        # comments are not code: //, /* */, <!-- (Annex B) and --> at line start
        (
            "// document.write('<x>');\n/* document.write('<y>') */\n<!-- document.write('<z>')\n--> x\n"
            "document.write('<w>')",
            "<w>",
        ),
    ],
)
def test_evaluates(source: str, markup: str) -> None:
    assert inserted_markup(source).markup == markup


@pytest.mark.parametrize(
    "source",
    [
        "document.write('<a href=\"' + location.host + '\">');",
        "$('#f').html(render(data));",
        "document.write(flag ? '<a>' : '<b>');",
        'el.innerHTML = `<a href="${url}">`;',
        "document.write(s.replace('a', 'b'));",
    ],
)
def test_dynamic_sinks_are_counted_not_guessed(source: str) -> None:
    out = inserted_markup(source)
    assert out.markup == ""
    assert out.dynamic == 1 and out.dynamic_excerpts


def test_getter_is_not_a_sink() -> None:
    out = inserted_markup("var x = $('#f').html(); var y = el.innerHTML;")
    assert out.sinks == 0 and out.markup == ""


def test_script_without_sink_is_not_tokenised() -> None:
    out = inserted_markup("var a = '<a href=\"//bszs.conac.cn/\">'; console.log(a);")
    assert out.sinks == 0


def test_unescape_and_string_value() -> None:
    assert unescape("%3C%u4E2D%zz") == "<中%zz"
    assert string_value("'a\\'b'") == "a'b"
    assert string_value('"\\101"') == "A"


def test_runaway_concatenation_is_bounded() -> None:
    src = "var s = 'x'; " + "s += s; " * 40 + "document.write(s);"
    out = inserted_markup(src)
    assert len(out.markup) <= 2_000_000
