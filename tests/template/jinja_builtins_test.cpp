// Filters, tests, Python methods and the tojson filter (transformers' json.dumps-based one).
#include <gtest/gtest.h>

#include "render_helper.h"

namespace loom::jinja {
namespace {

using testing::render;
using testing::render_error;

// ---- tojson: must match Python's json.dumps byte for byte ----

TEST(JinjaToJson, KeepsKeyOrderAndPythonSeparators) {
  std::string ctx = R"({"x":{"b":1,"a":[1,2.5,"é",null,true,false],"c":{},"d":[]}})";
  EXPECT_EQ(render("{{ x|tojson }}", ctx),
            R"({"b": 1, "a": [1, 2.5, "é", null, true, false], "c": {}, "d": []})");
}

TEST(JinjaToJson, Indent) {
  std::string ctx = R"({"x":{"b":1,"a":[1,{"k":"v"}],"c":{}}})";
  EXPECT_EQ(
      render("{{ x|tojson(indent=2) }}", ctx),
      "{\n  \"b\": 1,\n  \"a\": [\n    1,\n    {\n      \"k\": \"v\"\n    }\n  ],\n  \"c\": {}\n}");
  EXPECT_EQ(render("{{ [1]|tojson(indent=0) }}"), "[\n1\n]");
}

TEST(JinjaToJson, EscapesLikePython) {
  EXPECT_EQ(render("{{ x|tojson }}", R"({"x":"\"q\"\\\n\t\u0001/<>&'"})"),
            R"("\"q\"\\\n\t\u0001/<>&'")");
  EXPECT_EQ(render("{{ 'é😀'|tojson(ensure_ascii=true) }}"), R"("\u00e9\ud83d\ude00")");
}

TEST(JinjaToJson, NumbersLikePython) {
  EXPECT_EQ(render("{{ [1.0, 1e16, 0.1, -3, 1e-7, 123456789.123]|tojson }}"),
            "[1.0, 1e+16, 0.1, -3, 1e-07, 123456789.123]");
}

TEST(JinjaToJson, SortKeysAndSeparators) {
  EXPECT_EQ(render("{{ {'b': 1, 'a': 2}|tojson(sort_keys=true) }}"), R"({"a": 2, "b": 1})");
  EXPECT_EQ(render("{{ {'b': [1, 2]}|tojson(separators=(',', ':')) }}"), R"({"b":[1,2]})");
}

TEST(JinjaToJson, UndefinedIsAnError) {
  EXPECT_NE(render_error("{{ missing|tojson }}"), "");
}

// ---- filters ----

TEST(JinjaFilters, StringFilters) {
  EXPECT_EQ(render("[{{ '  a b \n'|trim }}][{{ 'xxaxx'|trim('x') }}]"), "[a b][a]");
  EXPECT_EQ(render("{{ 'hello wORLD'|title }} {{ 'hello wORLD'|capitalize }} {{ 'Ab'|upper }}{{ "
                   "'Ab'|lower }}"),
            "Hello World Hello world ABab");
  EXPECT_EQ(render("{{ 'aaa'|replace('a', 'b') }} {{ 'aaa'|replace('a', 'b', 2) }}"), "bbb bba");
  EXPECT_EQ(render("{{ 'Hello, world! 3rd'|wordcount }}"), "3");
  EXPECT_EQ(render("{{ '<a href=\"x\">'|e }}|{{ '<b>'|safe }}"), "&lt;a href=&#34;x&#34;&gt;|<b>");
  EXPECT_EQ(render("{{ '%s-%d'|format('a', 3) }} {{ '%s!' % 'hi' }} {{ '%s+%s' % (1, 2) }}"),
            "a-3 hi! 1+2");
  EXPECT_EQ(render("{{ 42|string ~ '!' }} {{ [1]|string }}"), "42! [1]");
}

TEST(JinjaFilters, PercentFormattingLikePython) {
  EXPECT_EQ(
      render("{{ '%02d:%-4s|%5.2f|%x|%+d|%5s|%.2s' % (7, 'ab', 3.14159, 255, 3, 'é', 'xyz') }}"),
      "07:ab  | 3.14|ff|+3|    é|xy");
  EXPECT_EQ(render("{{ '%(a)s-%(b)03d' % {'a': 'x', 'b': 5} }} {{ '%e' % 12345.678 }} {{ '%g' % "
                   "0.0001 }} {{ '%05.1f' % -2.25 }}"),
            "x-005 1.234568e+04 0.0001 -02.2");
  EXPECT_NE(render_error("{{ '%d' % 'x' }}"), "");
  EXPECT_NE(render_error("{{ '%s %s' % ('a',) }}"), "");
}

TEST(JinjaFilters, Indent) {
  EXPECT_EQ(render("{{ 'a\nb\n\nc'|indent(2) }}"), "a\n  b\n\n  c");
  EXPECT_EQ(render("{{ 'a\nb'|indent(2, true) }}"), "  a\n  b");
  EXPECT_EQ(render("{{ 'a\n\nb'|indent(2, blank=true) }}"), "a\n  \n  b");
  EXPECT_EQ(render("{{ 'a\nb'|indent('> ') }}"), "a\n> b");
}

TEST(JinjaFilters, Sequences) {
  std::string ctx = R"({"users":[{"name":"b","n":2},{"name":"A","n":1},{"name":"c","n":3}]})";
  EXPECT_EQ(render("{{ [1, 2, 3]|join(', ') }} {{ users|join('/', attribute='name') }}", ctx),
            "1, 2, 3 b/A/c");
  EXPECT_EQ(
      render("{{ users|length }} {{ users|count }} {{ 'héllo'|length }} {{ {'a': 1}|length }}",
             ctx),
      "3 3 5 1");
  EXPECT_EQ(
      render("{{ users|first|attr('name') }} {{ (users|last).name }} {{ []|first is defined }}",
             ctx),
      "b c False");
  EXPECT_EQ(render("{{ 'abc'|list }} {{ {'k': 1}|list }}"), "['a', 'b', 'c'] ['k']");
  EXPECT_EQ(render("{{ [1, 2, 3]|reverse|list }} {{ 'abc'|reverse }}"), "[3, 2, 1] cba");
  EXPECT_EQ(render("{{ [1, 2, 3, 4, 5]|batch(2)|list }} {{ [1, 2, 3]|batch(2, 'x')|list }}"),
            "[[1, 2], [3, 4], [5]] [[1, 2], [3, 'x']]");
  EXPECT_EQ(render("{{ [1, 2, 3]|sum }} {{ users|sum(attribute='n') }} {{ [3, 1, 2]|min }} {{ "
                   "['b', 'A']|max }}",
                   ctx),
            "6 6 1 b");
}

TEST(JinjaFilters, SortUniqueDictsort) {
  std::string ctx = R"({"users":[{"name":"b","n":2},{"name":"A","n":1},{"name":"c","n":3}]})";
  EXPECT_EQ(render("{{ ['b', 'A', 'c']|sort }} {{ ['b', 'A', 'c']|sort(reverse=true) }} {{ ['b', "
                   "'A']|sort(case_sensitive=true) }}"),
            "['A', 'b', 'c'] ['c', 'b', 'A'] ['A', 'b']");
  EXPECT_EQ(render("{{ users|sort(attribute='n')|map(attribute='name')|join }}", ctx), "Abc");
  EXPECT_EQ(render("{{ ['a', 'A', 'b', 'a']|unique|list }} {{ [1, 2, 1]|unique|list }}"),
            "['a', 'b'] [1, 2]");
  EXPECT_EQ(render("{{ {'b': 1, 'a': 2}|dictsort }} {{ {'b': 1, 'a': 2}|dictsort(by='value') }}"),
            "[('a', 2), ('b', 1)] [('b', 1), ('a', 2)]");
}

TEST(JinjaFilters, SelectRejectMap) {
  std::string ctx = R"({"msgs":[{"role":"system","content":"s"},{"role":"user","content":"u1"},
                                {"role":"assistant","content":"a"},{"role":"user","content":"u2","x":1}]})";
  EXPECT_EQ(
      render("{{ msgs|selectattr('role', 'equalto', 'user')|map(attribute='content')|join(',') }}",
             ctx),
      "u1,u2");
  EXPECT_EQ(render("{{ msgs|selectattr('role', '==', 'user')|list|length }}", ctx), "2");
  EXPECT_EQ(
      render(
          "{{ msgs|rejectattr('role', 'in', ['user', 'system'])|map(attribute='content')|first }}",
          ctx),
      "a");
  EXPECT_EQ(render("{{ msgs|selectattr('x')|map(attribute='content')|list }}", ctx), "['u2']");
  EXPECT_EQ(render("{{ msgs|map(attribute='x', default=0)|list }}", ctx), "[0, 0, 0, 1]");
  EXPECT_EQ(render("{{ [1, 2, 3, 4]|select('odd')|list }} {{ [1, none, 0]|reject('none')|list }} "
                   "{{ [0, 1, '']|select|list }}"),
            "[1, 3] [1, 0] [1]");
  EXPECT_EQ(render("{{ ['a', 'b']|map('upper')|list }} {{ ['1', '2']|map('int')|sum }}"),
            "['A', 'B'] 3");
}

TEST(JinjaFilters, Numbers) {
  EXPECT_EQ(render("{{ '3.7'|float }} {{ 'x'|float }} {{ 'x'|int }} {{ '42'|int + 1 }} {{ 3.9|int "
                   "}} {{ '0x1A'|int(base=16) }} {{ '2.5'|int }}"),
            "3.7 0.0 0 43 3 26 2");
  EXPECT_EQ(render("{{ -3|abs }} {{ -2.5|abs }} {{ 2.5|round }} {{ 3.14159|round(2) }} {{ "
                   "2.1|round(method='ceil') }} {{ 2.9|round(0, 'floor') }}"),
            "3 2.5 2.0 3.14 3.0 2.0");
  EXPECT_EQ(render("{{ 'x'|int(7) }} {{ none|default(1) }}"), "7 None");
}

TEST(JinjaFilters, Items) {
  EXPECT_EQ(render("{{ {'a': 1}|items|list }} {{ missing|items|list }}"), "[('a', 1)] []");
}

TEST(JinjaFilters, FilterArgumentsAreChecked) {
  EXPECT_NE(render_error("{{ 'a'|upper(1) }}"), "");
  EXPECT_NE(render_error("{{ 'a'|trim(nope=1) }}"), "");
}

// ---- tests ----

TEST(JinjaTests, TypeTests) {
  EXPECT_EQ(render("{{ 'a' is string }}{{ 1 is number }}{{ true is number }}{{ true is integer "
                   "}}{{ 1 is integer }}"
                   "{{ 1.0 is float }}{{ 1 is float }}"),
            "TrueTrueTrueFalseTrueTrueFalse");
  EXPECT_EQ(render("{{ {} is mapping }}{{ [] is mapping }}{{ [] is iterable }}{{ 'a' is iterable "
                   "}}{{ 1 is iterable }}"
                   "{{ 'a' is sequence }}{{ missing is iterable }}{{ missing is sequence }}"),
            "TrueFalseTrueTrueFalseTrueTrueTrue");
  EXPECT_EQ(render("{{ true is boolean }}{{ 1 is boolean }}{{ true is true }}{{ 1 is true }}{{ "
                   "false is false }}"
                   "{{ none is none }}{{ x is not none }}{{ range is callable }}"),
            "TrueFalseTrueFalseTrueTrueTrueTrue");
}

TEST(JinjaTests, ValueTests) {
  EXPECT_EQ(
      render("{{ 3 is odd }}{{ 4 is even }}{{ 9 is divisibleby 3 }}{{ 9 is divisibleby(4) }}"),
      "TrueTrueTrueFalse");
  EXPECT_EQ(render("{{ 2 is eq 2 }}{{ 3 is gt 2 }}{{ 1 is lt 2 }}{{ 1 is ne 2 }}{{ 2 is ge 2 }}{{ "
                   "2 is le 1 }}"
                   "{{ 2 is in [1, 2] }}{{ 1 is equalto 1 }}"),
            "TrueTrueTrueTrueTrueFalseTrueTrue");
  EXPECT_EQ(
      render(
          "{{ 'abc' is lower }}{{ 'ABC' is upper }}{{ 'aBc' is lower }}{{ none is sameas none }}"),
      "TrueTrueFalseTrue");
}

TEST(JinjaTests, TestsInConditionsAndNegation) {
  EXPECT_EQ(
      render("{% if m.reasoning is defined and m.reasoning is not none %}r{% else %}-{% endif %}",
             R"({"m":{"reasoning":null}})"),
      "-");
  EXPECT_EQ(render("{{ not x is defined }}"), "True");
}

// ---- Python methods ----

TEST(JinjaMethods, StringMethods) {
  EXPECT_EQ(render("{{ 'abc'.startswith('ab') }}{{ 'abc'.endswith(('x', 'bc')) }}{{ 'abc'.upper() "
                   "}}{{ 'ABC'.lower() }}"),
            "TrueTrueABCabc");
  EXPECT_EQ(render("[{{ ' \n a \t'.strip() }}][{{ 'xxaxx'.lstrip('x') }}][{{ 'xxaxx'.rstrip('x') "
                   "}}][{{ '\n\na\n'.strip('\n') }}]"),
            "[a][axx][xxa][a]");
  EXPECT_EQ(render("{{ '  a  b '.split() }} {{ 'a,b,,c'.split(',') }} {{ 'a,b,c'.split(',', 1) }} "
                   "{{ 'a,b,c'.rsplit(',', 1) }}"),
            "['a', 'b'] ['a', 'b', '', 'c'] ['a', 'b,c'] ['a,b', 'c']");
  EXPECT_EQ(render("{{ ' a b c '.split(none, 1) }} {{ ' a b c '.rsplit(none, 1) }}"),
            "['a', 'b c '] [' a b', 'c']");
  EXPECT_EQ(render("{{ 'hello wORLD'.title() }} {{ 'héllo'.find('l') }} {{ 'abc'.find('z') }} {{ "
                   "'banana'.count('an') }}"),
            "Hello World 2 -1 2");
  EXPECT_EQ(render("{{ 'a-b'.replace('-', '+') }} {{ '{} and {name}'.format(1, name='x') }} {{ ', "
                   "'.join(['a', 'b']) }}"),
            "a+b 1 and x a, b");
  EXPECT_EQ(render("{{ 'a\nb'.splitlines() }} {{ '12'.isdigit() }} {{ 'ab'.isalpha() }} {{ "
                   "'Hi'.capitalize() }}"),
            "['a', 'b'] True True Hi");
}

TEST(JinjaMethods, DictAndListMethods) {
  std::string ctx = R"({"d":{"a":1,"b":2}})";
  EXPECT_EQ(render("{{ d.get('a') }} {{ d.get('z') }} {{ d.get('z', 5) }}", ctx), "1 None 5");
  EXPECT_EQ(render("{{ d.keys()|list }} {{ d.values()|list }} {{ d.items()|list }}", ctx),
            "['a', 'b'] [1, 2] [('a', 1), ('b', 2)]");
  EXPECT_EQ(render("{{ [1, 2, 1].count(1) }} {{ [1, 2, 1].index(2) }}"), "2 1");
}

TEST(JinjaMethods, MutatingMethodsAreRefusedLikeTheSandbox) {
  EXPECT_NE(render_error("{% set x = [] %}{{ x.append(1) }}").find("unsafe"), std::string::npos);
  EXPECT_NE(render_error("{% set d = {} %}{{ d.update({'a': 1}) }}").find("unsafe"),
            std::string::npos);
}

// ---- globals ----

TEST(JinjaGlobals, RangeDictNamespace) {
  EXPECT_EQ(render("{{ range(3)|list }} {{ range(1, 7, 2)|list }} {{ range(3, 0, -1)|list }}"),
            "[0, 1, 2] [1, 3, 5] [3, 2, 1]");
  EXPECT_EQ(render("{{ dict(a=1, b='x') }}"), "{'a': 1, 'b': 'x'}");
}

TEST(JinjaGlobals, StrftimeNowUsesTheGivenTime) {
  RenderOptions options;
  options.now = 1700000000;  // 2023-11-14 UTC
  EXPECT_EQ(render("{{ strftime_now('%Y') }}", "{}", {}, options), "2023");
}

}  // namespace
}  // namespace loom::jinja
