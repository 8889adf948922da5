// Jinja statements, whitespace control and expressions, checked against Jinja2's documented
// behaviour (template designer docs; expected strings are what Jinja2 renders).
#include <gtest/gtest.h>

#include "render_helper.h"

namespace loom::jinja {
namespace {

using testing::plain;
using testing::render;

// ---- whitespace control ----

TEST(JinjaWhitespace, DataPassesThrough) {
  EXPECT_EQ(render("Hello\nworld"), "Hello\nworld");
}

TEST(JinjaWhitespace, OneTrailingNewlineIsDropped) {
  EXPECT_EQ(render("a\n"), "a");
  EXPECT_EQ(render("a\n\n"), "a\n");
  ParseOptions keep;
  keep.keep_trailing_newline = true;
  EXPECT_EQ(render("a\n", "{}", keep), "a\n");
}

TEST(JinjaWhitespace, CarriageReturnsAreNormalised) {
  EXPECT_EQ(render("a\r\nb\rc"), "a\nb\nc");
}

TEST(JinjaWhitespace, MinusStripsAllWhitespaceOnItsSide) {
  EXPECT_EQ(render("a  \n {{- 'x' -}} \n\n b", "{}", plain()), "axb");
  EXPECT_EQ(render("a \n{%- if true %}x{% endif -%}\n b", "{}", plain()), "axb");
  EXPECT_EQ(render("a \n {#- comment -#} \n b", "{}", plain()), "ab");
}

TEST(JinjaWhitespace, WithoutOptionsBlocksKeepTheirNewlines) {
  EXPECT_EQ(render("{% if true %}\n  x\n{% endif %}\n", "{}", plain()), "\n  x\n");
}

TEST(JinjaWhitespace, TrimBlocksRemovesFirstNewlineAfterBlockTag) {
  ParseOptions o = plain();
  o.trim_blocks = true;
  EXPECT_EQ(render("{% if true %}\nx\n{% endif %}\ny", "{}", o), "x\ny");
  // Not after a variable tag.
  EXPECT_EQ(render("{{ 'a' }}\nb", "{}", o), "a\nb");
  // Comments count as blocks.
  EXPECT_EQ(render("{# c #}\nb", "{}", o), "b");
  // Only one newline.
  EXPECT_EQ(render("{% if true %}\n\nx{% endif %}", "{}", o), "\nx");
  // "+%}" keeps it.
  EXPECT_EQ(render("{% if true +%}\nx{% endif %}", "{}", o), "\nx");
}

TEST(JinjaWhitespace, LstripBlocksRemovesIndentBeforeBlockTag) {
  ParseOptions o = plain();
  o.lstrip_blocks = true;
  EXPECT_EQ(render("  {% if true %}x{% endif %}", "{}", o), "x");
  EXPECT_EQ(render("a\n    {% if true %}x\n    {% endif %}b", "{}", o), "a\nx\nb");
  // Only when the tag starts the line.
  EXPECT_EQ(render("a  {% if true %}x{% endif %}", "{}", o), "a  x");
  // Not for variable tags.
  EXPECT_EQ(render("  {{ 'x' }}", "{}", o), "  x");
  // "{%+" keeps the indent.
  EXPECT_EQ(render("  {%+ if true %}x{% endif %}", "{}", o), "  x");
  // Comments too.
  EXPECT_EQ(render("a\n  {# c #}b", "{}", o), "a\nb");
}

TEST(JinjaWhitespace, TransformersDefaultsCombineBoth) {
  // The classic indented template renders without stray indentation or blank lines.
  std::string source =
      "{% for m in messages %}\n"
      "    {% if m.role == 'user' %}\n"
      "        U:{{ m.content }}\n"
      "    {% else %}\n"
      "        A:{{ m.content }}\n"
      "    {% endif %}\n"
      "{% endfor %}\n";
  EXPECT_EQ(
      render(
          source,
          R"({"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"yo"}]})"),
      "        U:hi\n        A:yo\n");
}

TEST(JinjaWhitespace, LstripAfterTrimmedNewlineAtLineStart) {
  // After "%}\n" is trimmed the next line's indent still counts as line start.
  EXPECT_EQ(render("{% set x = 1 %}\n  {% if x %}y{% endif %}"), "y");
}

TEST(JinjaWhitespace, RawBlockIsNotInterpreted) {
  EXPECT_EQ(render("{% raw %}{{ x }}{% if %}{% endraw %}"), "{{ x }}{% if %}");
  EXPECT_EQ(render("a {%- raw -%} {{ b }} {%- endraw -%} c"), "a{{ b }}c");
}

TEST(JinjaWhitespace, CommentsProduceNothing) {
  EXPECT_EQ(render("a{# {{ not rendered }} #}b", "{}", plain()), "ab");
}

// ---- statements ----

TEST(JinjaStatements, IfElifElse) {
  std::string t = "{% if x == 1 %}one{% elif x == 2 %}two{% else %}many{% endif %}";
  EXPECT_EQ(render(t, R"({"x":1})"), "one");
  EXPECT_EQ(render(t, R"({"x":2})"), "two");
  EXPECT_EQ(render(t, R"({"x":7})"), "many");
}

TEST(JinjaStatements, ForLoopVariables) {
  std::string t =
      "{% for x in items %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}"
      "{{ loop.first }}{{ loop.last }}{{ loop.length }}|{% endfor %}";
  EXPECT_EQ(render(t, R"({"items":["a","b"]})"), "1021TrueFalse2|2110FalseTrue2|");
}

TEST(JinjaStatements, ForPrevAndNextItem) {
  std::string t = "{% for x in [1,2,3] %}{{ loop.previtem }}-{{ loop.nextitem }};{% endfor %}";
  EXPECT_EQ(render(t), "-2;1-3;2-;");
}

TEST(JinjaStatements, ForCycle) {
  EXPECT_EQ(render("{% for x in range(4) %}{{ loop.cycle('a','b') }}{% endfor %}"), "abab");
}

TEST(JinjaStatements, ForWithFilterCountsOnlyKeptItems) {
  std::string t =
      "{% for x in range(6) if x is even %}{{ x }}:{{ loop.index }}/{{ loop.length }} {% endfor %}";
  EXPECT_EQ(render(t), "0:1/3 2:2/3 4:3/3 ");
}

TEST(JinjaStatements, ForElseRunsWhenEmpty) {
  EXPECT_EQ(render("{% for x in [] %}{{ x }}{% else %}empty{% endfor %}"), "empty");
  EXPECT_EQ(render("{% for x in [1] %}{{ x }}{% else %}empty{% endfor %}"), "1");
  EXPECT_EQ(render("{% for x in undefined_thing %}{{ x }}{% else %}none{% endfor %}"), "none");
}

TEST(JinjaStatements, ForUnpacksTuples) {
  EXPECT_EQ(
      render("{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}", R"({"d":{"b":1,"a":2}})"),
      "b=1;a=2;");
  EXPECT_EQ(
      render("{% for k, v in d|items %}{{ k }}={{ v }};{% endfor %}", R"({"d":{"b":1,"a":2}})"),
      "b=1;a=2;");
  EXPECT_EQ(render("{% for a, b in [[1, 2], (3, 4)] %}{{ a + b }} {% endfor %}"), "3 7 ");
}

TEST(JinjaStatements, ForOverDictGivesKeysAndOverStringGivesCharacters) {
  EXPECT_EQ(render("{% for k in d %}{{ k }}{% endfor %}", R"({"d":{"x":1,"y":2}})"), "xy");
  EXPECT_EQ(render("{% for c in 'héllo' %}[{{ c }}]{% endfor %}"), "[h][é][l][l][o]");
}

TEST(JinjaStatements, BreakAndContinue) {
  EXPECT_EQ(
      render("{% for x in range(10) %}{% if x == 3 %}{% break %}{% endif %}{{ x }}{% endfor %}"),
      "012");
  EXPECT_EQ(
      render(
          "{% for x in range(5) %}{% if x is odd %}{% continue %}{% endif %}{{ x }}{% endfor %}"),
      "024");
}

TEST(JinjaStatements, NestedLoopsHaveTheirOwnLoopVariable) {
  EXPECT_EQ(render("{% for a in [1,2] %}{% for b in [1,2] %}{{ loop.index }}{% endfor %}{{ "
                   "loop.index }};{% endfor %}"),
            "121;122;");
}

TEST(JinjaStatements, SetInsideLoopDoesNotLeak) {
  EXPECT_EQ(
      render("{% set x = 1 %}{% for i in [1,2] %}{% set x = i * 10 %}{{ x }} {% endfor %}{{ x }}"),
      "10 20 1");
}

TEST(JinjaStatements, SetInsideIfDoesLeak) {
  EXPECT_EQ(render("{% if true %}{% set x = 5 %}{% endif %}{{ x }}"), "5");
}

TEST(JinjaStatements, NamespaceCarriesStateOutOfLoops) {
  std::string t =
      "{% set ns = namespace(count=0, seen=false) %}{% for i in range(4) %}{% set ns.count = "
      "ns.count + i %}"
      "{% endfor %}{% set ns.seen = true %}{{ ns.count }} {{ ns.seen }}";
  EXPECT_EQ(render(t), "6 True");
  EXPECT_EQ(
      render("{% set ns = namespace({'a': 1}, b=2) %}{{ ns.a }}{{ ns.b }}{{ ns.c is defined }}"),
      "12False");
}

TEST(JinjaStatements, SetTupleAndBlockSet) {
  EXPECT_EQ(render("{% set a, b = 1, 2 %}{{ a }}{{ b }}"), "12");
  EXPECT_EQ(render("{% set x %}Hello {{ 'W' }}orld{% endset %}[{{ x }}]"), "[Hello World]");
  EXPECT_EQ(render("{% set x | upper %}abc{% endset %}{{ x }}"), "ABC");
}

TEST(JinjaStatements, MacroWithDefaultsAndKeywords) {
  std::string t =
      "{% macro greet(name, greeting='Hi', end='!') %}{{ greeting }} {{ name }}{{ end }}{% "
      "endmacro %}"
      "{{ greet('Ann') }}|{{ greet('Bob', 'Yo') }}|{{ greet('Cy', end='?') }}";
  EXPECT_EQ(render(t), "Hi Ann!|Yo Bob!|Hi Cy?");
}

TEST(JinjaStatements, MacroDefaultCanUseEarlierParameter) {
  EXPECT_EQ(render("{% macro f(a, b=a * 2) %}{{ a }},{{ b }}{% endmacro %}{{ f(3) }}"), "3,6");
}

TEST(JinjaStatements, MacroSeesTopLevelVariablesButNotCallerLocals) {
  std::string t =
      "{% set g = 'G' %}{% macro m() %}{{ g }}{{ local is defined }}{% endmacro %}"
      "{% for local in [1] %}{{ m() }}{% endfor %}";
  EXPECT_EQ(render(t), "GFalse");
}

TEST(JinjaStatements, RecursiveMacro) {
  std::string t =
      "{% macro fact(n) %}{% if n <= 1 %}1{% else %}{{ n * fact(n - 1)|int }}{% endif %}{% "
      "endmacro %}{{ fact(5) }}";
  EXPECT_EQ(render(t), "120");
}

TEST(JinjaStatements, MacroVarargsAndKwargs) {
  // A macro that mentions varargs / kwargs collects extra arguments into them.
  std::string t =
      "{% macro f(a) %}{{ a }}{{ varargs }}{{ kwargs }}{% endmacro %}{{ f(1, 2, 3, k='v') }}";
  EXPECT_EQ(render(t), "1(2, 3){'k': 'v'}");
  EXPECT_NE(testing::render_error("{% macro g(a) %}{{ a }}{% endmacro %}{{ g(1, 2) }}"), "");
}

TEST(JinjaStatements, CallsSpreadArgsAndKwargs) {
  std::string t =
      "{% macro f(a, b, c='-') %}{{ a }}{{ b }}{{ c }}{% endmacro %}"
      "{{ f(*[1, 2]) }} {{ f(1, **{'b': 2, 'c': 3}) }} {{ f(*params[0]) }}";
  EXPECT_EQ(render(t, R"({"params":[["x","y"]]})"), "12- 123 xy-");
}

TEST(JinjaStatements, CallBlockPassesCaller) {
  std::string t =
      "{% macro box(title) %}[{{ title }}:{{ caller() }}]{% endmacro %}"
      "{% call box('T') %}body{% endcall %}";
  EXPECT_EQ(render(t), "[T:body]");
  std::string with_args =
      "{% macro each(items) %}{% for i in items %}{{ caller(i) }}{% endfor %}{% endmacro %}"
      "{% call(x) each([1,2]) %}<{{ x }}>{% endcall %}";
  EXPECT_EQ(render(with_args), "<1><2>");
}

TEST(JinjaStatements, FilterBlock) {
  EXPECT_EQ(render("{% filter upper %}abc{{ 'd' }}{% endfilter %}"), "ABCD");
  EXPECT_EQ(render("{% filter trim | upper %}  ab  {% endfilter %}"), "AB");
}

TEST(JinjaStatements, WithBlockScopes) {
  EXPECT_EQ(render("{% with a = 1, b = 2 %}{{ a + b }}{% endwith %}{{ a is defined }}"), "3False");
}

TEST(JinjaStatements, GenerationTagRendersItsBody) {
  EXPECT_EQ(render("{% generation %}text{% endgeneration %}"), "text");
}

// ---- expressions ----

TEST(JinjaExpressions, Literals) {
  EXPECT_EQ(render("{{ 'a\\'b' }}{{ \"c\\\"d\" }}{{ 'x\\ny' }}{{ '\\u00e9\\x41' }}"),
            "a'bc\"dx\nyéA");
  EXPECT_EQ(render("{{ 42 }} {{ -7 }} {{ 1_000 }} {{ 3.5 }} {{ 1e3 }} {{ 2.0 }} {{ 1.5e-7 }}"),
            "42 -7 1000 3.5 1000.0 2.0 1.5e-07");
  EXPECT_EQ(render("{{ true }} {{ False }} {{ none }} {{ None }}"), "True False None None");
  EXPECT_EQ(render("{{ [1, 'a', none, true] }} {{ {'k': 'v', 'n': 1.0} }} {{ (1,) }} {{ (1, 2) }}"),
            "[1, 'a', None, True] {'k': 'v', 'n': 1.0} (1,) (1, 2)");
  EXPECT_EQ(render("{{ 'ab' 'cd' }}"), "abcd");
  EXPECT_EQ(render("{{ \"it's\" }} {{ [\"it's\"] }}"), "it's [\"it's\"]");
}

TEST(JinjaExpressions, Arithmetic) {
  EXPECT_EQ(render("{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 7 / 2 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ 7 "
                   "% 3 }} {{ -7 % 3 }}"),
            "7 9 3.5 3 -4 1 2");
  EXPECT_EQ(render("{{ 2 ** 10 }} {{ 2 ** 3 ** 2 }} {{ 2 ** -1 }} {{ 4 / 2 }} {{ 0.1 + 0.2 }}"),
            "1024 64 0.5 2.0 0.30000000000000004");
  EXPECT_EQ(render("{{ 'ab' + 'cd' }} {{ 'ab' * 3 }} {{ [1] + [2] }} {{ [0] * 3 }} {{ true + 1 }}"),
            "abcd ababab [1, 2] [0, 0, 0] 2");
  EXPECT_EQ(render("{{ 1 ~ 'a' ~ none ~ true ~ undefined_var }}"), "1aNoneTrue");
}

TEST(JinjaExpressions, Comparisons) {
  EXPECT_EQ(render("{{ 1 < 2 }} {{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ 1 == 1.0 }} {{ 'a' != 'b' }} {{ "
                   "'a' < 'b' }} {{ [1, 2] < [1, 3] }}"),
            "True True False True True True True");
  EXPECT_EQ(render("{{ 2 in [1, 2] }} {{ 'ell' in 'hello' }} {{ 'k' in {'k': 1} }} {{ 3 not in [1] "
                   "}} {{ 'x' in missing }}"),
            "True True True True False");
}

TEST(JinjaExpressions, LogicReturnsOperands) {
  EXPECT_EQ(
      render("{{ 0 or 'x' }} {{ 'a' and 'b' }} {{ '' and 'b' }} {{ not 0 }} {{ not [] and 1 }}"),
      "x b  True 1");
  // Short-circuit: the right side is not evaluated.
  EXPECT_EQ(render("{{ false and missing.attr }}{{ true or missing.attr }}"), "FalseTrue");
}

TEST(JinjaExpressions, Precedence) {
  // Filters bind tighter than arithmetic; `not` is looser than comparison and `in`.
  EXPECT_EQ(render("{{ items|length - 1 }}", R"({"items":[1,2,3]})"), "2");
  EXPECT_EQ(render("{{ not 1 in [2] }} {{ -2|abs }} {{ 'a' ~ 2 * 3 }}"), "True 2 a6");
  // As in Jinja2, `~` binds tighter than + and -.
  EXPECT_NE(testing::render_error("{{ 'a' ~ 1 + 2 }}"), "");
}

TEST(JinjaExpressions, ConditionalExpression) {
  EXPECT_EQ(
      render("{{ 'y' if x else 'n' }}{{ 'y' if not x else 'n' }}[{{ 'y' if x }}]", R"({"x":0})"),
      "ny[]");
}

TEST(JinjaExpressions, AttributeAndItemAccess) {
  std::string ctx =
      R"({"m":{"role":"user","content":[{"type":"text","text":"hi"}],"items":"key"}})";
  EXPECT_EQ(render("{{ m.role }}{{ m['role'] }}{{ m.content[0].text }}{{ m.content.0.type }}", ctx),
            "useruserhitext");
  EXPECT_EQ(render("[{{ m.missing }}][{{ m['missing'] }}][{{ m.content[5] }}]", ctx), "[][][]");
  // d.items is the method (attribute first), d['items'] the key (item first), as in Jinja2.
  EXPECT_EQ(render("{{ m['items'] }} {{ m.items is callable }}", ctx), "key True");
}

TEST(JinjaExpressions, Slicing) {
  EXPECT_EQ(render("{{ x[1:] }} {{ x[:2] }} {{ x[::-1] }} {{ x[-2:] }} {{ x[::2] }} {{ x[5:] }}",
                   R"({"x":[1,2,3,4]})"),
            "[2, 3, 4] [1, 2] [4, 3, 2, 1] [3, 4] [1, 3] []");
  EXPECT_EQ(render("{{ 'héllo'[1:3] }} {{ 'abc'[::-1] }} {{ 'abc'[-1] }}"), "él cba c");
}

TEST(JinjaExpressions, NegativeIndex) {
  EXPECT_EQ(render("{{ x[-1] }} {{ 'abc'.split('b')[-1] }}", R"({"x":[1,2,3]})"), "3 c");
}

TEST(JinjaExpressions, PrintingValuesLikePythonStr) {
  EXPECT_EQ(render("{{ x }}", R"({"x":{"a":[1,2.5,"s",null,true]}})"),
            "{'a': [1, 2.5, 's', None, True]}");
  EXPECT_EQ(render("{{ 1e16 }} {{ 1e15 }} {{ 0.0001 }} {{ 0.00001 }} {{ 1/3 }} {{ -0.0 }}"),
            "1e+16 1000000000000000.0 0.0001 1e-05 0.3333333333333333 -0.0");
  EXPECT_EQ(render("{{ 'a\\nb' | list }}"), "['a', '\\n', 'b']");
}

TEST(JinjaExpressions, UndefinedSemantics) {
  EXPECT_EQ(
      render(
          "[{{ nothing }}]{{ nothing is defined }}{{ nothing is undefined }}{{ nothing|length }}"),
      "[]FalseTrue0");
  EXPECT_EQ(render("{% if nothing %}y{% else %}n{% endif %}{{ nothing == nothing }}"), "nTrue");
  EXPECT_EQ(render("{{ nothing|default('d') }}{{ ''|default('e') }}{{ ''|default('f', true) }}{{ "
                   "0|d('g', true) }}"),
            "dfg");
}

TEST(JinjaExpressions, NoneIsDefined) {
  EXPECT_EQ(
      render("{{ tools is defined }} {{ tools is none }} {% if tools %}y{% else %}n{% endif %}",
             R"({"tools":null})"),
      "True True n");
}

}  // namespace
}  // namespace loom::jinja
